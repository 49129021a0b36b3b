"""Tests for nvcf_helpers.spec: function definitions, defaults and problems."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from nvcf_helpers import NvcfHelperError, SpecError
from nvcf_helpers.spec import (
    RESERVED_PORTS,
    FunctionSpec,
    HealthCheck,
    ModelRef,
    load_spec,
    parse_duration,
    parse_spec,
)

ROOT = Path(__file__).resolve().parents[1]

CONTAINER = {
    "name": "echo",
    "inferenceUrl": "/v2/models/echo/infer",
    "containerImage": "nvcr.io/org/echo:1.0",
}


def spec_with(**changes: Any) -> dict[str, Any]:
    """The minimal container spec with some keys changed."""
    return {**CONTAINER, **changes}


def health_with(**changes: Any) -> dict[str, Any]:
    """A complete health object (NVCF requires all five fields) with some changed."""
    health = {
        "protocol": "HTTP",
        "uri": "/v2/health/ready",
        "port": 8000,
        "timeout": "PT10S",
        "expectedStatusCode": 200,
    }
    return {**health, **changes}


class TestDefaults:
    """NVCF's defaults fill what the definition leaves out."""

    def test_minimal_container(self) -> None:
        """A name, a URL and an image are enough; the rest takes NVCF's defaults."""
        spec = parse_spec(CONTAINER)
        assert spec.name == "echo"
        assert spec.inference_url == "/v2/models/echo/infer"
        assert spec.inference_port == 8000
        assert spec.health == HealthCheck("HTTP", "/v2/health/ready", 8000, 10.0, 200)
        assert spec.container_image == "nvcr.io/org/echo:1.0"
        assert spec.api_body_format == "CUSTOM"
        assert spec.models == ()
        assert spec.helm_chart is None
        assert spec.raw == CONTAINER

    def test_health_given_in_full(self) -> None:
        """Every health field given is kept, the timeout parsed to seconds."""
        health = {
            "protocol": "gRPC",
            "uri": "/health",
            "port": 8001,
            "timeout": "PT10S",
            "expectedStatusCode": 204,
        }
        spec = parse_spec(spec_with(health=health, inferencePort=9000))
        assert spec.health == HealthCheck("gRPC", "/health", 8001, 10.0, 204)
        assert spec.inference_port == 9000

    def test_partial_health_is_refused(self) -> None:
        """A health object with only a URI lacks four fields NVCF requires."""
        with pytest.raises(SpecError) as caught:
            parse_spec(spec_with(health={"uri": "/ready"}))
        assert [p.split(" is missing")[0] for p in caught.value.problems] == [
            "health.protocol",
            "health.port",
            "health.timeout",
            "health.expectedStatusCode",
        ]

    def test_inference_path_gets_a_leading_slash(self) -> None:
        """inference_path always starts with '/'."""
        assert parse_spec(spec_with(inferenceUrl="infer")).inference_path == "/infer"
        assert parse_spec(CONTAINER).inference_path == "/v2/models/echo/infer"

    def test_frozen(self) -> None:
        """A FunctionSpec cannot be changed."""
        spec = parse_spec(CONTAINER)
        with pytest.raises(AttributeError):
            spec.name = "other"  # type: ignore[misc]


class TestDurations:
    """Health timeouts are ISO-8601 durations."""

    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("PT10S", 10.0), ("PT1M30S", 90.0), ("PT2H", 7200.0), ("P1D", 86400.0), ("PT0.5S", 0.5)],
    )
    def test_parse_duration(self, text: str, seconds: float) -> None:
        """Seconds, minutes, hours and days add up."""
        assert parse_duration(text) == seconds

    def test_timeout_in_spec(self) -> None:
        """health.timeout PT1M30S becomes 90 seconds."""
        spec = parse_spec(spec_with(health=health_with(timeout="PT1M30S")))
        assert spec.health.timeout_seconds == 90.0

    @pytest.mark.parametrize("text", ["P", "PT", "10S", "PT1M30", "P1DT", "", "PTS", "10"])
    def test_invalid_duration(self, text: str) -> None:
        """Anything that is not a duration raises ValueError with an example."""
        with pytest.raises(ValueError, match="is not an ISO-8601 duration such as 'PT10S'"):
            parse_duration(text)

    def test_invalid_timeout_in_spec(self) -> None:
        """A bad timeout is a spec problem naming the field."""
        with pytest.raises(SpecError, match=r"health\.timeout: '10' is not an ISO-8601"):
            parse_spec(spec_with(health=health_with(timeout=10)))


class TestProblems:
    """Every problem is reported at once, each naming its field."""

    def test_all_problems_at_once(self) -> None:
        """A spec with many faults lists every one of them."""
        bad = {
            "inferencePort": 8080,
            "health": {"protocol": "UDP", "uri": "health", "port": 0, "expectedStatusCode": 42},
            "tags": ["a b"],
            "apiBodyFormat": "XML",
        }
        with pytest.raises(SpecError) as caught:
            parse_spec(bad)
        problems = caught.value.problems
        expected = [
            "name is missing",
            "inferenceUrl is missing",
            "inferencePort is 8080: ports 8080 and 8010 are reserved",
            "health.timeout is missing",
            "health.protocol is 'UDP'",
            "health.uri is 'health'",
            "health.port is 0: expected an integer port between 1 and 65535",
            "health.expectedStatusCode is 42",
            "none of containerImage, models or helmChart is set",
            "apiBodyFormat is 'XML'",
            "tags[0] 'a b' does not match",
        ]
        assert len(problems) == len(expected)
        for fragment, problem in zip(expected, problems, strict=True):
            assert problem.startswith(fragment), (fragment, problem)
        message = str(caught.value)
        assert message.count("function.json: ") == len(expected)
        assert isinstance(caught.value, NvcfHelperError)

    @pytest.mark.parametrize("port", sorted(RESERVED_PORTS))
    def test_reserved_ports(self, port: int) -> None:
        """8080 and 8010 are refused for inference and health alike."""
        assert {8080, 8010} == RESERVED_PORTS
        with pytest.raises(SpecError) as caught:
            parse_spec(spec_with(inferencePort=port, health=health_with(port=port)))
        assert caught.value.problems == [
            f"inferencePort is {port}: ports 8080 and 8010 are reserved by NVCF; serve on 8000",
            f"health.port is {port}: ports 8080 and 8010 are reserved by NVCF; serve on 8000",
        ]

    @pytest.mark.parametrize("port", [True, "8000", 70000, -1, 8000.0])
    def test_non_port(self, port: object) -> None:
        """A port that is not an integer in 1..65535 is a problem."""
        with pytest.raises(SpecError, match=r"inferencePort is .*: expected an integer port"):
            parse_spec(spec_with(inferencePort=port))

    @pytest.mark.parametrize("key", ["name", "inferenceUrl"])
    @pytest.mark.parametrize("value", [None, "", "  ", 5])
    def test_required_strings(self, key: str, value: object) -> None:
        """name and inferenceUrl must be non-empty strings: null, blank or a number is refused."""
        with pytest.raises(SpecError, match=key):
            parse_spec(spec_with(**{key: value}))

    def test_top_level_not_an_object(self) -> None:
        """A JSON array is not a definition."""
        with pytest.raises(SpecError, match="the top level must be a JSON object"):
            parse_spec([CONTAINER])

    def test_source_names_the_file(self) -> None:
        """Problems are prefixed with the source given."""
        with pytest.raises(SpecError, match=r"^deploy/fn\.json: name is missing"):
            parse_spec({"inferenceUrl": "/x", "containerImage": "i"}, source="deploy/fn.json")

    def test_health_not_an_object(self) -> None:
        """health must be an object."""
        with pytest.raises(SpecError, match="health is 'yes': expected an object"):
            parse_spec(spec_with(health="yes"))


class TestKinds:
    """A spec is a container, model or helm function."""

    def test_container(self) -> None:
        """containerImage makes a container function."""
        assert parse_spec(CONTAINER).kind == "container"

    def test_model(self) -> None:
        """models alone make a model (BYOM) function."""
        data = {
            "name": "byom",
            "inferenceUrl": "/v2/models/m/infer",
            "models": [{"name": "m", "version": "1", "uri": "v2/org/models/m/1"}],
        }
        spec = parse_spec(data)
        assert spec.kind == "model"
        assert spec.models == (ModelRef("m", "1", "v2/org/models/m/1"),)

    def test_helm(self) -> None:
        """helmChart with the name of its service makes a helm function."""
        data = {
            "name": "h",
            "inferenceUrl": "/infer",
            "helmChart": "https://helm/chart.tgz",
            "helmChartServiceName": "svc",
        }
        spec = parse_spec(data)
        assert spec.kind == "helm"
        assert spec.helm_chart_service_name == "svc"

    def test_helm_needs_its_service_name(self) -> None:
        """NVCF refuses a helm chart without helmChartServiceName."""
        data = {"name": "h", "inferenceUrl": "/infer", "helmChart": "https://helm/chart.tgz"}
        with pytest.raises(SpecError) as caught:
            parse_spec(data)
        assert caught.value.problems == [
            "helmChart is set but helmChartServiceName is missing: name the chart's Service "
            "that serves inferencePort in helmChartServiceName"
        ]

    def test_container_and_helm_are_exclusive(self) -> None:
        """A spec cannot be both a container and a helm function."""
        with pytest.raises(SpecError, match="helmChart cannot be combined with containerImage"):
            parse_spec(spec_with(helmChart="chart", helmChartServiceName="svc"))

    @pytest.mark.parametrize(
        ("models", "message"),
        [
            ([], "models must be a non-empty list"),
            ("m", "models must be a non-empty list"),
            ([{"name": "m"}], r"models\[0\] needs a string 'name' and 'version'"),
        ],
    )
    def test_bad_models(self, models: object, message: str) -> None:
        """models must be a list of {name, version} objects."""
        data = {"name": "b", "inferenceUrl": "/i", "models": models}
        with pytest.raises(SpecError, match=message):
            parse_spec(data)


class TestLoadSpec:
    """load_spec reads a function.json file."""

    def test_loads_file(self, tmp_path: Path) -> None:
        """A valid file parses to the same spec as its dict."""
        path = tmp_path / "function.json"
        path.write_text(json.dumps(CONTAINER), encoding="utf-8")
        spec = load_spec(path)
        assert isinstance(spec, FunctionSpec)
        assert spec == parse_spec(CONTAINER)
        assert load_spec(str(path)) == spec

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a SpecError naming it."""
        path = tmp_path / "function.json"
        with pytest.raises(SpecError, match=r"function\.json: cannot read it \(No such file"):
            load_spec(path)

    def test_bad_json(self, tmp_path: Path) -> None:
        """Malformed JSON is a SpecError naming the file."""
        path = tmp_path / "function.json"
        path.write_text("{name: echo}", encoding="utf-8")
        with pytest.raises(SpecError, match=r"function\.json: is not valid JSON") as caught:
            load_spec(path)
        assert str(path) in str(caught.value)

    def test_problems_name_the_file(self, tmp_path: Path) -> None:
        """Validation problems of a loaded file carry its path."""
        path = tmp_path / "function.json"
        path.write_text(json.dumps({"name": "x"}), encoding="utf-8")
        with pytest.raises(SpecError, match=rf"^{re.escape(str(path))}: inferenceUrl is missing"):
            load_spec(path)


class TestRendering:
    """One model per definition: what parses a function.json also writes it."""

    @pytest.mark.parametrize(
        "path",
        sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*/*/*function.json")),
    )
    def test_examples_are_written_as_the_model_writes_them(self, path: str) -> None:
        """Each example's function.json is exactly ``FunctionSpec.render()`` of itself."""
        text = (ROOT / path).read_text(encoding="utf-8")
        assert load_spec(ROOT / path).render() == text

    def test_round_trip_keeps_every_key(self) -> None:
        """Parsing the rendered JSON gives the same spec, unmodelled keys included."""
        spec = parse_spec(
            {
                "name": "f",
                "inferenceUrl": "/infer",
                "containerImage": "img:1",
                "description": "kept",
                "tags": ["a"],
                "health": health_with(uri="/ready", timeout="PT1M30S"),
            }
        )
        again = parse_spec(spec.to_json())
        assert again == spec
        assert again.to_json()["description"] == "kept"
        assert again.to_json()["health"]["timeout"] == "PT90S"

    def test_on_port_moves_inference_and_health(self) -> None:
        """A local run on another port moves both, and the JSON says so."""
        spec = parse_spec({"name": "f", "inferenceUrl": "/infer", "containerImage": "img:1"})
        moved = spec.on_port(9123).to_json()
        assert (moved["inferencePort"], moved["health"]["port"]) == (9123, 9123)
