"""The function's lifecycle under nvcf-helpers local: DEPLOYING, ACTIVE, ERROR, and exit."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from pathlib import Path

import pytest
from local_support import Raw, contract_command, contract_spec, eventually, header_seen

from nvcf_helpers import cli
from nvcf_helpers.local import LocalNvcf, LocalNvcfError
from nvcf_helpers.testing import free_port

pytestmark = pytest.mark.integration


class TestLifecycle:
    """The function follows its container: ACTIVE when healthy, ERROR or DEGRADED when not."""

    def test_crash_fails_the_request_and_degrades_the_function(self, tmp_path: Path) -> None:
        """A container that dies mid-request: a 500 problem, then DEGRADED, then 400 refusals.

        NVCF's scheduler makes a running version with no running instance
        DEGRADED, and its gateway answers an invocation of it 400 (facts §5).
        """
        port = free_port()
        with LocalNvcf(
            contract_spec(port), contract_command(port), output=tmp_path / "log"
        ) as nvcf:
            raw = Raw(nvcf, None)
            reply = raw.invoke({"crash": True})
            assert reply.status == 500
            assert reply.headers["NVCF-STATUS"] == "errored"
            # NVCF's body for a connection closed without an answer (facts §2, connection
            # errors); the local NVCF's explanation comes beside it.
            assert reply.json() == {
                "type": "urn:nvcf-worker-service:problem-details:internal-server-error",
                "title": "Internal Server Error",
                "status": 500,
                "detail": "Internal error while making inference request",
            }
            assert reply.headers["NVCF-LOCAL-WARNING"] == (
                "the container died while handling the request (the container process "
                "exited with status 3); see its output above"
            )
            function = nvcf.wait_for_status("DEGRADED", timeout=30)
            assert function["healthInfo"]["error"] == "the container process exited with status 3"
            refused = raw.invoke({})
            assert refused.status == 400
            assert refused.json()["detail"].startswith(
                f"function {nvcf.function_id} is DEGRADED (instance 0: the container process "
                "exited with status 3)"
            )

    def test_stop_takes_the_child_and_leaves_nothing(self, tmp_path: Path) -> None:
        """SIGTERM stops the container too, exits 0 and removes every temporary directory.

        The gateway closes its keep-alive connections first: servers such as
        Triton otherwise wait out their exit timeout for them.
        """
        port = free_port()
        report = tmp_path / "open-connections"
        nvcf = LocalNvcf(
            contract_spec(port),
            contract_command(port),
            output=tmp_path / "log",
            env={"CONTRACT_SERVER_STOP_REPORT": str(report)},
        )
        with nvcf:
            echo = Raw(nvcf, None).invoke({}).json()
            child = echo["pid"]
            root = Path(header_seen(echo, "NVCF-LARGE-OUTPUT-DIR")).parents[1]
            assert root.is_dir()
        assert nvcf.process is not None
        assert nvcf.process.returncode == 0
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
        assert not root.exists()
        assert report.read_text() == "0"

    def test_command_that_exits_at_start_is_error(self, tmp_path: Path) -> None:
        """A container that exits before it is healthy turns the function to ERROR."""
        port = free_port()
        command = [sys.executable, "-c", "import sys; sys.exit(3)"]
        with pytest.raises(
            LocalNvcfError, match="ERROR: the container process exited with status 3"
        ):
            LocalNvcf(contract_spec(port), command, output=tmp_path / "log").start()

    def test_deploying_refuses_then_unhealthy_is_error(self, tmp_path: Path) -> None:
        """While DEPLOYING an invocation is a 404 (no ACTIVE version); never healthy: ERROR."""
        port = free_port()
        command = [sys.executable, "-c", "import time; time.sleep(60)"]
        nvcf = LocalNvcf(
            contract_spec(port), command, startup_timeout=3, output=tmp_path / "log"
        ).start(wait=False)
        try:
            assert nvcf.status() == "DEPLOYING"
            refused = Raw(nvcf, None).invoke({})
            assert refused.status == 404
            assert "has no ACTIVE version (its versions are DEPLOYING)" in refused.json()["detail"]
            function = nvcf.wait_for_status("ERROR", timeout=30)
            assert "did not answer 200 within 3 s" in function["healthInfo"]["error"]
        finally:
            nvcf.stop()


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting for a reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
class TestNothingOutlivesItsParent:
    """Killed parents take their children with them (Linux's parent-death signal)."""

    def test_killed_local_nvcf_takes_the_container(self, tmp_path: Path) -> None:
        """SIGKILL to nvcf-helpers local, which cannot clean up, still ends the container."""
        port = free_port()
        nvcf = LocalNvcf(contract_spec(port), contract_command(port), output=tmp_path / "log")
        with nvcf:
            child = Raw(nvcf, None).invoke({}).json()["pid"]
            assert nvcf.process is not None
            nvcf.process.kill()
            nvcf.process.wait()
            assert eventually(lambda: not _alive(child))

    def test_ended_starting_thread_stops_local_nvcf(self, tmp_path: Path) -> None:
        """When the thread that started LocalNvcf ends, the local NVCF stops cleanly."""
        port = free_port()
        nvcf = LocalNvcf(contract_spec(port), contract_command(port), output=tmp_path / "log")
        starter = threading.Thread(target=nvcf.start)
        starter.start()
        starter.join()
        try:
            assert nvcf.process is not None
            assert nvcf.process.wait(timeout=30) == 0
            assert "stopping: the containers first" in (tmp_path / "log").read_text()
        finally:
            nvcf.stop()


class TestLocalCommand:
    """Mistakes in the command line are one-line errors, before anything starts."""

    def test_no_container_command(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Forgetting the command after -- says how to give it."""
        spec = tmp_path / "function.json"
        spec.write_text('{"name": "f", "inferenceUrl": "/i", "containerImage": "x"}')
        assert cli.main(["local", "--spec", str(spec)]) == 1
        assert "no container command given: put it after '--'" in capsys.readouterr().err

    def test_unknown_program(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A program that does not exist is reported by name."""
        spec = tmp_path / "function.json"
        spec.write_text('{"name": "f", "inferenceUrl": "/i", "containerImage": "x"}')
        status = cli.main(["local", "--spec", str(spec), "--", "no-such-program-xyz"])
        assert status == 1
        assert "command 'no-such-program-xyz' was not found" in capsys.readouterr().err

    def test_invalid_spec(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An invalid function.json lists its problems."""
        spec = tmp_path / "function.json"
        spec.write_text('{"inferenceUrl": "/i", "containerImage": "x", "inferencePort": 8080}')
        assert cli.main(["local", "--spec", str(spec), "--", sys.executable]) == 1
        err = capsys.readouterr().err
        assert "name is missing" in err
        assert "ports 8080 and 8010 are reserved" in err

    def test_function_port_in_use(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Something already serving the function's port would answer its health check."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            spec = tmp_path / "function.json"
            spec.write_text(json.dumps(contract_spec(port)))
            argv = ["local", "--spec", str(spec), "--port", "0", "--", *contract_command(port)]
            status = cli.main(argv)
        assert status == 1
        assert f"port {port} of the function is already in use" in capsys.readouterr().err

    def test_same_port_as_the_function(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The local NVCF cannot listen on the container's own port."""
        spec = tmp_path / "function.json"
        spec.write_text('{"name": "f", "inferenceUrl": "/i", "containerImage": "x"}')
        assert cli.main(["local", "--spec", str(spec), "--port", "8000", "--", "python"]) == 1
        assert "--port 8000 is the function's own port" in capsys.readouterr().err

    def test_port_in_use(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A port that is taken says how to pick another."""
        spec = tmp_path / "function.json"
        spec.write_text('{"name": "f", "inferenceUrl": "/i", "containerImage": "x"}')
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            status = cli.main(
                ["local", "--spec", str(spec), "--port", str(port), "--", sys.executable]
            )
        assert status == 1
        assert f"cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err
