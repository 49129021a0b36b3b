"""The examples' files, READMEs, weights and helpers, checked without starting a server."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from example_support import (
    EXAMPLE_NAMES,
    EXAMPLES,
    fresh_copy,
    load_module,
    readme_commands,
)

from nvcf_helpers.cli import build_parser

DIGITS = EXAMPLES / "byom" / "digits"
WEIGHTS = DIGITS / "model_repository" / "digits" / "1" / "digits.npz"


def _console_commands(example: str) -> list[list[str]]:
    """Every ``$`` command in every console block of the README."""
    text = (EXAMPLES / example / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        commands += [
            shlex.split(line[2:], comments=True)
            for line in block.splitlines()
            if line.startswith("$ ")
        ]
    return commands


class TestReadmes:
    """Each README's commands name programs, files and options that exist."""

    @pytest.mark.parametrize("example", EXAMPLE_NAMES)
    def test_run_locally_has_local_and_a_client(self, example: str) -> None:
        """The local run is at most three commands: prepare, nvcf-helpers local, a client."""
        commands = readme_commands(example)
        assert 2 <= len(commands) <= 3
        assert [c[:2] for c in commands].count(["nvcf-helpers", "local"]) == 1
        assert commands[-1][:2] in (["python", "client.py"], ["nvcf-helpers", "invoke"])

    @pytest.mark.parametrize("example", EXAMPLE_NAMES)
    def test_commands_exist_and_parse(self, example: str) -> None:
        """Scripts exist beside the README and nvcf-helpers accepts every command line."""
        parser = build_parser()
        for command in _console_commands(example):
            if command[0] == "python":
                assert (EXAMPLES / example / command[1]).is_file(), command
            elif command[0] == "nvcf-helpers":
                args = parser.parse_args(command[1:])
                spec = getattr(args, "spec", None)
                if spec is not None:
                    assert (EXAMPLES / example / spec).is_file(), command
            else:
                assert command[0] in ("ngc", "curl", "docker"), command

    @pytest.mark.parametrize("example", EXAMPLE_NAMES)
    def test_image_names_match_the_function_definitions(self, example: str) -> None:
        """The image ``docker build -t`` makes is the one the curl'd function.json deploys."""
        commands = _console_commands(example)
        built = [c[c.index("-t") + 1] for c in commands if c[:2] == ["docker", "build"]]
        pushed = [c[2] for c in commands if c[:2] == ["docker", "push"]]
        posted = [c[c.index("-d") + 1].removeprefix("@") for c in commands if c[0] == "curl"]
        images = []
        for name in posted:
            spec = json.loads((EXAMPLES / example / name).read_text(encoding="utf-8"))
            if "containerImage" in spec:
                images.append(spec["containerImage"])
        assert built == pushed == images
        assert built, "every example shows how to build its GPU image"

    @pytest.mark.parametrize("example", EXAMPLE_NAMES)
    def test_ngc_uploads_name_the_models_of_the_function(self, example: str) -> None:
        """Each ``ngc registry model upload-version`` uploads a model function.json lists."""
        uploads = [c for c in _console_commands(example) if c[:1] == ["ngc"]]
        spec = json.loads((EXAMPLES / example / "function.json").read_text(encoding="utf-8"))
        models = {model["name"] for model in spec.get("models", [])}
        uploaded = {c[4].split("/")[1].split(":")[0] for c in uploads}
        assert uploaded == models
        for command in uploads:
            assert (EXAMPLES / example / command[command.index("--source") + 1]).is_dir()


class TestDigitsWeights:
    """train.py reproduces the committed weights, and every copy of the model agrees."""

    def test_train_reproduces_the_committed_model(self) -> None:
        """Training again gives a model that predicts the held-out split as the committed one.

        Not bit equality of the weights: the solver's last digits differ from
        one CPU to another (up to 2e-4 seen), the predictions a user gets do not.
        """
        train = load_module(DIGITS / "train.py", "digits_train")
        x_train, x_test, y_train, y_test = train.load_split()
        fitted = train.fit(x_train, y_train)
        committed = np.load(WEIGHTS)
        ours = train.predict(fitted, x_test).argmax(axis=1)
        theirs = train.predict(committed, x_test).argmax(axis=1)
        assert float((ours == theirs).mean()) >= 0.99
        accuracy = float((ours == y_test).mean())
        assert accuracy >= 0.9
        assert abs(accuracy - float((theirs == y_test).mean())) <= 0.01

    @pytest.mark.parametrize(
        "copy",
        [
            "byom/pipeline/model_repository/digits/1/digits.npz",
            "pytriton/digits/digits.npz",
        ],
    )
    def test_copies_of_the_weights_are_identical(self, copy: str) -> None:
        """The pipeline and PyTriton examples serve exactly the BYOM weights."""
        ours, theirs = np.load(WEIGHTS), np.load(EXAMPLES / copy)
        for name in ("weights", "bias"):
            assert np.array_equal(ours[name], theirs[name])

    @pytest.mark.parametrize("name", ["1/model.py", "config.pbtxt"])
    def test_pipeline_serves_the_same_classifier(self, name: str) -> None:
        """The pipeline's digits model is the BYOM digits model, file for file."""
        ours = DIGITS / "model_repository" / "digits" / name
        theirs = EXAMPLES / "byom" / "pipeline" / "model_repository" / "digits" / name
        assert ours.read_bytes() == theirs.read_bytes()

    @pytest.mark.parametrize("client", ["byom/pipeline/client.py", "pytriton/digits/client.py"])
    def test_clients_hold_out_the_split_train_py_held_out(self, client: str) -> None:
        """The clients that repeat the split repeat it exactly."""
        train = load_module(DIGITS / "train.py", "digits_train")
        module = load_module(EXAMPLES / client, "example_client")
        _, x_test, _, y_test = train.load_split()
        images, labels = module.held_out_split()
        assert np.array_equal(images, x_test)
        assert np.array_equal(labels, y_test)


@pytest.fixture(scope="module")
def model() -> object:
    """The streaming example's model, trained on its corpus."""
    lm = load_module(EXAMPLES / "pytriton" / "streaming" / "lm.py", "example_lm")
    train = load_module(EXAMPLES / "pytriton" / "streaming" / "train.py", "example_lm_train")
    return lm.LanguageModel(lm.train(train.corpus()))


class TestLanguageModel:
    """The streaming example's trigram model trains exactly and samples reproducibly."""

    def test_training_is_counting(self) -> None:
        """Counts of a tiny text are what they must be."""
        lm = load_module(EXAMPLES / "pytriton" / "streaming" / "lm.py", "example_lm")
        counts = lm.train("a b a b c.")
        assert counts["vocab"] == [".", "a", "b", "c"]
        assert counts["unigrams"] == [1, 2, 2, 1]
        assert counts["trigrams"]["1 2"] == [(1, 1), (3, 1)]  # "a b" -> "a", "c"

    def test_same_seed_same_tokens(self, model: object) -> None:
        """A seed fixes the continuation; another seed changes it."""
        first = list(model.generate("The digits data set", 20, seed=3))  # type: ignore[attr-defined]
        again = list(model.generate("The digits data set", 20, seed=3))  # type: ignore[attr-defined]
        other = list(model.generate("The digits data set", 20, seed=4))  # type: ignore[attr-defined]
        assert first == again
        assert first != other
        assert len(first) == 20

    def test_tokens_carry_their_spaces(self, model: object) -> None:
        """Words come with a leading space, punctuation without."""
        tokens = list(model.generate("Iris", 50, seed=0))  # type: ignore[attr-defined]
        for token in tokens:
            assert token in ".,;:" or (token.startswith(" ") and len(token) > 1)


class TestModelSelection:
    """The long-running example's network learns, and its folds partition the data."""

    def test_folds_partition_the_indices(self) -> None:
        """Every index is in exactly one fold."""
        mlp = load_module(EXAMPLES / "pytriton" / "long_running" / "mlp.py", "example_mlp")
        parts = mlp.folds(103, 5, seed=1)
        assert len(parts) == 5
        assert sorted(np.concatenate(parts).tolist()) == list(range(103))

    def test_fit_learns_the_digits(self) -> None:
        """A short fit classifies held-out digits well above chance."""
        mlp = load_module(EXAMPLES / "pytriton" / "long_running" / "mlp.py", "example_mlp")
        train = load_module(DIGITS / "train.py", "digits_train")
        x_train, x_test, y_train, y_test = train.load_split()
        params = mlp.fit(x_train, y_train, hidden=32, learning_rate=0.1, epochs=10, seed=0)
        assert float((params.predict(x_test) == y_test).mean()) >= 0.9


class TestVendoring:
    """``vendor.py`` gives each example what it imports, and the result passes ``check``."""

    @pytest.mark.parametrize("example", EXAMPLE_NAMES)
    def test_vendored_copy_passes_check(self, example: str, tmp_path: Path) -> None:
        """A fresh copy, vendored, has every helper module in place and no check finding."""
        directory = fresh_copy(example, tmp_path)
        if example == "pytriton/streaming":
            (directory / "lm.json").write_text("{}", encoding="utf-8")  # made by train.py
        vendor = load_module(EXAMPLES / "vendor.py", "example_vendor")
        written = vendor.vendor(directory)
        assert written
        for target in written:
            assert (target / "__init__.py").is_file()
            assert (target / "context.py").is_file()
        if (directory / "run.py").is_file():
            assert (directory / "nvcf_helpers" / "pytriton.py").is_file()
            # What the Dockerfile copies must now exist.
            dockerfile = (directory / "Dockerfile").read_text(encoding="utf-8")
            for line in dockerfile.splitlines():
                if line.startswith("COPY "):
                    for source in line.split()[1:-1]:
                        assert (directory / source).exists(), line
        else:
            for model_py in directory.glob("model_repository/*/1/model.py"):
                assert (model_py.parent / "nvcf_helpers" / "triton_backend.py").is_file()
        result = subprocess.run(
            [sys.executable, "-m", "nvcf_helpers", "check", str(directory)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "no problems" in result.stderr

    def test_vendor_refuses_what_is_not_an_example(self, tmp_path: Path) -> None:
        """A path that is not a directory is a usage error with a message."""
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "vendor.py"), str(tmp_path / "missing")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2
        assert "is not an example directory" in result.stderr


def _instructions(dockerfile: Path) -> list[str]:
    """A Dockerfile's instructions, comments and blank lines dropped, continuations joined."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text(encoding="utf-8"))
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _requirements(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


_DIGITS_TENSORS = {
    "inputs": "IMAGE:FP32:[8,8]",
    "outputs": "PROBABILITIES:FP32:[10];LABEL:INT64:[1]",
}
_PYTRITON_TEMPLATES = {
    "pytriton/digits": {"model_name": "digits", "max_batch_size": "64", **_DIGITS_TENSORS},
    "pytriton/streaming": {"model_name": "textgen", "max_batch_size": "0"},
    "pytriton/long_running": {"model_name": "tune", "max_batch_size": "0", "long_running": "yes"},
}
# What an example changes in its template's function.json: it is another function.
_OWN_FIELDS = {"name", "containerImage", "description", "inferenceUrl"}


class TestTemplateShape:
    """Each example keeps the shape of the template it was started from."""

    def test_byom_digits_config_is_the_templates(self, tmp_path: Path) -> None:
        """triton-model with the digits' variables gives the example's config.pbtxt."""
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2

        from nvcf_helpers.scaffold import generate

        variables = {"model_name": "digits", "max_batch_size": "64", "instance_kind": "KIND_CPU"}
        project = generate(
            "triton-model", tmp_path, no_input=True, extra_context={**variables, **_DIGITS_TENSORS}
        )
        configs = [
            text_format.Parse(path.read_text(encoding="utf-8"), model_config_pb2.ModelConfig())
            for path in (
                project / "model_repository" / "digits" / "config.pbtxt",
                DIGITS / "model_repository" / "digits" / "config.pbtxt",
            )
        ]
        assert configs[0] == configs[1]

    @pytest.mark.parametrize("example", sorted(_PYTRITON_TEMPLATES))
    def test_pytriton_image_is_the_templates(self, example: str, tmp_path: Path) -> None:
        """Same base, packages, user, ports and command; only the files copied differ."""
        from nvcf_helpers.scaffold import generate

        project = generate(
            "pytriton-container",
            tmp_path,
            no_input=True,
            extra_context=_PYTRITON_TEMPLATES[example],
        )
        ours = EXAMPLES / example
        theirs = [i for i in _instructions(project / "Dockerfile") if not i.startswith("COPY run")]
        mine = [i for i in _instructions(ours / "Dockerfile") if not i.startswith("COPY run")]
        assert mine == theirs
        assert _requirements(ours / "requirements.txt") == _requirements(
            project / "requirements.txt"
        )
        template_spec = json.loads((project / "function.json").read_text(encoding="utf-8"))
        example_spec = json.loads((ours / "function.json").read_text(encoding="utf-8"))
        model = _PYTRITON_TEMPLATES[example]["model_name"]
        assert example_spec["health"]["uri"] == f"/v2/models/{model}/ready"
        for key in set(template_spec) | set(example_spec):
            if key not in _OWN_FIELDS:
                assert example_spec.get(key) == template_spec.get(key), key

    @pytest.mark.parametrize(
        ("example", "model"), [("byom/digits", "digits"), ("byom/pipeline", "pipeline")]
    )
    def test_triton_image_is_the_templates(self, example: str, model: str, tmp_path: Path) -> None:
        """triton-container at Triton 24.10 gives the BYOM examples' Dockerfile and definition."""
        from nvcf_helpers.scaffold import generate

        variables = {"model_name": model, "triton_version": "24.10", "instance_kind": "KIND_CPU"}
        project = generate("triton-container", tmp_path, no_input=True, extra_context=variables)
        ours = EXAMPLES / example
        assert _instructions(ours / "Dockerfile") == _instructions(project / "Dockerfile")
        template_spec = json.loads((project / "function.json").read_text(encoding="utf-8"))
        example_spec = json.loads((ours / "container-function.json").read_text(encoding="utf-8"))
        for key in set(template_spec) | set(example_spec):
            if key not in _OWN_FIELDS:
                assert example_spec.get(key) == template_spec.get(key), key
        assert example_spec["inferenceUrl"] == template_spec["inferenceUrl"]
