"""NVCF's own rules for function definitions and deployment specifications.

Each rule of NVCF's function API (``CreateFunctionRequest``, ``HealthDto``,
``SecretDto``, ``ContainerEnvironmentEntryDto``, ``GpuSpecificationDto``) has a
test that a body breaking it is refused with a message naming the field and
the fix, and bodies that follow it, NVCF's documented examples among them, pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nvcf_helpers import SpecError
from nvcf_helpers.cli import main
from nvcf_helpers.spec import (
    DeploymentSpec,
    EnvironmentEntry,
    HealthCheck,
    ModelRef,
    Secret,
    parse_deployment,
    parse_spec,
)

CONTAINER: dict[str, Any] = {
    "name": "echo",
    "inferenceUrl": "/echo",
    "containerImage": "nvcr.io/org/echo:1",
}
HELM: dict[str, Any] = {
    "name": "helm-fn",
    "inferenceUrl": "/infer",
    "helmChart": "https://helm.ngc.nvidia.com/org/charts/chart-1.0.tgz",
    "helmChartServiceName": "entry",
}
HEALTH: dict[str, Any] = {
    "protocol": "HTTP",
    "uri": "/health",
    "port": 8000,
    "timeout": "PT10S",
    "expectedStatusCode": 200,
}
MODELS = [{"name": "m", "version": "1", "uri": "v2/org/o/models/m/versions/1/zip"}]

# NVCF's documentation: "Creating a Function with a Custom Container".
DOCUMENTED_ECHO = {
    "name": "echo_function",
    "inferenceUrl": "/echo",
    "containerImage": "nvcr.io/qtfpt1h06ieu/c-tryhhjju67hjgjf/echo:latest",
    "apiBodyFormat": "CUSTOM",
}
# NVCF's documentation: "Function Creation with Helmchart".
DOCUMENTED_HELM = {
    "name": "function_name",
    "inferenceUrl": "v2/models/model_name/versions/model_version/infer",
    "inferencePort": 8001,
    "helmChart": "https://helm.ngc.nvidia.com/plq9i6ygkfzp/charts/inference-test-1.0.tgz",
    "helmChartServiceName": "service_name",
    "apiBodyFormat": "CUSTOM",
}
# NVCF's documentation: the body of "deploy a function version".
DOCUMENTED_DEPLOYMENT = {
    "deploymentSpecifications": [
        {"gpu": "L40", "backend": "OCI", "maxInstances": 2, "minInstances": 1},
        {"gpu": "T10", "backend": "GFN", "maxInstances": 2, "minInstances": 1},
    ]
}
DEPLOYMENT = {
    "gpu": "L40",
    "instanceType": "gl40_1.br20_2xlarge",
    "minInstances": 0,
    "maxInstances": 1,
}


def problems_of(data: Any) -> list[str]:
    """The problems parse_spec reports for ``data`` (it must report some)."""
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    return caught.value.problems


def deployment_problems(*entries: Any) -> list[str]:
    """The problems parse_deployment reports for these entries."""
    with pytest.raises(SpecError) as caught:
        parse_deployment({"deploymentSpecifications": list(entries)})
    return caught.value.problems


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``base`` with keys changed; a value of None removes the key."""
    merged = {**base, **changes}
    return {key: value for key, value in merged.items() if value is not None}


class TestDocumentedExamples:
    """The bodies NVCF's documentation shows are valid."""

    def test_echo_container(self) -> None:
        """The echo container function parses as a container function."""
        spec = parse_spec(DOCUMENTED_ECHO)
        assert (spec.kind, spec.name, spec.api_body_format) == (
            "container",
            "echo_function",
            "CUSTOM",
        )
        assert spec.function_type == "DEFAULT"

    def test_helm(self) -> None:
        """The helm example keeps its chart, service name and port."""
        spec = parse_spec(DOCUMENTED_HELM)
        assert spec.kind == "helm"
        assert spec.helm_chart_service_name == "service_name"
        assert spec.inference_port == 8001
        assert spec.to_json()["helmChartServiceName"] == "service_name"

    def test_deployment_needs_instance_type(self) -> None:
        """NVCF's source requires instanceType, which the documented deployment body leaves out."""
        with pytest.raises(SpecError) as caught:
            parse_deployment(DOCUMENTED_DEPLOYMENT)
        assert [p.split(":")[0] for p in caught.value.problems] == [
            "deploymentSpecifications[0].instanceType is missing",
            "deploymentSpecifications[1].instanceType is missing",
        ]

    def test_deployment_with_instance_types(self) -> None:
        """The documented body with an instance type for each GPU passes, defaults applied."""
        body = {
            "deploymentSpecifications": [
                {**entry, "instanceType": f"{entry['gpu'].lower()}.x1"}
                for entry in DOCUMENTED_DEPLOYMENT["deploymentSpecifications"]
            ]
        }
        specs = parse_deployment(body)
        assert specs == (
            DeploymentSpec(
                gpu="L40", instance_type="l40.x1", backend="OCI", min_instances=1, max_instances=2
            ),
            DeploymentSpec(
                gpu="T10", instance_type="t10.x1", backend="GFN", min_instances=1, max_instances=2
            ),
        )
        assert specs[0].max_request_concurrency == 1


class TestName:
    """name: ^[a-z0-9A-Z][a-z0-9A-Z\\-_]*$, 1 to 128 characters."""

    @pytest.mark.parametrize("name", ["a", "echo_function", "Echo-2", "9lives", "x" * 128])
    def test_valid(self, name: str) -> None:
        """Letters, digits, '-' and '_', starting with a letter or digit, up to 128."""
        assert parse_spec(with_(CONTAINER, name=name)).name == name

    @pytest.mark.parametrize("name", ["my fn", "-lead", "_lead", "dot.ted", "é", "ok\n"])
    def test_pattern(self, name: str) -> None:
        """Anything else names the pattern and what to use."""
        assert problems_of(with_(CONTAINER, name=name)) == [
            f"name {name!r} does not match ^[a-z0-9A-Z][a-z0-9A-Z\\-_]*$: use letters, digits, "
            "'-' and '_', starting with a letter or digit"
        ]

    def test_length(self) -> None:
        """129 characters is one too many."""
        assert problems_of(with_(CONTAINER, name="x" * 129)) == [
            "name is 129 characters long: NVCF allows at most 128; shorten it"
        ]

    def test_missing(self) -> None:
        """A definition needs a name."""
        assert problems_of(with_(CONTAINER, name=None)) == [
            "name is missing: give the function a name"
        ]


class TestRequiredKeys:
    """inferenceUrl, and one of containerImage, models or helmChart."""

    def test_inference_url_missing(self) -> None:
        """inferenceUrl is required."""
        assert problems_of(with_(CONTAINER, inferenceUrl=None)) == [
            "inferenceUrl is missing: e.g. '/v2/models/my_model/infer'"
        ]

    def test_none_of_image_models_chart(self) -> None:
        """Without an image, models or a chart there is nothing to run."""
        assert problems_of(with_(CONTAINER, containerImage=None)) == [
            "none of containerImage, models or helmChart is set: give a container image, "
            "NGC models or a helm chart"
        ]

    def test_image_with_models(self) -> None:
        """A container may also mount models."""
        spec = parse_spec(with_(CONTAINER, models=MODELS))
        assert spec.kind == "container"
        assert spec.models == (ModelRef("m", "1", "v2/org/o/models/m/versions/1/zip"),)


class TestHelm:
    """A helm function names its service and takes nothing of a container's."""

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("containerImage", "nvcr.io/org/echo:1"),
            ("containerArgs", "--port 8000"),
            ("containerEnvironment", [{"key": "A", "value": "1"}]),
        ],
    )
    def test_not_combined_with_container_keys(self, key: str, value: object) -> None:
        """containerImage, containerArgs and containerEnvironment are refused beside helmChart."""
        assert problems_of(with_(HELM, **{key: value})) == [
            f"helmChart cannot be combined with {key}: a helm function's containers and their "
            f"settings come from its chart; remove {key} or helmChart"
        ]

    def test_every_container_key_is_reported(self) -> None:
        """All three together give three problems."""
        body = with_(HELM, containerImage="i", containerArgs="a", containerEnvironment=[])
        assert [p.split(":")[0] for p in problems_of(body)] == [
            "helmChart cannot be combined with containerImage",
            "helmChart cannot be combined with containerArgs",
            "helmChart cannot be combined with containerEnvironment",
        ]

    def test_service_name_required(self) -> None:
        """helmChart without helmChartServiceName is refused."""
        assert problems_of(with_(HELM, helmChartServiceName=None)) == [
            "helmChart is set but helmChartServiceName is missing: name the chart's Service "
            "that serves inferencePort in helmChartServiceName"
        ]

    def test_service_name_without_chart(self) -> None:
        """helmChartServiceName without helmChart is refused too."""
        assert problems_of(with_(CONTAINER, helmChartServiceName="svc")) == [
            "helmChartServiceName is set but helmChart is missing: give the chart's URL in "
            "helmChart or remove helmChartServiceName"
        ]

    def test_blank_service_name(self) -> None:
        """A blank service name is no name."""
        assert problems_of(with_(HELM, helmChartServiceName=" ")) == [
            "helmChartServiceName is ' ': expected a non-empty string"
        ]


class TestHealth:
    """A given health object has all five fields, with port > 0."""

    def test_absent_takes_defaults(self) -> None:
        """Without health, NVCF's defaults apply; null means absent."""
        assert parse_spec(CONTAINER).health == HealthCheck()
        assert parse_spec(with_(CONTAINER, health=None)).health == HealthCheck()

    def test_complete(self) -> None:
        """All five fields are kept."""
        spec = parse_spec(with_(CONTAINER, health=HEALTH))
        assert spec.health == HealthCheck("HTTP", "/health", 8000, 10.0, 200)

    @pytest.mark.parametrize(
        ("field", "example"),
        [
            ("protocol", "'HTTP'"),
            ("uri", "'/v2/health/ready'"),
            ("port", "8000"),
            ("timeout", "'PT10S'"),
            ("expectedStatusCode", "200"),
        ],
    )
    def test_each_field_required(self, field: str, example: str) -> None:
        """A missing (or null) field is named with an example value."""
        expected = [
            f"health.{field} is missing: NVCF needs all five health fields once health is "
            f"given; add {field} (e.g. {example}) or leave health out to take the defaults"
        ]
        assert problems_of(with_(CONTAINER, health=with_(HEALTH, **{field: None}))) == expected
        assert problems_of(with_(CONTAINER, health={**HEALTH, field: None})) == expected

    def test_empty_object(self) -> None:
        """An empty health object lacks all five."""
        assert len(problems_of(with_(CONTAINER, health={}))) == 5

    @pytest.mark.parametrize("port", [0, -8000])
    def test_port_positive(self, port: int) -> None:
        """health.port must be above 0."""
        assert problems_of(with_(CONTAINER, health={**HEALTH, "port": port})) == [
            f"health.port is {port}: expected an integer port between 1 and 65535"
        ]


class TestEnumerations:
    """apiBodyFormat and functionType take NVCF's values; LLM needs models."""

    def test_defaults(self) -> None:
        """CUSTOM and DEFAULT when absent, and neither is written back unless given."""
        spec = parse_spec(CONTAINER)
        assert (spec.api_body_format, spec.function_type) == ("CUSTOM", "DEFAULT")
        assert "functionType" not in spec.to_json()

    @pytest.mark.parametrize("value", ["CUSTOM", "PREDICT_V2"])
    def test_api_body_formats(self, value: str) -> None:
        """Both formats are accepted."""
        assert parse_spec(with_(CONTAINER, apiBodyFormat=value)).api_body_format == value

    def test_api_body_format_refused(self) -> None:
        """Other formats are refused, naming the two."""
        assert problems_of(with_(CONTAINER, apiBodyFormat="JSON")) == [
            "apiBodyFormat is 'JSON': use 'CUSTOM' or 'PREDICT_V2'"
        ]

    @pytest.mark.parametrize("value", ["DEFAULT", "STREAMING"])
    def test_function_types(self, value: str) -> None:
        """DEFAULT and STREAMING need nothing more, and are written back."""
        spec = parse_spec(with_(CONTAINER, functionType=value))
        assert spec.function_type == value
        assert spec.to_json()["functionType"] == value

    def test_function_type_refused(self) -> None:
        """Other types are refused, naming the three (values are case-sensitive)."""
        assert problems_of(with_(CONTAINER, functionType="streaming")) == [
            "functionType is 'streaming': use 'DEFAULT', 'STREAMING' or 'LLM'"
        ]

    def test_llm_needs_models(self) -> None:
        """An LLM function without models is refused."""
        assert problems_of(with_(CONTAINER, functionType="LLM")) == [
            "functionType is 'LLM' but models is not set: list the function's models in "
            "models, or use functionType 'DEFAULT' or 'STREAMING'"
        ]

    def test_llm_with_models(self) -> None:
        """With models it is accepted."""
        spec = parse_spec(with_(CONTAINER, functionType="LLM", models=MODELS))
        assert spec.function_type == "LLM"


class TestTagsAndDescription:
    """At most 64 tags of at most 128 characters of [a-zA-Z0-9\\-_:=]; 256-character description."""

    def test_valid(self) -> None:
        """64 tags, one of 128 characters, with every allowed character, pass."""
        tags = ["team=ml", "a:b", "x-y_z", "t" * 128, *(f"t{i}" for i in range(60))]
        spec = parse_spec(with_(CONTAINER, tags=tags, description="d" * 256))
        assert spec.tags == tuple(tags)
        assert spec.description == "d" * 256

    def test_too_many(self) -> None:
        """65 tags are one too many."""
        assert problems_of(with_(CONTAINER, tags=[f"t{i}" for i in range(65)])) == [
            "tags has 65 entries: NVCF allows at most 64; remove 1"
        ]

    def test_too_long(self) -> None:
        """A 129-character tag is refused, by index."""
        assert problems_of(with_(CONTAINER, tags=["ok", "t" * 129])) == [
            "tags[1] is 129 characters long: NVCF allows at most 128; shorten it"
        ]

    @pytest.mark.parametrize("tag", ["two words", "a/b", "", "é", "a,b"])
    def test_pattern(self, tag: str) -> None:
        """Characters outside the set are refused, naming the set."""
        assert problems_of(with_(CONTAINER, tags=[tag])) == [
            f"tags[0] {tag!r} does not match [a-zA-Z0-9\\-_:=]+: use only letters, digits, "
            "'-', '_', ':' and '='"
        ]

    def test_not_strings(self) -> None:
        """Tags are strings in a list."""
        assert problems_of(with_(CONTAINER, tags="a")) == [
            "tags is 'a': use a list of strings such as ['vision', 'team=ml']"
        ]
        assert problems_of(with_(CONTAINER, tags=[5])) == [
            "tags[0] is 5: use a string such as 'team=ml'"
        ]

    def test_description_too_long(self) -> None:
        """257 characters is one too many."""
        assert problems_of(with_(CONTAINER, description="d" * 257)) == [
            "description is 257 characters long: NVCF allows at most 256; shorten it"
        ]

    def test_description_not_a_string(self) -> None:
        """A description is a string."""
        assert problems_of(with_(CONTAINER, description=["d"])) == [
            "description is ['d']: use a string of at most 256 characters"
        ]


class TestSecrets:
    """Secrets are {name, value}: names of 1 to 48 characters, values of 1 to 32768."""

    def test_valid(self) -> None:
        """Names with '_', '.' and '-' and values of up to 32768 trimmed characters pass."""
        secrets = [
            {"name": "API_KEY", "value": "sk-1"},
            {"name": "db.pass-word", "value": "  " + "v" * 32768 + "\n"},
            {"name": "n" * 48, "value": {"user": "u", "token": "t"}},
        ]
        spec = parse_spec(with_(CONTAINER, secrets=secrets))
        assert [s.name for s in spec.secrets] == ["API_KEY", "db.pass-word", "n" * 48]
        assert spec.secrets[2].value == {"user": "u", "token": "t"}
        assert spec.to_json()["secrets"] == secrets

    def test_value_never_shown(self) -> None:
        """A secret's repr, and so the spec's, leaves its value out."""
        spec = parse_spec(with_(CONTAINER, secrets=[{"name": "K", "value": "hunter2"}]))
        assert spec.secrets == (Secret("K", "hunter2"),)
        assert "hunter2" not in repr(spec.secrets)

    @pytest.mark.parametrize("name", ["-lead", ".lead", "has space", "a/b", "é"])
    def test_name_pattern(self, name: str) -> None:
        """Names outside the pattern are refused, naming it."""
        assert problems_of(with_(CONTAINER, secrets=[{"name": name, "value": "v"}])) == [
            f"secrets[0].name {name!r} does not match ^[a-z0-9A-Z][a-z0-9A-Z\\_\\.\\-]*$: use "
            "letters, digits, '_', '.' and '-', starting with a letter or digit"
        ]

    @pytest.mark.parametrize(("name", "length"), [("n" * 49, 49), ("", 0)])
    def test_name_length(self, name: str, length: int) -> None:
        """Names are 1 to 48 characters."""
        assert problems_of(with_(CONTAINER, secrets=[{"name": name, "value": "v"}])) == [
            f"secrets[0].name is {length} characters long: use 1 to 48 characters"
        ]

    def test_name_missing(self) -> None:
        """A secret needs a name."""
        assert problems_of(with_(CONTAINER, secrets=[{"value": "v"}])) == [
            "secrets[0].name is missing: give each secret a name such as 'API_KEY'"
        ]

    def test_value_missing(self) -> None:
        """A secret needs a value."""
        assert problems_of(with_(CONTAINER, secrets=[{"name": "K"}])) == [
            "secrets[0].value is missing: give the secret's value"
        ]

    def test_value_blank(self) -> None:
        """A value that trims to nothing is refused."""
        assert problems_of(with_(CONTAINER, secrets=[{"name": "K", "value": " \t\n"}])) == [
            "secrets[0].value is blank: give the secret a non-blank value"
        ]

    def test_value_too_long(self) -> None:
        """32769 characters after trimming is one too many, and the message shows no value."""
        problems = problems_of(with_(CONTAINER, secrets=[{"name": "K", "value": "v" * 32769}]))
        assert problems == [
            "secrets[0].value is 32769 characters long after trimming: NVCF allows at most "
            "32768; shorten it or deliver the data as an asset"
        ]

    def test_value_of_another_type(self) -> None:
        """A number is neither a string nor an object; the message shows its type, not it."""
        assert problems_of(with_(CONTAINER, secrets=[{"name": "K", "value": 12345}])) == [
            "secrets[0].value is a number: use a string or a JSON object"
        ]

    def test_duplicate_names(self) -> None:
        """The same name twice is refused, naming both entries."""
        secrets = [
            {"name": "K", "value": "a"},
            {"name": "L", "value": "b"},
            {"name": "K", "value": "c"},
        ]
        assert problems_of(with_(CONTAINER, secrets=secrets)) == [
            "secrets[2].name 'K' repeats secrets[0].name: give each secret a distinct name"
        ]

    def test_shape(self) -> None:
        """Secrets are a list of objects; a mapping of names to values is refused unseen."""
        assert problems_of(with_(CONTAINER, secrets={"K": "hunter2"})) == [
            "secrets is an object: use a list of {name, value} objects"
        ]
        assert problems_of(with_(CONTAINER, secrets=["K=hunter2"])) == [
            "secrets[0] is a string: use an object with a name and a value"
        ]


class TestContainerSettings:
    """containerEnvironment is a list of {key, value}; containerArgs is a string."""

    def test_valid(self) -> None:
        """Entries and arguments are kept, and written back."""
        environment = [{"key": "LOG_LEVEL", "value": "info"}, {"key": "EMPTY", "value": ""}]
        spec = parse_spec(with_(CONTAINER, containerEnvironment=environment, containerArgs="-v"))
        assert spec.container_environment == (
            EnvironmentEntry("LOG_LEVEL", "info"),
            EnvironmentEntry("EMPTY", ""),
        )
        assert spec.container_args == "-v"
        assert spec.to_json()["containerEnvironment"] == environment

    def test_key_required(self) -> None:
        """An entry without a key is refused."""
        assert problems_of(with_(CONTAINER, containerEnvironment=[{"value": "v"}])) == [
            "containerEnvironment[0].key is missing: give the variable's name"
        ]

    def test_value_required(self) -> None:
        """An entry without a value is refused."""
        assert problems_of(with_(CONTAINER, containerEnvironment=[{"key": "K"}])) == [
            "containerEnvironment[0].value is missing: give the variable's value as a string"
        ]

    def test_value_a_string(self) -> None:
        """A number is refused: write it as a string."""
        assert problems_of(with_(CONTAINER, containerEnvironment=[{"key": "K", "value": 1}])) == [
            "containerEnvironment[0].value is a number: write the value as a string"
        ]

    def test_shape(self) -> None:
        """A mapping is not a list of entries."""
        assert problems_of(with_(CONTAINER, containerEnvironment={"K": "v"})) == [
            "containerEnvironment is an object: use a list of {key, value} objects"
        ]
        assert problems_of(with_(CONTAINER, containerEnvironment=["K=v"])) == [
            "containerEnvironment[0] is a string: use an object with a key and a value"
        ]

    def test_args_a_string(self) -> None:
        """containerArgs is one string, as NVCF takes it."""
        assert problems_of(with_(CONTAINER, containerArgs=["-v"])) == [
            "containerArgs is ['-v']: write the arguments as one string, e.g. '--port 8000'"
        ]


class TestTogether:
    """Every problem is reported at once; what is valid writes back unchanged."""

    def test_all_problems_at_once(self) -> None:
        """A body breaking many rules lists each, prefixed with its source."""
        body = {
            "name": "bad name",
            "helmChart": "https://chart.tgz",
            "containerArgs": "-v",
            "health": {"port": 0},
            "functionType": "LLM",
            "tags": ["a b"],
            "description": "d" * 300,
            "secrets": [{"name": "K", "value": ""}, {"name": "K", "value": "x"}],
            "containerEnvironment": [{"key": "K"}],
        }
        with pytest.raises(SpecError) as caught:
            parse_spec(body, "fn.json")
        fields = [problem.split(" ")[0] for problem in caught.value.problems]
        assert fields == [
            "name",
            "inferenceUrl",
            *["health.protocol", "health.uri", "health.timeout", "health.expectedStatusCode"],
            "health.port",
            "helmChart",
            "helmChart",
            "helmChart",
            "functionType",
            "description",
            "tags[0]",
            "secrets[0].value",
            "secrets[1].name",
            "containerEnvironment[0].value",
        ]
        lines = str(caught.value).splitlines()
        assert lines == [f"fn.json: {problem}" for problem in caught.value.problems]

    def test_round_trip(self) -> None:
        """Every modelled key is written back as given, and parses to the same spec."""
        body = {
            **CONTAINER,
            "inferencePort": 8000,
            "containerArgs": "--workers 2",
            "containerEnvironment": [{"key": "A", "value": "1"}],
            "models": MODELS,
            "health": {**HEALTH, "timeout": "PT10S"},
            "apiBodyFormat": "PREDICT_V2",
            "functionType": "STREAMING",
            "description": "kept",
            "tags": ["a", "b=c"],
            "secrets": [{"name": "K", "value": "v"}],
            "custom": {"kept": True},
        }
        spec = parse_spec(body)
        assert spec.to_json() == body
        assert parse_spec(spec.to_json()) == spec

    def test_absent_stays_absent_and_empty_stays_empty(self) -> None:
        """Keys left out are not written; empty lists given are."""
        assert set(parse_spec(CONTAINER).to_json()) == {
            *CONTAINER,
            "inferencePort",
            "health",
            "apiBodyFormat",
        }
        empty = with_(CONTAINER, tags=[], secrets=[], containerEnvironment=[])
        written = parse_spec(empty).to_json()
        assert (written["tags"], written["secrets"], written["containerEnvironment"]) == (
            [],
            [],
            [],
        )


class TestDeployment:
    """Deployment specifications: GpuSpecificationDto's rules, each entry by index."""

    def test_valid(self) -> None:
        """A full entry parses, configuration and unmodelled keys kept, camelCase written back."""
        entry = {
            "gpu": "L40",
            "instanceType": "gl40_1.br20_2xlarge",
            "backend": "GFN",
            "minInstances": 0,
            "maxInstances": 4,
            "maxRequestConcurrency": 16384,
            "configuration": {"replicas": 2, "image": {"tag": "1"}},
            "regions": ["us-east-1"],
        }
        (spec,) = parse_deployment({"deploymentSpecifications": [entry]})
        assert (spec.gpu, spec.instance_type, spec.backend) == ("L40", "gl40_1.br20_2xlarge", "GFN")
        assert (spec.min_instances, spec.max_instances, spec.max_request_concurrency) == (
            0,
            4,
            16384,
        )
        assert spec.configuration == {"replicas": 2, "image": {"tag": "1"}}
        assert spec.to_json() == entry

    def test_defaults(self) -> None:
        """maxRequestConcurrency is 1 when absent; backend and configuration stay unset."""
        (spec,) = parse_deployment({"deploymentSpecifications": [DEPLOYMENT]})
        assert spec.max_request_concurrency == 1
        assert spec.to_json() == {**DEPLOYMENT, "maxRequestConcurrency": 1}

    @pytest.mark.parametrize("key", ["gpu", "instanceType"])
    def test_required_names(self, key: str) -> None:
        """gpu and instanceType must be present and not blank."""
        missing = deployment_problems(with_(DEPLOYMENT, **{key: None}))
        blank = deployment_problems({**DEPLOYMENT, key: "  "})
        assert missing[0].startswith(f"deploymentSpecifications[0].{key} is missing: name ")
        assert blank[0].startswith(f"deploymentSpecifications[0].{key} is '  ': name ")
        assert len(missing) == len(blank) == 1

    def test_max_instances_at_least_one(self) -> None:
        """maxInstances 0 is refused."""
        assert deployment_problems({**DEPLOYMENT, "maxInstances": 0}) == [
            "deploymentSpecifications[0].maxInstances is 0: use an integer of 1 or more"
        ]

    def test_min_instances_not_negative(self) -> None:
        """minInstances -1 is refused."""
        assert deployment_problems({**DEPLOYMENT, "minInstances": -1}) == [
            "deploymentSpecifications[0].minInstances is -1: use an integer of 0 or more"
        ]

    def test_min_not_above_max(self) -> None:
        """min > max carries NVCF's own message inside ours."""
        assert deployment_problems({**DEPLOYMENT, "minInstances": 3, "maxInstances": 2}) == [
            "deploymentSpecifications[0].minInstances is 3 and maxInstances is 2 (NVCF answers "
            "\"Invalid request: 'minInstances' must be lesser than or equal to 'maxInstances'\"): "
            "lower minInstances or raise maxInstances"
        ]

    @pytest.mark.parametrize("value", [0, 16385])
    def test_concurrency_range(self, value: int) -> None:
        """maxRequestConcurrency is 1 to 16384."""
        assert deployment_problems({**DEPLOYMENT, "maxRequestConcurrency": value}) == [
            f"deploymentSpecifications[0].maxRequestConcurrency is {value}: use an integer "
            "from 1 to 16384"
        ]

    @pytest.mark.parametrize("key", ["minInstances", "maxInstances", "maxRequestConcurrency"])
    @pytest.mark.parametrize("value", [True, 1.0, "1"])
    def test_non_integers(self, key: str, value: object) -> None:
        """Booleans, floats and strings are refused even when they look like 1."""
        problems = deployment_problems({**DEPLOYMENT, key: value})
        assert problems[0].startswith(
            f"deploymentSpecifications[0].{key} is {value!r}: use an integer"
        )

    @pytest.mark.parametrize("key", ["minInstances", "maxInstances"])
    def test_counts_required(self, key: str) -> None:
        """NVCF documents no default for the instance counts."""
        assert deployment_problems(with_(DEPLOYMENT, **{key: None})) == [
            f"deploymentSpecifications[0].{key} is missing: give an integer of "
            f"{0 if key == 'minInstances' else 1} or more"
        ]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"deploymentSpecifications": []}, "deploymentSpecifications is empty"),
            ({}, "deploymentSpecifications is missing"),
            ({"deploymentSpecifications": DEPLOYMENT}, "deploymentSpecifications is an object"),
            ([DEPLOYMENT], "the body is an array"),
        ],
    )
    def test_list_shape(self, body: object, message: str) -> None:
        """The body holds a non-empty list."""
        with pytest.raises(SpecError, match=rf"^deployment: {message}: "):
            parse_deployment(body)

    def test_entry_not_an_object(self) -> None:
        """Each entry is an object."""
        assert deployment_problems("L40") == [
            "deploymentSpecifications[0] is a string: use an object with gpu, instanceType, "
            "minInstances and maxInstances"
        ]

    def test_every_problem_names_its_index(self) -> None:
        """Problems of several entries are all reported, each with its index and the source."""
        with pytest.raises(SpecError) as caught:
            parse_deployment(
                {
                    "deploymentSpecifications": [
                        DEPLOYMENT,
                        {**DEPLOYMENT, "gpu": "", "maxInstances": 0},
                        {**DEPLOYMENT, "minInstances": 5, "maxInstances": 4},
                    ]
                },
                "the deployment",
            )
        assert [p.split(" ")[0] for p in caught.value.problems] == [
            "deploymentSpecifications[1].gpu",
            "deploymentSpecifications[1].maxInstances",
            "deploymentSpecifications[2].minInstances",
        ]
        assert str(caught.value).startswith("the deployment: deploymentSpecifications[1].gpu")


class TestCheckCommand:
    """``nvcf-helpers check`` reports every one of these problems, one line each."""

    def test_bad_function_json(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Each problem is a finding with the file, its line and a fix; the exit status is 1."""
        body = {
            "name": "my fn",
            "inferenceUrl": "/infer",
            "helmChart": "https://chart.tgz",
            "containerImage": "nvcr.io/org/echo:1",
            "tags": ["ok", "not ok"],
            "secrets": [{"name": "K", "value": "hunter2"}, {"name": "K", "value": "x"}],
            "deploymentSpecifications": [
                {"gpu": "L40", "instanceType": "x", "minInstances": 0, "maxInstances": 1},
                {"gpu": "L40", "minInstances": 2, "maxInstances": 1},
            ],
        }
        path = tmp_path / "function.json"
        path.write_text(json.dumps(body, indent=2), encoding="utf-8")
        status = main(["check", str(path)])
        out, err = capsys.readouterr()
        assert status == 1
        assert out.splitlines() == [
            f"{path}:2: name 'my fn' does not match ^[a-z0-9A-Z][a-z0-9A-Z\\-_]*$; use letters, "
            "digits, '-' and '_', starting with a letter or digit",
            f"{path}:4: helmChart cannot be combined with containerImage; a helm function's "
            "containers and their settings come from its chart; remove containerImage or helmChart",
            f"{path}:4: helmChart is set but helmChartServiceName is missing; name the chart's "
            "Service that serves inferencePort in helmChartServiceName",
            f"{path}:8: tags[1] 'not ok' does not match [a-zA-Z0-9\\-_:=]+; use only letters, "
            "digits, '-', '_', ':' and '='",
            f"{path}:16: secrets[1].name 'K' repeats secrets[0].name; give each secret a "
            "distinct name",
            f"{path}:27: deploymentSpecifications[1].instanceType is missing; name one of the "
            "GPU's instance types (GET /v2/nvcf/clusterGroups lists them)",
            f"{path}:29: deploymentSpecifications[1].minInstances is 2 and maxInstances is 1 "
            "(NVCF answers \"Invalid request: 'minInstances' must be lesser than or equal to "
            "'maxInstances'\"); lower minInstances or raise maxInstances",
        ]
        assert "hunter2" not in out + err
        assert "7 problems in 1 file checked" in err

    def test_valid_deployment_in_function_json(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A valid function.json with valid deploymentSpecifications is clean."""
        body = {**CONTAINER, "deploymentSpecifications": [DEPLOYMENT]}
        (tmp_path / "function.json").write_text(json.dumps(body, indent=2), encoding="utf-8")
        assert main(["check", str(tmp_path / "function.json")]) == 0
        assert capsys.readouterr().out == ""
