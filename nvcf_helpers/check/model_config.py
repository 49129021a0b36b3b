"""Checks of a Triton model directory: ``config.pbtxt`` and its version directories.

Triton's own schema first (``model_config_pb2``), then what the schema misses
and Triton reports only when loading, or never: data types and dims, reshape
element counts, the name, batching without ``max_batch_size``, ``model.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nvcf_helpers.check.finding import Finding, line_of

__all__ = ["CONFIG_FILE", "check_model_directory"]

CONFIG_FILE = "config.pbtxt"

_PARSE_POSITION = re.compile(r"^(\d+):(\d+) : (.*)$", re.DOTALL)


def _parse(path: Path, text: str) -> tuple[Any, list[Finding]]:
    """The parsed ``ModelConfig``, or None and the parse error as a finding."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig()), []
    except text_format.ParseError as exc:
        match = _PARSE_POSITION.match(str(exc))
        line, column, detail = (
            (int(match[1]), int(match[2]), match[3]) if match else (1, 0, str(exc))
        )
        fix = (
            f"correct it at column {column}; field names and values are those of "
            "Triton's model_config.proto (e.g. data_type: TYPE_FP32, kind: KIND_CPU)"
        )
        detail = detail.strip().rstrip(".")
        return None, [Finding(path, line, f"Triton cannot parse this: {detail}", fix)]


def _element_count(dims: Sequence[int]) -> int | None:
    """Elements in a shape, or None when a dimension is variable (-1)."""
    if any(d < 0 for d in dims):
        return None
    return math.prod(dims)


def _check_tensors(path: Path, text: str, config: Any) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for kind, tensors in (("input", config.input), ("output", config.output)):
        for tensor in tensors:
            name = tensor.name
            line = line_of(text, f'"{name}"') if name else line_of(text, kind)
            if not name:
                findings.append(
                    Finding(
                        path,
                        line,
                        f"an {kind} has no name",
                        f'give it one: name: "{kind.upper()}0"',
                    )
                )
                continue
            if (kind, name) in seen:
                findings.append(
                    Finding(
                        path, line, f"{kind} {name!r} is declared twice", "keep one declaration"
                    )
                )
            seen.add((kind, name))
            if tensor.data_type == 0:  # TYPE_INVALID: the field was left out
                findings.append(
                    Finding(
                        path,
                        line,
                        f"{kind} {name!r} has no data_type",
                        "add one, e.g. data_type: TYPE_FP32",
                    )
                )
            if not tensor.dims:
                findings.append(
                    Finding(
                        path,
                        line,
                        f"{kind} {name!r} has no dims, so Triton refuses to load the model",
                        "add dims, e.g. dims: [ -1 ]; for a scalar in a batched model use "
                        "dims: [ 1 ] with reshape: { shape: [ ] }",
                    )
                )
            if tensor.HasField("reshape"):
                before = _element_count(list(tensor.dims))
                after = _element_count(list(tensor.reshape.shape))
                variable = (before is None) != (after is None)
                if variable or (before is not None and after is not None and before != after):
                    findings.append(
                        Finding(
                            path,
                            line,
                            f"{kind} {name!r} has dims {list(tensor.dims)} but reshape "
                            f"{list(tensor.reshape.shape)}: the element counts differ",
                            "make reshape.shape hold as many elements as dims",
                        )
                    )
    return findings


def _version_directories(directory: Path) -> list[Path]:
    return sorted(
        (entry for entry in directory.iterdir() if entry.is_dir() and entry.name.isdigit()),
        key=lambda entry: int(entry.name),
    )


def _check_versions(path: Path, text: str, config: Any) -> list[Finding]:
    directory = path.parent
    versions = _version_directories(directory)
    is_python = config.backend == "python"
    if not versions:
        what = "model.py" if is_python else "the model file"
        return [
            Finding(
                path,
                1,
                f"{directory} has no version directory, so Triton serves nothing",
                f"create {directory / '1'} holding {what}",
            )
        ]
    if not is_python:
        return []
    filename = config.default_model_filename or "model.py"
    missing = [version for version in versions if not (version / filename).is_file()]
    return [
        Finding(
            path,
            line_of(text, "backend"),
            f"version directory {version} has no {filename} for the Python backend",
            f"put the model's {filename} (a class TritonPythonModel) in {version}",
        )
        for version in missing
    ]


def check_model_directory(directory: Path) -> list[Finding]:
    """Check one model directory (the one holding ``config.pbtxt``).

    Args:
        directory: ``<model_repository>/<model_name>``.

    Returns:
        The problems found, in file order; empty when the model is fine.
    """
    path = directory / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(path, 1, f"cannot read it ({exc})", "make it a readable UTF-8 text file")]
    config, findings = _parse(path, text)
    if config is None:
        return findings
    if config.name and config.name != directory.name:
        findings.append(
            Finding(
                path,
                line_of(text, "name"),
                f"name is {config.name!r} but the directory is {directory.name!r}; "
                "Triton refuses a name that differs from its directory",
                f'rename the directory or set name: "{directory.name}"',
            )
        )
    findings.extend(_check_tensors(path, text, config))
    if config.HasField("dynamic_batching") and config.max_batch_size <= 0:
        findings.append(
            Finding(
                path,
                line_of(text, "dynamic_batching"),
                "dynamic_batching is set but max_batch_size is 0, so no request is ever batched",
                "set max_batch_size > 0 (and leave the batch dimension out of dims), "
                "or remove dynamic_batching",
            )
        )
    findings.extend(_check_versions(path, text, config))
    return sorted(findings)
