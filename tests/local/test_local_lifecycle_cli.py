"""``nvcf-helpers function`` and ``deploy`` run as programs against an empty local NVCF.

A function goes through NVCF's whole lifecycle from the command line:
registered (two versions), deployed on two instances, invoked, undeployed,
removed; and each mistake ends with exit status 1 and the API's reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from local_support import API_KEY, CONTRACT_SERVER, contract_spec

from nvcf_helpers.client import NvcfApiError, NvcfClient
from nvcf_helpers.local import LocalNvcf

pytestmark = pytest.mark.integration

NVCF_HELPERS = str(Path(sys.executable).with_name("nvcf-helpers"))
CONTRACT_IMAGE = "local/contract-server:cli"
FAILING_IMAGE = "local/exits-at-start:cli"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNvcf]:
    """An empty local NVCF that runs the contract server (one per instance) and a crasher."""
    log = tmp_path_factory.mktemp("nvcf-lifecycle-cli") / "output.log"
    local = LocalNvcf(
        None,
        image_commands={
            CONTRACT_IMAGE: [sys.executable, str(CONTRACT_SERVER), "{port}"],
            FAILING_IMAGE: [sys.executable, "-c", "import sys; sys.exit(3)"],
        },
        api_key=API_KEY,
        output=log,
    )
    with local:
        yield local


@pytest.fixture(autouse=True)
def _forget_functions(cloud: LocalNvcf) -> Iterator[None]:
    """Each test starts and ends with no function registered."""
    yield
    client = cloud.client()
    for version in client.list_functions():
        client.delete_version(version["id"], version["versionId"])


class Cli:
    """``nvcf-helpers`` as a user runs it, pointed at the local NVCF by its environment."""

    def __init__(self, cloud: LocalNvcf) -> None:
        self.env = {**os.environ, "NVCF_BASE_URL": cloud.base_url, "NVCF_API_KEY": API_KEY}
        self.env.pop("NGC_API_KEY", None)

    def __call__(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [NVCF_HELPERS, *argv],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )

    def json(self, *argv: str) -> Any:
        """Run with ``--json``; the command must succeed and print JSON only."""
        done = self(*argv, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def cli(cloud: LocalNvcf) -> Cli:
    return Cli(cloud)


def definition(tmp_path: Path, name: str = "echo", image: str = CONTRACT_IMAGE) -> Path:
    """A function.json for ``image`` (its ports become each instance's own)."""
    spec = {**contract_spec(8000), "name": name, "containerImage": image}
    del spec["containerEnvironment"]
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec))
    return path


def _pids(client: NvcfClient, function_id: str, calls: int) -> set[int]:
    """The container pids that answered ``calls`` invocations sent at once."""

    def invoke(index: int) -> int:
        result = client.invoke(function_id, {"call": index, "sleep": 0.3}, timeout=60)
        assert result.json()["input"]["call"] == index
        return int(result.json()["pid"])

    with ThreadPoolExecutor(calls) as pool:
        return set(pool.map(invoke, range(calls)))


class TestLifecycle:
    """Register, deploy, invoke, undeploy and remove, as ``ngc cf`` would."""

    def test_from_registration_to_removal(self, cli: Cli, cloud: LocalNvcf, tmp_path: Path) -> None:
        """Two versions, one deployed on two instances that both serve, then all undone."""
        spec = definition(tmp_path)
        first = cli.json("function", "create", str(spec))["function"]
        assert first["status"] == "INACTIVE"
        fid, vid = first["id"], first["versionId"]
        second = cli.json("function", "create", str(spec), "--function-id", fid)["function"]
        assert (second["id"], second["status"]) == (fid, "INACTIVE")
        assert second["versionId"] != vid

        listed = cli("function", "list")
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert lines[0].split() == ["NAME", "FUNCTION", "ID", "VERSION", "ID", "STATUS"]
        assert sorted(line.split()[2:] for line in lines[1:]) == sorted(
            [[vid, "INACTIVE"], [second["versionId"], "INACTIVE"]]
        )

        deployed = cli(
            "deploy", "create", fid, vid, "--min-instances", "2", "--max-instances", "2", "--wait"
        )
        assert deployed.returncode == 0, deployed.stderr
        assert f"echo version {vid}: DEPLOYING" in deployed.stderr
        assert f"echo version {vid}: ACTIVE" in deployed.stderr
        assert "status         ACTIVE" in deployed.stdout
        assert "specification  gpu local, instance type local, min 2, max 2" in deployed.stdout

        client = cloud.client()
        assert len(_pids(client, fid, 6)) == 2
        invoked = cli("invoke", fid, "-d", '{"via": "cli"}', "--quiet")
        assert invoked.returncode == 0, invoked.stderr
        assert json.loads(invoked.stdout)["input"] == {"via": "cli"}

        info = cli.json("deploy", "info", fid, vid)["deployment"]
        assert info["functionStatus"] == "ACTIVE"
        assert [i["status"] for i in info["instances"]] == ["ACTIVE", "ACTIVE"]
        shown = cli("deploy", "info", fid, vid)
        assert "instances      2 (#0 ACTIVE, #1 ACTIVE)" in shown.stdout

        removed = cli.json("deploy", "remove", fid, vid)["function"]
        assert removed["status"] == "INACTIVE"
        refused = cli("invoke", fid, "--quiet")
        assert refused.returncode == 1
        assert "answered 404" in refused.stderr
        assert "has no ACTIVE version" in refused.stderr
        with pytest.raises(NvcfApiError) as caught:
            client.invoke(fid, {})
        assert caught.value.status == 404

        for version_id in (vid, second["versionId"]):
            gone = cli("function", "remove", fid, version_id)
            assert gone.returncode == 0, gone.stderr
            assert gone.stdout == f"removed version {version_id} of function {fid}\n"
        assert cli.json("function", "list") == {"functions": []}
        assert cli("function", "list").stderr == "no functions\n"

    def test_info_and_update(self, cli: Cli, tmp_path: Path) -> None:
        """``function info`` shows a version or the versions; ``deploy update`` rescales."""
        created = cli.json("function", "create", str(definition(tmp_path)))["function"]
        fid, vid = created["id"], created["versionId"]
        shown = cli("function", "info", fid, vid)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[:4] == [
            "name         echo",
            f"function id  {fid}",
            f"version id   {vid}",
            "status       INACTIVE",
        ]
        assert cli.json("function", "info", fid)["functions"][0]["versionId"] == vid
        assert cli("deploy", "create", fid, vid, "--wait").returncode == 0
        updated = cli.json("deploy", "update", fid, vid, "--min-instances", "2", "--wait")
        spec = updated["deployment"]["deploymentSpecifications"][0]
        assert (spec["minInstances"], spec["maxInstances"]) == (2, 2)
        assert len(updated["deployment"]["instances"]) == 2


class TestMistakes:
    """Each mistake: exit status 1, one error line with the API's reason, no traceback."""

    def test_bad_definition_is_refused_by_the_api(self, cli: Cli, tmp_path: Path) -> None:
        """A name with a space: the API's 400 detail names it."""
        done = cli("function", "create", str(definition(tmp_path, name="my echo")))
        assert done.returncode == 1
        assert done.stderr.startswith("nvcf-helpers function: error: ")
        assert "answered 400: the function definition: name 'my echo' does not match" in (
            done.stderr
        )
        assert "Traceback" not in done.stderr
        assert done.stdout == ""

    @pytest.mark.parametrize(
        ("content", "reason"),
        [
            (None, "cannot read it (No such file or directory)"),
            ("{", "is not valid JSON"),
            ("[]", "holds a JSON list: a function definition is an object"),
        ],
    )
    def test_unreadable_spec_file(
        self, cli: Cli, tmp_path: Path, content: str | None, reason: str
    ) -> None:
        """A missing, broken or non-object SPEC is named before anything is sent."""
        path = tmp_path / "function.json"
        if content is not None:
            path.write_text(content)
        done = cli("function", "create", str(path))
        assert done.returncode == 1
        assert done.stderr.startswith(f"nvcf-helpers function: error: {path}: {reason}")
        assert done.stderr.count("\n") == 1

    def test_min_above_max(self, cli: Cli, tmp_path: Path) -> None:
        """minInstances 3, maxInstances 2: NVCF's own words come back."""
        created = cli.json("function", "create", str(definition(tmp_path)))["function"]
        done = cli(
            "deploy",
            "create",
            created["id"],
            created["versionId"],
            "--min-instances",
            "3",
            "--max-instances",
            "2",
        )
        assert done.returncode == 1
        assert done.stderr.startswith("nvcf-helpers deploy: error: ")
        assert "'minInstances' must be lesser than or equal to 'maxInstances'" in done.stderr
        assert "Traceback" not in done.stderr

    def test_wait_reports_a_container_that_exits(self, cli: Cli, tmp_path: Path) -> None:
        """--wait on a container that exits at start: ERROR, the reason and the fix, exit 1."""
        spec = definition(tmp_path, name="crasher", image=FAILING_IMAGE)
        created = cli.json("function", "create", str(spec))["function"]
        done = cli("deploy", "create", created["id"], created["versionId"], "--wait")
        assert done.returncode == 1
        assert done.stdout == ""
        last = done.stderr.splitlines()[-1]
        assert last.startswith(
            f"nvcf-helpers deploy: error: version {created['versionId']} of function crasher "
            f"({created['id']}) is ERROR: the container process exited with status 3; fix: "
        )
        assert "Traceback" not in done.stderr

    def test_unknown_version(self, cli: Cli) -> None:
        """An id the API does not know: its 404 detail, exit 1."""
        done = cli("deploy", "info", "no-such-function", "no-such-version")
        assert done.returncode == 1
        assert done.stderr.startswith("nvcf-helpers deploy: error: ")
        assert "answered 404" in done.stderr

    def test_wrong_key(self, cli: Cli) -> None:
        """--api-key overrides the environment; a wrong one is refused with a hint."""
        done = cli("function", "list", "--api-key", "wrong-key")
        assert done.returncode == 1
        assert "answered 401" in done.stderr
        assert "check the API key" in done.stderr
