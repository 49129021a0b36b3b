"""Tests for nvcf_helpers.triton.server: locating, preparing and running tritonserver."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvcf_helpers.triton.server import (
    HEADER_FORWARD_PATTERN,
    TritonServer,
    TritonServerError,
    _remove_stale_backend_dirs,
    apply_libpython_fix,
    find_triton,
    list_models,
    make_backend_directory,
    server_command,
    server_environment,
)

REPOSITORY = Path(__file__).parent / "fixtures" / "triton_repository"
ROOT = Path(__file__).resolve().parents[1]
LIBDIR = sysconfig.get_config_var("LIBDIR")


class TestFindTriton:
    """Locating the parts of Triton inside the nvidia-pytriton wheel."""

    def test_finds_server_backend_and_stub_for_this_python(self) -> None:
        """Every part it names exists, and the stub is the one for the running Python."""
        install = find_triton()
        assert install.server.name == "tritonserver"
        assert os.access(install.server, os.X_OK)
        assert (install.python_backend / "libtriton_python.so").is_file()
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        assert install.stub.is_file()
        assert install.stub.parent.name == version

    def test_does_not_import_pytriton(self) -> None:
        """Locating Triton leaves pytriton unimported (it is slow and pulls in numpy)."""
        code = (
            "import sys; from nvcf_helpers.triton.server import find_triton; find_triton(); "
            "print('pytriton' in sys.modules, 'numpy' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.split() == ["False", "False"]

    def test_missing_wheel_says_how_to_install_it(self) -> None:
        """Without site-packages (so without pytriton) the error names the extra to install."""
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
            "from nvcf_helpers.triton.server import find_triton, TritonNotInstalledError\n"
            "try:\n    find_triton()\nexcept TritonNotInstalledError as exc:\n    print(exc)"
        )
        out = subprocess.run(
            [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert "nvidia-pytriton package" in out
        assert "pip install 'nvcf-helpers[pytriton]'" in out


class TestBackendDirectory:
    """The --backend-directory tree of symlinks."""

    def test_links_the_three_python_backend_files(self, tmp_path: Path) -> None:
        """python/ holds the backend library, the utils module and the stub, as links."""
        install = find_triton()
        backend = make_backend_directory(install, tmp_path / "backends")
        links = {p.name: p for p in (backend / "python").iterdir()}
        assert sorted(links) == [
            "libtriton_python.so",
            "triton_python_backend_stub",
            "triton_python_backend_utils.py",
        ]
        assert all(p.is_symlink() for p in links.values())
        assert links["triton_python_backend_stub"].resolve() == install.stub.resolve()

    def test_rebuilding_replaces_links(self, tmp_path: Path) -> None:
        """Building twice in the same place works and leaves valid links."""
        install = find_triton()
        make_backend_directory(install, tmp_path)
        make_backend_directory(install, tmp_path)
        assert (tmp_path / "python" / "libtriton_python.so").resolve().is_file()


class TestEnvironment:
    """The libpython fix and the server's environment."""

    def test_libdir_goes_first(self) -> None:
        """The interpreter's LIBDIR is put before any other library directory."""
        env = {"LD_LIBRARY_PATH": "/usr/lib/x86_64-linux-gnu:/opt/lib"}
        apply_libpython_fix(env)
        assert env["LD_LIBRARY_PATH"].split(":") == [
            LIBDIR,
            "/usr/lib/x86_64-linux-gnu",
            "/opt/lib",
        ]

    def test_fix_is_idempotent(self) -> None:
        """Applying it again, or when LIBDIR is already listed later, gives LIBDIR once, first."""
        env = {"LD_LIBRARY_PATH": f"/opt/lib:{LIBDIR}"}
        apply_libpython_fix(env)
        once = env["LD_LIBRARY_PATH"]
        apply_libpython_fix(env)
        assert env["LD_LIBRARY_PATH"] == once == f"{LIBDIR}:/opt/lib"

    def test_fix_without_existing_variable(self) -> None:
        """An environment without LD_LIBRARY_PATH gets exactly LIBDIR."""
        env: dict[str, str] = {}
        apply_libpython_fix(env)
        assert env == {"LD_LIBRARY_PATH": LIBDIR}

    def test_server_environment(self) -> None:
        """PATH starts with this interpreter's bin dir; LD_LIBRARY_PATH with LIBDIR."""
        env = server_environment(find_triton(), {"PATH": "/usr/bin", "HOME": "/h"})
        assert env["PATH"].split(":")[0] == os.path.dirname(sys.executable)
        assert env["PATH"].endswith(":/usr/bin")
        assert env["LD_LIBRARY_PATH"].split(":")[0] == LIBDIR
        assert env["HOME"] == "/h"


class TestServerCommand:
    """The tritonserver command line."""

    def test_flags(self, tmp_path: Path) -> None:
        """Loopback addresses, the ports, no metrics, and NVCF header forwarding."""
        command = server_command(
            find_triton(), tmp_path / "repo", tmp_path / "b", http_port=1234, grpc_port=1235
        )
        assert command[0].endswith("/tritonserver")
        for flag in (
            f"--model-repository={tmp_path / 'repo'}",
            f"--backend-directory={tmp_path / 'b'}",
            "--http-address=127.0.0.1",
            "--http-port=1234",
            "--grpc-address=127.0.0.1",
            "--grpc-port=1235",
            "--allow-metrics=false",
            f"--http-header-forward-pattern={HEADER_FORWARD_PATTERN}",
        ):
            assert flag in command
        assert "--disable-auto-complete-config" not in command

    def test_options_and_extra_args_last(self, tmp_path: Path) -> None:
        """Auto-complete can be disabled, and extra arguments come last."""
        command = server_command(
            find_triton(),
            tmp_path,
            tmp_path,
            http_port=1,
            grpc_port=2,
            host="0.0.0.0",
            disable_auto_complete_config=True,
            extra_args=["--log-verbose=1"],
        )
        assert "--http-address=0.0.0.0" in command
        assert "--disable-auto-complete-config" in command
        assert command[-1] == "--log-verbose=1"


class TestStaleBackendDirectories:
    """Backend directories of killed processes are swept at the next start."""

    def test_only_dead_owners_directories_go(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A directory whose owner pid is gone is removed; a live owner's stays."""
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
        dead_pid.wait()
        stale = tmp_path / f"nvcf-triton-backends-{dead_pid.pid}-abc"
        live = tmp_path / f"nvcf-triton-backends-{os.getpid()}-xyz"
        other = tmp_path / "nvcf-triton-backends-notapid"
        for path in (stale, live, other):
            (path / "python").mkdir(parents=True)
        _remove_stale_backend_dirs()
        assert not stale.exists()
        assert live.is_dir()
        assert other.is_dir()


class TestOptions:
    """Constructor options that cannot be combined."""

    def test_inherit_output_excludes_stdout(self) -> None:
        """Inheriting the output and copying it to a stream are exclusive."""
        with pytest.raises(ValueError, match=r"inherit_output=True writes to this process"):
            TritonServer(REPOSITORY, stdout=io.StringIO(), inherit_output=True)


class TestListModels:
    """Model names of a repository, and unusable repositories."""

    def test_lists_visible_directories(self, tmp_path: Path) -> None:
        """Sub-directories are models; hidden ones, __pycache__ and files are not."""
        for name in ("b", "a", ".git", "__pycache__"):
            (tmp_path / name).mkdir()
        (tmp_path / "README.md").write_text("x")
        assert list_models(tmp_path) == ["a", "b"]

    def test_missing_repository(self, tmp_path: Path) -> None:
        """A path that does not exist is refused with what to pass instead."""
        with pytest.raises(TritonServerError, match=r"does not exist or is not a directory"):
            list_models(tmp_path / "nope")

    def test_empty_repository(self, tmp_path: Path) -> None:
        """A repository without model directories is refused with the expected layout."""
        with pytest.raises(TritonServerError, match=r"has no model directories.*config\.pbtxt"):
            list_models(tmp_path)


@pytest.fixture(scope="module")
def server() -> Iterator[TritonServer]:
    """The fixture repository served by a real tritonserver on free ports."""
    with TritonServer(REPOSITORY, stdout=io.StringIO()) as running:
        running.wait_ready(timeout=120)
        yield running


def _infer_json(url: str, headers: dict[str, str]) -> dict[str, object]:
    body = json.dumps(
        {"inputs": [{"name": "INPUT0", "shape": [2], "datatype": "FP32", "data": [1.5, 2.5]}]}
    ).encode()
    request = urllib.request.Request(
        f"{url}/v2/models/nvcf_echo/infer",
        data=body,
        headers={"Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, object] = json.loads(response.read())
    return result


@pytest.mark.integration
class TestTritonServer:
    """A real tritonserver started, used and stopped through TritonServer."""

    def test_serves_on_loopback_with_its_ports(self, server: TritonServer) -> None:
        """The URL uses the chosen free port and the command line records it."""
        assert server.url == f"http://127.0.0.1:{server.http_port}"
        assert f"--http-port={server.http_port}" in server.command
        assert f"--grpc-port={server.grpc_port}" in server.command
        assert server.returncode is None

    def test_forwards_nvcf_headers_in_any_case(self, server: TritonServer) -> None:
        """Lower-case NVCF headers reach the model; others do not matter to it."""
        result = _infer_json(server.url, {"nvcf-reqid": "req-lower", "X-Other": "1"})
        outputs = {o["name"]: o for o in result["outputs"]}  # type: ignore[attr-defined]
        seen = json.loads(outputs["CONTEXT"]["data"][0])
        assert seen["request_id"] == "req-lower"
        assert outputs["OUTPUT0"]["data"] == [1.5, 2.5]

    def test_forwards_nvcf_metadata_over_grpc(self, server: TritonServer) -> None:
        """gRPC clients (lower-case metadata keys) reach the model's context too."""
        import numpy as np
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(server.grpc_url)
        tensor = grpcclient.InferInput("INPUT0", [2], "FP32")
        tensor.set_data_from_numpy(np.ones(2, dtype=np.float32))
        try:
            result = client.infer("nvcf_echo", [tensor], headers={"nvcf-reqid": "over-grpc"})
        finally:
            client.close()
        assert json.loads(result.as_numpy("CONTEXT")[0])["request_id"] == "over-grpc"

    def test_output_reaches_the_stream(self, server: TritonServer) -> None:
        """Server output is copied to the given stream and kept as a tail."""
        assert "Started HTTPService" in server.output_tail(lines=200)

    def test_exit_before_ready_raises_with_output(self, tmp_path: Path) -> None:
        """A model that fails to load makes wait_ready raise with the server's last lines."""
        model = tmp_path / "broken"
        (model / "1").mkdir(parents=True)
        (model / "config.pbtxt").write_text(
            (REPOSITORY / "nvcf_echo" / "config.pbtxt")
            .read_text()
            .replace('name: "nvcf_echo"', 'name: "broken"')
        )
        (model / "1" / "model.py").write_text("this is not python\n")
        server = TritonServer(tmp_path)
        server.start()
        try:
            with pytest.raises(
                TritonServerError, match=r"exited with status \d+ before it was ready"
            ):
                server.wait_ready(timeout=120)
            assert "broken" in server.output_tail(lines=200)
        finally:
            server.stop()

    def test_stop_ends_the_process_and_cleans_up(self) -> None:
        """stop() ends the server by pid and removes its backend directory."""
        server = TritonServer(REPOSITORY, disable_auto_complete_config=True)
        server.start()
        backend_dir = Path(server.command[2].split("=", 1)[1])
        assert backend_dir.is_dir()
        server.wait_ready(timeout=120)
        pid = server.pid
        assert pid is not None
        returncode = server.stop()
        assert returncode is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert not backend_dir.exists()
        assert server.stop() == returncode  # a second stop is harmless
