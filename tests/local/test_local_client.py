"""NvcfClient against the local NVCF: polling, 302 zips, assets, errors, streaming, management."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_support import API_KEY, CONTRACT_SERVER, contract_spec

from nvcf_helpers.client import (
    InvocationResult,
    NvcfApiError,
    NvcfClient,
    NvcfClientError,
    NvcfConnectionError,
    NvcfDeploymentError,
    Progress,
)
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.testing import free_port


@pytest.mark.integration
class TestClientInvoke:
    """invoke() returns the result whatever shape the API answers in."""

    def test_polling_session_reports_progress(
        self, client: NvcfClient, nvcf: LocalNvcf, gate: Path
    ) -> None:
        """202s are polled to the result, each passed to on_progress with its partial response."""
        events: list[Progress] = []

        def on_progress(progress: Progress) -> None:
            events.append(progress)
            if progress.percent == 25:
                gate.touch()  # the container finishes once the caller has seen its progress

        result = client.invoke(
            nvcf.function_id,
            {"progress": [[25, {"stage": "loading"}]], "wait_for": str(gate)},
            poll_seconds=1,
            on_progress=on_progress,
            timeout=60,
        )
        assert result.status == 200
        assert result.json()["input"]["progress"] == [[25, {"stage": "loading"}]]
        progressed = [e for e in events if e.percent == 25]
        assert progressed
        assert progressed[0].partial_response == {"stage": "loading"}
        assert progressed[0].status == "in-progress"
        assert {e.request_id for e in events} == {result.request_id}

    def test_302_is_followed_and_unzipped(
        self, client: NvcfClient, nvcf: LocalNvcf, tmp_path: Path
    ) -> None:
        """The zip's response becomes the body and its other entries the files."""
        result = client.invoke(nvcf.function_id, {"large": {"name": "out.bin", "bytes": 2048}})
        assert result.status == 302
        assert result.json()["input"]["large"]["name"] == "out.bin"
        assert dict(result.files) == {"out.bin": b"L" * 2048}
        written = result.save_files(tmp_path / "outputs")
        assert [p.read_bytes() for p in written] == [b"L" * 2048]

    def test_assets_are_uploaded_and_referenced(
        self, client: NvcfClient, nvcf: LocalNvcf, tmp_path: Path
    ) -> None:
        """Files given as assets reach the container under their new ids."""
        first, second = tmp_path / "a.txt", tmp_path / "b.json"
        first.write_text("first")
        second.write_text('{"second": true}')
        result = client.invoke(
            nvcf.function_id, {}, assets=[first, second], version_id=nvcf.version_id
        )
        assert len(result.asset_ids) == 2
        assert result.json()["assets"] == dict(
            zip(result.asset_ids, ["first", '{"second": true}'], strict=True)
        )
        listed = {a["assetId"]: a for a in client.list_assets()}
        assert listed[result.asset_ids[1]]["contentType"] == "application/json"
        assert listed[result.asset_ids[0]]["description"] == "a.txt"
        client.delete_asset(result.asset_ids[0])
        assert result.asset_ids[0] not in {a["assetId"] for a in client.list_assets()}

    def test_container_error_raises_with_problem(self, client: NvcfClient, nvcf: LocalNvcf) -> None:
        """A container 4xx raises NvcfApiError carrying the status, detail and problem."""
        with pytest.raises(NvcfApiError, match=r"answered 422 .*: the input is odd") as caught:
            client.invoke(nvcf.function_id, {"status": 422, "error": "the input is odd"})
        assert caught.value.status == 422
        assert caught.value.detail == "the input is odd"
        assert "inference-service" in caught.value.problem["type"]
        assert caught.value.request_id

    def test_wrong_key_raises_with_hint(self, nvcf: LocalNvcf) -> None:
        """A 401 says to check the API key."""
        client = NvcfClient(nvcf.base_url, "wrong-key")
        with pytest.raises(NvcfApiError, match=r"answered 401.*check the API key"):
            client.invoke(nvcf.function_id, {})

    def test_stream_yields_events(self, client: NvcfClient, nvcf: LocalNvcf) -> None:
        """stream() yields the server-sent event lines."""
        lines = list(client.stream(nvcf.function_id, {"events": 2}))
        assert [line for line in lines if line.startswith(b"data:")] == [
            b'data: {"event": 0}\n',
            b'data: {"event": 1}\n',
        ]


class TestClientOffline:
    """Behaviour that needs no server."""

    def test_unreachable_api(self) -> None:
        """A connection failure names the URL and what to check."""
        client = NvcfClient(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(
            NvcfConnectionError, match=r"cannot reach http://127\.0\.0\.1:\d+/v2/nvcf/functions"
        ):
            client.list_functions()

    def test_key_is_redacted_in_repr(self) -> None:
        """The API key never shows in the client's repr."""
        client = NvcfClient(api_key="nvapi-secret")
        assert "secret" not in repr(client)
        assert "https://api.nvcf.nvidia.com" in repr(client)

    def test_save_files_refuses_to_escape(self, tmp_path: Path) -> None:
        """A zip entry that climbs out of the output directory is refused."""
        result = InvocationResult(302, "r", {}, b"", {"../evil": b"x"})
        with pytest.raises(NvcfClientError, match=r"refusing to write '\.\./evil'"):
            result.save_files(tmp_path)

    def test_json_of_a_non_json_body(self) -> None:
        """json() on a binary body says to read .body instead."""
        with pytest.raises(NvcfClientError, match="not JSON"):
            InvocationResult(200, "r", {}, b"\x00").json()

    def test_imports_stay_light(self) -> None:
        """Importing the package, client, invoke and the local launcher never imports aiohttp."""
        code = (
            "import sys, nvcf_helpers, nvcf_helpers.client, nvcf_helpers.client.invoke, "
            "nvcf_helpers.local; print('aiohttp' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False"


# Images the empty local NVCF of TestClientManagement knows how to run.
SERVING_IMAGE = "local/contract-server:client"
EXITING_IMAGE = "local/exits-at-start:client"
SLEEPING_IMAGE = "local/never-healthy:client"


@pytest.fixture(scope="module")
def empty_nvcf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNvcf]:
    """A local NVCF with no function, and a command for each image above."""
    local = LocalNvcf(
        None,
        image_commands={
            SERVING_IMAGE: [sys.executable, str(CONTRACT_SERVER), "{port}"],
            EXITING_IMAGE: [sys.executable, "-c", "import sys; sys.exit(3)"],
            SLEEPING_IMAGE: [sys.executable, "-c", "import time; time.sleep(600)"],
        },
        api_key=API_KEY,
        output=tmp_path_factory.mktemp("nvcf-management") / "output.log",
    )
    with local:
        yield local


@pytest.fixture
def manager(empty_nvcf: LocalNvcf) -> Iterator[NvcfClient]:
    """A client of the empty local NVCF; every version it made is deleted afterwards."""
    client = empty_nvcf.client()
    yield client
    for version in client.list_functions():
        client.delete_version(version["id"], version["versionId"])


def _definition(name: str = "managed", image: str = SERVING_IMAGE) -> dict[str, Any]:
    spec = {**contract_spec(8000), "name": name, "containerImage": image}
    del spec["containerEnvironment"]
    return spec


def _one(gpu: str = "local", minimum: int = 1, maximum: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "gpu": gpu,
            "instanceType": gpu,
            "minInstances": minimum,
            "maxInstances": maximum,
            "maxRequestConcurrency": 1,
        }
    ]


@pytest.mark.integration
class TestClientManagement:
    """The management methods speak NVCF's function and deployment API."""

    def test_functions_and_versions(self, manager: NvcfClient) -> None:
        """A function and a second version are listed, shown and deleted."""
        first = manager.create_function(_definition())
        assert first["status"] == "INACTIVE"
        assert first["name"] == "managed"
        second = manager.create_version(first["id"], _definition())
        assert second["id"] == first["id"]
        assert second["versionId"] != first["versionId"]
        listed = {v["versionId"] for v in manager.list_versions(first["id"])}
        assert listed == {first["versionId"], second["versionId"]}
        assert {v["versionId"] for v in manager.list_functions()} == listed
        assert manager.get_version(first["id"], second["versionId"])["status"] == "INACTIVE"
        manager.delete_version(first["id"], second["versionId"])
        with pytest.raises(NvcfApiError) as caught:
            manager.get_version(first["id"], second["versionId"])
        assert caught.value.status == 404
        assert [v["versionId"] for v in manager.list_versions(first["id"])] == [first["versionId"]]

    def test_deploy_wait_update_undeploy(self, manager: NvcfClient) -> None:
        """DEPLOYING, then ACTIVE (each change reported once); rescaled; INACTIVE again."""
        assert manager.supported_gpus() == ["local"]
        version = manager.create_function(_definition())
        fid, vid = version["id"], version["versionId"]
        deployment = manager.create_deployment(fid, vid, _one())
        assert deployment["functionStatus"] == "DEPLOYING"
        seen: list[str] = []
        active = manager.wait_for_deployment(
            fid, vid, timeout=60, on_status=lambda v: seen.append(v["status"])
        )
        assert active["status"] == "ACTIVE"
        assert seen == ["DEPLOYING", "ACTIVE"]
        updated = manager.update_deployment(fid, vid, _one(minimum=2, maximum=3))
        assert updated["deploymentSpecifications"][0]["maxInstances"] == 3
        manager.wait_for_deployment(fid, vid, timeout=60)
        assert len(manager.get_deployment(fid, vid)["instances"]) == 2
        assert manager.invoke(fid, {"x": 1}).json()["input"] == {"x": 1}
        assert manager.delete_deployment(fid, vid)["status"] == "INACTIVE"
        with pytest.raises(NvcfApiError, match="has no deployment") as caught:
            manager.get_deployment(fid, vid)
        assert caught.value.status == 404

    def test_refusals_carry_the_detail(self, manager: NvcfClient) -> None:
        """A 400 raises NvcfApiError whose detail names the problem, in NVCF's words."""
        with pytest.raises(NvcfApiError, match="name 'a b' does not match") as caught:
            manager.create_function(_definition(name="a b"))
        assert caught.value.status == 400
        assert caught.value.problem["status"] == 400
        version = manager.create_function(_definition())
        with pytest.raises(NvcfApiError) as caught:
            manager.create_deployment(
                version["id"], version["versionId"], _one(minimum=3, maximum=2)
            )
        assert "'minInstances' must be lesser than or equal to 'maxInstances'" in (
            caught.value.detail
        )
        assert manager.get_version(version["id"], version["versionId"])["status"] == "INACTIVE"

    def test_failed_deployment_raises_with_the_reason(self, manager: NvcfClient) -> None:
        """A container that exits at start: NvcfDeploymentError with healthInfo's error and fix."""
        version = manager.create_function(_definition("exits", EXITING_IMAGE))
        fid, vid = version["id"], version["versionId"]
        manager.create_deployment(fid, vid, _one())
        with pytest.raises(NvcfDeploymentError) as caught:
            manager.wait_for_deployment(fid, vid, timeout=60)
        failure = caught.value
        assert isinstance(failure, NvcfClientError)
        assert failure.status == "ERROR"
        assert failure.error == "the container process exited with status 3"
        assert failure.fix
        assert failure.version["versionId"] == vid
        assert str(failure).startswith(
            f"version {vid} of function exits ({fid}) is ERROR: the container process "
            "exited with status 3; fix: "
        )

    def test_wait_gives_up(self, manager: NvcfClient) -> None:
        """Still DEPLOYING at the timeout, or never deployed: NvcfClientError saying which."""
        version = manager.create_function(_definition("sleeper", SLEEPING_IMAGE))
        fid, vid = version["id"], version["versionId"]
        with pytest.raises(NvcfClientError, match="is INACTIVE, so no deployment is under way"):
            manager.wait_for_deployment(fid, vid, timeout=5)
        manager.create_deployment(fid, vid, _one())
        with pytest.raises(NvcfClientError, match=r"is still DEPLOYING after 0\.5 s") as caught:
            manager.wait_for_deployment(fid, vid, timeout=0.5)
        assert not isinstance(caught.value, NvcfDeploymentError)
