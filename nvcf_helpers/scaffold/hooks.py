"""What the templates' hooks do: refuse bad input, write function.json, vendor the runtime.

Each template's hook files are thin shims over :func:`pre_gen` and
:func:`post_gen`, so the logic lives (and is tested) here, once.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.scaffold import protocol
from nvcf_helpers.scaffold.helm_function import helm_definition, validate_helm
from nvcf_helpers.scaffold.tensors import TemplateInputError, check_distinct, parse_tensors
from nvcf_helpers.spec import FunctionSpec, parse_spec

__all__ = [
    "ERRORS_FILE_ENV",
    "RUNTIME_MODULES",
    "VENDOR_ROOTS",
    "function_definition",
    "post_gen",
    "pre_gen",
    "validate",
    "vendor_helpers",
    "vendored_modules",
]

#: When set, hooks also append their one-line refusal to this file (``nvcf-helpers new``
#: reads it to report the refusal as its own error).
ERRORS_FILE_ENV = "NVCF_HELPERS_TEMPLATE_ERRORS"

#: The modules each template's generated code imports; their nvcf_helpers
#: imports are followed to vendor everything they need.
VENDOR_ROOTS: Mapping[str, tuple[str, ...]] = {
    "triton-model": ("__init__", "triton_backend"),
    "pytriton-container": ("__init__", "pytriton"),
    "fastapi-container": ("__init__", "fastapi"),
}

#: What may travel into a container: the runtime and its adapters. The Triton
#: launcher, the testing helpers and function definitions never do.
RUNTIME_MODULES = frozenset(
    {
        "__init__",
        "assets",
        "context",
        "errors",
        "fastapi",
        "libpython",
        "log",
        "names",
        "outputs",
        "progress",
        "pytriton",
        "secrets",
        "triton_backend",
    }
)

_PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_MODEL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_TRITON_VERSION = re.compile(r"^(\d{2})\.(\d{2})$")
_MAX_BATCH_SIZE = 4096
_INSTANCE_KINDS = ("KIND_AUTO", "KIND_CPU", "KIND_GPU")


def _package_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (never run)."""
    found: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        found.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found


def _imports_of(module_path: Path) -> set[str]:
    """The ``nvcf_helpers`` modules a module imports when it runs (at any depth)."""
    tree = ast.parse(module_path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "nvcf_helpers":
                if len(parts) > 1:
                    found.add(parts[1])
                else:  # from nvcf_helpers import x: x may be a module
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "nvcf_helpers" and len(parts) > 1:
                    found.add(parts[1])
    return found


def vendored_modules(roots: Iterable[str], package: Path | None = None) -> list[str]:
    """The ``nvcf_helpers`` module files needed by ``roots``, imports followed.

    Args:
        roots: module names inside the package (``__init__``, ``triton_backend``).
        package: the package directory; the running one by default.

    Returns:
        File names such as ``context.py``, sorted.

    Raises:
        NvcfHelperError: a runtime module imports developer tooling, which
            must never travel into a container.
    """
    package = package or _package_dir()
    pending = [(root, "the template") for root in roots]
    seen: set[str] = set()
    while pending:
        name, importer = pending.pop()
        if name in seen:
            continue
        path = package / f"{name}.py"
        if not path.is_file():
            continue  # a name imported from __init__, not a module
        if name not in RUNTIME_MODULES:
            raise NvcfHelperError(
                f"{importer} imports nvcf_helpers.{name}, which is developer tooling: "
                "a container may import only the runtime "
                f"({', '.join(sorted(RUNTIME_MODULES))})"
            )
        seen.add(name)
        pending.extend((found, f"nvcf_helpers.{name}") for found in _imports_of(path) - seen)
    return sorted(f"{name}.py" for name in seen)


def vendor_helpers(destination: Path, roots: Iterable[str]) -> list[str]:
    """Copy the modules ``roots`` need into ``destination/nvcf_helpers``.

    Returns:
        The file names copied.
    """
    package = _package_dir()
    target = destination / "nvcf_helpers"
    target.mkdir(parents=True, exist_ok=True)
    names = vendored_modules(roots, package)
    for name in names:
        shutil.copyfile(package / name, target / name)
    if (package / "py.typed").is_file():
        shutil.copyfile(package / "py.typed", target / "py.typed")
    return names


def _require(context: Mapping[str, Any], key: str) -> str:
    return str(context.get(key, "")).strip()


def _check_project_name(context: Mapping[str, Any]) -> None:
    project = _require(context, "project_name")
    if not _PROJECT_NAME.match(project):
        raise TemplateInputError(
            f"project_name {project!r} is not valid: use 1 to 64 letters, digits, '-' and '_', "
            "starting with a letter or digit (it names the directory and the NVCF function)"
        )


def _check_long_running(context: Mapping[str, Any]) -> None:
    long_running = _require(context, "long_running")
    if long_running not in ("yes", "no"):
        raise TemplateInputError(f"long_running {long_running!r} is not valid: use yes or no")


def validate(template: str, context: Mapping[str, Any]) -> None:
    """Check a template's variables.

    Args:
        template: ``triton-model``, ``triton-container``, ``pytriton-container``
            or ``fastapi-container``.
        context: the cookiecutter variables.

    Raises:
        TemplateInputError: the first problem found, saying what to do.
    """
    if template == "helm-function":  # a chart around the user's image: no model, no code
        validate_helm(context)
        return
    if template == "fastapi-container":  # no model name, no tensors: a plain HTTP server
        _check_project_name(context)
        _check_long_running(context)
        return
    model = _require(context, "model_name")
    if not _MODEL_NAME.match(model):
        raise TemplateInputError(
            f"model_name {model!r} is not valid: use 1 to 64 letters, digits, '-' and '_', "
            "starting with a letter (it appears in the URL /v2/models/<model_name>/infer)"
        )
    _check_project_name(context)
    batch = _require(context, "max_batch_size")
    if not batch.isdigit() or int(batch) > _MAX_BATCH_SIZE:
        raise TemplateInputError(
            f"max_batch_size {batch!r} is not valid: use a whole number from 0 (no batching) "
            f"to {_MAX_BATCH_SIZE}"
        )
    _check_long_running(context)
    if "protocol" in context:
        protocol.check_protocol(context)
    if "instance_kind" in context:
        kind = _require(context, "instance_kind")
        if kind not in _INSTANCE_KINDS:
            raise TemplateInputError(
                f"instance_kind {kind!r} is not valid: use {', '.join(_INSTANCE_KINDS)} "
                "(KIND_AUTO runs on a GPU when there is one, else on the CPU)"
            )
    if "triton_version" in context:
        version = _require(context, "triton_version")
        match = _TRITON_VERSION.match(version)
        if match is None or (int(match[1]), int(match[2])) < (23, 4):
            raise TemplateInputError(
                f"triton_version {version!r} is not valid: give an NGC release YY.MM, "
                "23.04 or later (NVCF needs Triton >= 23.04), e.g. 24.08"
            )
    inputs = parse_tensors(_require(context, "inputs"), "inputs")
    outputs = parse_tensors(_require(context, "outputs"), "outputs")
    check_distinct(inputs, outputs)


def _report(message: str) -> None:
    """Say why a hook refused: on stderr, or to ``nvcf-helpers new`` when it asked to be told."""
    errors_file = os.environ.get(ERRORS_FILE_ENV)
    if errors_file:  # nvcf-helpers new prints it as its own one-line error
        with open(errors_file, "a", encoding="utf-8") as stream:
            stream.write(message + "\n")
    else:
        print(f"ERROR: {message}", file=sys.stderr)


def pre_gen(template: str, context: Mapping[str, Any]) -> int:
    """The pre-generation hook: 0 to go on, 1 (after one line on stderr) to refuse."""
    try:
        validate(template, context)
    except TemplateInputError as exc:
        _report(str(exc))
        return 1
    return 0


def _nest(
    project: Path, context: Mapping[str, Any], source: str, only: tuple[str, ...] | None = None
) -> None:
    """Add files made by template ``source`` with the same variables.

    Args:
        project: the project being generated.
        context: its cookiecutter variables; those ``source`` also has are passed on.
        source: the template to take files from (``triton-model``, ``triton-container``).
        only: the files or folders to take (``client.py``, ``tests/test_function.py``);
            everything but README.md and function.json when None. A file the
            project already has is kept.
    """
    import json

    from cookiecutter.main import cookiecutter

    repo_dir = Path(str(context.get("_repo_dir", "")))
    template = repo_dir.parent / source
    if not (template / "cookiecutter.json").is_file():
        from nvcf_helpers.scaffold import template_path

        template = template_path(source)
    variables = json.loads((template / "cookiecutter.json").read_text(encoding="utf-8"))
    extra = {
        key: str(context[key])
        for key in variables
        if key in context and not key.startswith("_") and key != "__prompts__"
    }
    with tempfile.TemporaryDirectory(prefix="nvcf-nested-") as scratch:
        config = Path(scratch) / "config.yaml"
        config.write_text(
            f"replay_dir: {Path(scratch) / 'replay'}\ncookiecutters_dir: {Path(scratch) / 'cc'}\n",
            encoding="utf-8",
        )
        baked = Path(
            cookiecutter(
                str(template),
                no_input=True,
                extra_context=extra,
                output_dir=str(Path(scratch) / "out"),
                config_file=str(config),
            )
        )
        for found in sorted(baked.rglob("*")):
            relative = found.relative_to(baked)
            if found.is_dir() or relative.parts[0] in ("README.md", "function.json"):
                continue
            if only is not None and not any(
                relative == Path(name) or Path(name) in relative.parents for name in only
            ):
                continue
            target = project / relative
            if target.exists():
                continue  # the container template's own file wins
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(found, target)


def _fastapi_definition(context: Mapping[str, Any]) -> dict[str, Any]:
    """fastapi-container's function.json, naming the routes its app.py serves.

    Both come from the template's ``_inference_url`` and ``_health_uri``.
    """
    project = str(context["project_name"])
    return {
        "name": project,
        "inferenceUrl": str(context["_inference_url"]),
        "containerImage": f"nvcr.io/<org>/<team>/{project}:1.0",
        "health": {
            "protocol": "HTTP",
            "uri": str(context["_health_uri"]),
            "port": 8000,
            "timeout": "PT10S",
            "expectedStatusCode": 200,
        },
        "apiBodyFormat": "CUSTOM",
    }


def function_definition(template: str, context: Mapping[str, Any]) -> FunctionSpec:
    """The ``function.json`` a template's project starts with, as a :class:`FunctionSpec`."""
    if template == "helm-function":
        return helm_definition(context)
    if template == "fastapi-container":
        return parse_spec(_fastapi_definition(context), f"the {template} template's function.json")
    project, model = str(context["project_name"]), str(context["model_name"])
    if template == "triton-model":
        definition: dict[str, Any] = {
            "name": project,
            "inferenceUrl": f"v2/models/{model}/infer",
            "models": [
                {
                    "name": model,
                    "version": "1",
                    "uri": f"v2/org/<org>/team/<team>/models/{model}/versions/1/zip",
                }
            ],
            "apiBodyFormat": "PREDICT_V2",
        }
    else:
        served = protocol.protocol_of(context)
        definition = {
            "name": project,
            "inferenceUrl": protocol.inference_url(served, model),
            "inferencePort": protocol.inference_port(served),
            "containerImage": f"nvcr.io/<org>/<team>/{project}:1.0",
            "health": protocol.health(served, model),
            "apiBodyFormat": "CUSTOM",
        }
    return parse_spec(definition, f"the {template} template's function.json")


def post_gen(template: str, context: Mapping[str, Any], project: Path | None = None) -> int:
    """The post-generation hook: write function.json, vendor the helpers, nest triton-model.

    Returns 0 on success.
    """
    project = project or Path.cwd()
    try:
        (project / "function.json").write_text(
            function_definition(template, context).render(), encoding="utf-8"
        )
        if template == "triton-model":
            version = project / "model_repository" / str(context["model_name"]) / "1"
            vendor_helpers(version, VENDOR_ROOTS["triton-model"])
        elif template == "pytriton-container":
            vendor_helpers(project, VENDOR_ROOTS["pytriton-container"])
            # The KServe v2 client is triton-model's; the gRPC client and its tests
            # through the local NVCF are triton-container's.
            if protocol.protocol_of(context) == protocol.GRPC:
                _nest(project, context, "triton-container", ("client.py", "tests/test_function.py"))
            else:
                _nest(project, context, "triton-model", ("client.py",))
        elif template == "triton-container":
            # A gRPC project has its own client and tests (through the local NVCF's gRPC).
            grpc = protocol.protocol_of(context) == protocol.GRPC
            _nest(
                project,
                context,
                "triton-model",
                ("model_repository", "pytest.ini") if grpc else None,
            )
        elif template == "fastapi-container":
            vendor_helpers(project, VENDOR_ROOTS["fastapi-container"])
    except Exception as exc:  # a hook must end with one line, never a traceback
        _report(f"could not finish the {template} project in {project}: {exc}")
        return 1
    return 0
