"""The registry's rules (facts §5), and the whole lifecycle through the local NVCF's HTTP API."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from local_support import CONTRACT_SERVER, Raw, Reply

from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.local.function import FunctionStatus
from nvcf_helpers.local.registry import Registry, RegistryError, version_status
from nvcf_helpers.spec import DeploymentSpec, parse_spec

A = FunctionStatus.ACTIVE
D = FunctionStatus.DEPLOYING
E = FunctionStatus.ERROR
I = FunctionStatus.INACTIVE  # noqa: E741 - the four letters read as the states
IMAGE = "nvcr.io/local/contract-server:1"
NO_PORT_IMAGE = "nvcr.io/local/fixed-port:1"
KEY = "registry-key"


def _spec(name: str = "echo", image: str = IMAGE) -> dict[str, Any]:
    return {
        "name": name,
        "inferenceUrl": "/infer",
        "inferencePort": 8000,
        "health": {
            "protocol": "HTTP",
            "uri": "/health",
            "port": 8000,
            "timeout": "PT5S",
            "expectedStatusCode": 200,
        },
        "containerImage": image,
    }


def _deployment(min_instances: int = 1, max_instances: int = 1) -> DeploymentSpec:
    return DeploymentSpec(
        gpu="local",
        instance_type="local",
        min_instances=min_instances,
        max_instances=max_instances,
    )


class TestVersionStatus:
    """NVCF's scheduler rules, from the instances' states."""

    @pytest.mark.parametrize(
        ("current", "minimum", "instances", "expected"),
        [
            (D, 1, [I], D),  # not started yet
            (D, 1, [D], D),
            (D, 2, [A, D], D),
            (D, 2, [A, A], A),
            (D, 1, [E], E),  # every required instance failed
            (D, 2, [E, D], D),
            (A, 2, [A, E], FunctionStatus.DEGRADING),
            (A, 1, [E], FunctionStatus.DEGRADED),
            (FunctionStatus.DEGRADED, 1, [A], A),
            (E, 1, [A], E),  # ERROR stays until undeployed
        ],
    )
    def test_transitions(
        self,
        current: FunctionStatus,
        minimum: int,
        instances: list[FunctionStatus],
        expected: FunctionStatus,
    ) -> None:
        assert version_status(current, minimum, instances) is expected


class TestRegistry:
    def test_new_versions_are_inactive_and_deploy_only_from_inactive(self) -> None:
        registry = Registry()
        first = registry.create_function(parse_spec(_spec()))
        second = registry.create_version(first.function_id, parse_spec(_spec()))
        assert [v.status for v in registry.versions(first.function_id)] == [I, I]
        registry.deploy(first, [_deployment()])
        assert first.status is D
        with pytest.raises(RegistryError) as refused:
            registry.deploy(first, [_deployment()])
        assert refused.value.status == 400
        assert "NVCF deploys only an INACTIVE version" in refused.value.detail
        registry.undeploy(first)
        assert (first.status, first.deployment) == (I, None)
        assert second.status is I

    def test_min_instances_zero_is_active_at_once(self) -> None:
        registry = Registry()
        version = registry.create_function(parse_spec(_spec()))
        registry.deploy(version, [_deployment(0, 1)])
        assert version.status is A

    def test_unversioned_invocations_pick_active_or_degrading_at_random(self) -> None:
        registry = Registry()
        first = registry.create_function(parse_spec(_spec()))
        second = registry.create_version(first.function_id, parse_spec(_spec()))
        with pytest.raises(RegistryError) as none:
            registry.pick(first.function_id)
        assert none.value.status == 404
        first.status, second.status = A, FunctionStatus.DEGRADING
        picked = {registry.pick(first.function_id).version_id for _ in range(200)}
        assert picked == {first.version_id, second.version_id}
        first.status = second.status = FunctionStatus.DEGRADED
        first.error = "instance 0: the container process exited with status 3"
        with pytest.raises(RegistryError) as degraded:
            registry.pick(first.function_id)
        assert degraded.value.status == 400
        assert "exited with status 3" in degraded.value.detail

    def test_unknown_ids_are_404_and_the_last_version_takes_the_function(self) -> None:
        registry = Registry()
        version = registry.create_function(parse_spec(_spec()))
        with pytest.raises(RegistryError, match="GET /v2/nvcf/functions lists"):
            registry.versions("no-such-function")
        with pytest.raises(RegistryError, match="lists its versions"):
            registry.get(version.function_id, "no-such-version")
        registry.remove(version.function_id, version.version_id)
        assert registry.functions() == []


# -- the lifecycle through the HTTP API -------------------------------------------------------


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNvcf]:
    """An empty local NVCF that runs the contract server for IMAGE, one port per instance."""
    log = tmp_path_factory.mktemp("registry") / "output.log"
    with LocalNvcf(
        None,
        image_commands={
            IMAGE: [sys.executable, str(CONTRACT_SERVER), "{port}"],
            NO_PORT_IMAGE: [sys.executable, str(CONTRACT_SERVER), "8000"],
        },
        api_key=KEY,
        output=log,
    ) as nvcf:
        yield nvcf


def _ok(reply: Reply, status: int = 200) -> Any:
    assert reply.status == status, reply.body
    return reply.json() if reply.body else None


def _wait_status(raw: Raw, function_id: str, version_id: str, wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        version = _ok(raw("GET", f"/v2/nvcf/functions/{function_id}/versions/{version_id}"))
        if version["function"]["status"] == wanted:
            return dict(version["function"])
        assert time.monotonic() < deadline, version
        time.sleep(0.05)


@pytest.mark.integration
class TestLifecycleOverHttp:
    def test_register_deploy_two_instances_undeploy_delete(self, empty: LocalNvcf) -> None:
        raw = Raw(empty, KEY)
        created = _ok(raw("POST", "/v2/nvcf/functions", _spec("lifecycle")))["function"]
        fid, first = created["id"], created["versionId"]
        assert created["status"] == "INACTIVE"
        second = _ok(raw("POST", f"/v2/nvcf/functions/{fid}/versions", _spec("lifecycle")))
        vid = second["function"]["versionId"]
        versions = _ok(raw("GET", f"/v2/nvcf/functions/{fid}/versions"))["functions"]
        assert {(v["versionId"], v["status"]) for v in versions} == {
            (first, "INACTIVE"),
            (vid, "INACTIVE"),
        }
        deployments = f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"
        specs = {
            "deploymentSpecifications": [
                {"gpu": "local", "instanceType": "local", "minInstances": 2, "maxInstances": 2}
            ]
        }
        deployed = _ok(raw("POST", deployments, specs))["deployment"]
        assert deployed["functionStatus"] in ("DEPLOYING", "ACTIVE")
        _wait_status(raw, fid, vid, "ACTIVE")
        pids = {_ok(raw.invoke_function(fid, {"n": n}))["pid"] for n in range(12)}
        assert len(pids) == 2  # both instances served requests
        instances = _ok(raw("GET", deployments))["deployment"]["instances"]
        assert [i["status"] for i in instances] == ["ACTIVE", "ACTIVE"]
        assert len({i["inferencePort"] for i in instances}) == 2
        again = raw("POST", deployments, specs)
        assert again.status == 400
        assert "NVCF deploys only an INACTIVE version" in again.json()["detail"]
        undeployed = _ok(raw("DELETE", deployments))["function"]
        assert undeployed["status"] == "INACTIVE"
        refused = raw.invoke_function(fid, {})
        assert refused.status == 404
        assert "has no ACTIVE version (its versions are INACTIVE)" in refused.json()["detail"]
        for version_id in (first, vid):
            _ok(raw("DELETE", f"/v2/nvcf/functions/{fid}/versions/{version_id}"), 204)
        listed = _ok(raw("GET", "/v2/nvcf/functions"))["functions"]
        assert fid not in {f["id"] for f in listed}

    def test_validation_names_each_problem(self, empty: LocalNvcf) -> None:
        raw = Raw(empty, KEY)
        bad = {**_spec("has space"), "helmChart": "https://helm.ngc.nvidia.com/x.tgz"}
        refused = raw("POST", "/v2/nvcf/functions", bad)
        assert refused.status == 400
        detail = refused.json()["detail"]
        assert "has space" in detail
        assert "helmChart" in detail
        created = _ok(raw("POST", "/v2/nvcf/functions", _spec("valid")))["function"]
        path = f"/v2/nvcf/deployments/functions/{created['id']}/versions/{created['versionId']}"
        specs = {"deploymentSpecifications": [{"gpu": "local", "instanceType": "local"}]}
        specs["deploymentSpecifications"][0].update(minInstances=3, maxInstances=2)
        refused = raw("POST", path, specs)
        assert refused.status == 400
        assert (
            "'minInstances' must be lesser than or equal to 'maxInstances'"
            in (refused.json()["detail"])
        )
        assert _ok(raw("GET", "/v2/nvcf/supportedGpus")) == {"gpus": ["local"]}

    def test_many_instances_need_a_port_placeholder(self, empty: LocalNvcf) -> None:
        raw = Raw(empty, KEY)
        created = _ok(raw("POST", "/v2/nvcf/functions", _spec("fixed", NO_PORT_IMAGE)))
        fid, vid = created["function"]["id"], created["function"]["versionId"]
        path = f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"
        two = {
            "deploymentSpecifications": [
                {"gpu": "local", "instanceType": "local", "minInstances": 2, "maxInstances": 2}
            ]
        }
        refused = raw("POST", path, two)
        assert refused.status == 400
        assert "has no {port}" in refused.json()["detail"]
        assert _ok(raw("GET", f"/v2/nvcf/functions/{fid}/versions/{vid}"))["function"][
            "status"
        ] == ("INACTIVE")

    def test_an_image_nothing_runs_is_refused_with_the_option_to_use(
        self, empty: LocalNvcf
    ) -> None:
        raw = Raw(empty, KEY)
        created = _ok(raw("POST", "/v2/nvcf/functions", _spec("unknown", "nvcr.io/x/y:2")))
        fid, vid = created["function"]["id"], created["function"]["versionId"]
        specs = {
            "deploymentSpecifications": [
                {"gpu": "local", "instanceType": "local", "minInstances": 1, "maxInstances": 1}
            ]
        }
        refused = raw("POST", f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}", specs)
        assert refused.status == 400
        assert "--image-command 'nvcr.io/x/y:2=COMMAND'" in refused.json()["detail"]

    def test_one_of_two_instances_dies_degrading_and_still_served(self, empty: LocalNvcf) -> None:
        """Below minInstances but not none: DEGRADING, and the other instance takes the work."""
        raw = Raw(empty, KEY)
        created = _ok(raw("POST", "/v2/nvcf/functions", _spec("degrading")))["function"]
        fid, vid = created["id"], created["versionId"]
        path = f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"
        two = {
            "deploymentSpecifications": [
                {"gpu": "local", "instanceType": "local", "minInstances": 2, "maxInstances": 2}
            ]
        }
        _ok(raw("POST", path, two))
        _wait_status(raw, fid, vid, "ACTIVE")
        crashed = raw.invoke_function(fid, {"crash": True})
        assert crashed.status == 500
        version = _wait_status(raw, fid, vid, "DEGRADING")
        assert version["healthInfo"]["error"].startswith("the container process exited")
        served = {_ok(raw.invoke_function(fid, {"n": n}))["pid"] for n in range(4)}
        assert len(served) == 1  # the instance still running
        states = [i["status"] for i in _ok(raw("GET", path))["deployment"]["instances"]]
        assert sorted(states) == ["ACTIVE", "ERROR"]
        _ok(raw("DELETE", path))


def test_with_docker_each_instance_is_its_own_container(tmp_path: Any) -> None:
    """--image: one docker run per instance, each with its own name and published ports."""
    import asyncio

    from nvcf_helpers.local.asset_store import AssetStore
    from nvcf_helpers.local.deployment import Deployment, DeploymentSettings, Launch
    from nvcf_helpers.local.worker import WorkerFiles

    async def commands() -> list[list[str]]:
        registry = Registry()
        version = registry.create_function(parse_spec(_spec()))
        registry.deploy(version, [_deployment(2, 2)])
        settings = DeploymentSettings(tmp_path, 10.0, 5 << 20, 100, 60.0, 1 << 20)
        (tmp_path / "assets").mkdir()
        deployment = Deployment(
            version,
            Launch(image="nvcr.io/org/echo:1"),
            settings,
            files=WorkerFiles.under(tmp_path),
            assets=AssetStore(tmp_path / "assets"),
        )
        deployment.prepare()
        try:
            return [instance.supervisor.command for instance in deployment.instances]
        finally:
            await deployment.session.close()

    first, second = asyncio.run(commands())
    assert first[:3] == second[:3] == ["docker", "run", "--rm"]
    names_given = [command[command.index("--name") + 1] for command in (first, second)]
    assert names_given[0].endswith("-0")
    assert names_given[1].endswith("-1")
    published = [command[command.index("--publish") + 1] for command in (first, second)]
    assert published[0] != published[1]
