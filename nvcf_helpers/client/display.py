"""How the management commands show NVCF's answers: aligned fields, tables, or the JSON itself."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "VERSION_COLUMNS",
    "deployment_fields",
    "print_fields",
    "print_json",
    "print_table",
    "status_line",
    "version_fields",
    "version_rows",
]

#: The columns of a list of versions.
VERSION_COLUMNS = ("NAME", "FUNCTION ID", "VERSION ID", "STATUS")


def print_json(document: Any) -> None:
    """An API answer on stdout, as JSON."""
    print(json.dumps(document, indent=2))


def print_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """``name  value`` lines, the values aligned; a ``None`` value is left out."""
    shown = [(name, str(value)) for name, value in fields if value is not None]
    width = max((len(name) for name, _ in shown), default=0)
    for name, value in shown:
        print(f"{name.ljust(width)}  {value}")


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table with a header line, each column as wide as its widest cell."""
    cells = [list(columns)] + [["-" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def version_rows(versions: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """One :data:`VERSION_COLUMNS` row per version."""
    return [[v.get("name"), v.get("id"), v.get("versionId"), v.get("status")] for v in versions]


def _health(info: Any) -> list[tuple[str, Any]]:
    """``error`` and ``fix`` lines of a ``healthInfo`` (an object or a list of them)."""
    fields: list[tuple[str, Any]] = []
    for entry in info if isinstance(info, list) else [info]:
        if isinstance(entry, Mapping) and entry.get("error"):
            fields += [("error", entry["error"]), ("fix", entry.get("fix"))]
    return fields


def version_fields(version: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """What ``function info`` shows of a version: ids, name, status, what runs, any error."""
    runs = version.get("containerImage") or version.get("helmChart")
    if runs is None and isinstance(version.get("models"), list):
        runs = ", ".join(str(m.get("name")) for m in version["models"] if isinstance(m, Mapping))
    url = version.get("inferenceUrl")
    port = version.get("inferencePort")
    return [
        ("name", version.get("name")),
        ("function id", version.get("id")),
        ("version id", version.get("versionId")),
        ("status", version.get("status")),
        ("runs", runs),
        ("inference", f"{url} on port {port}" if url and port else url),
        *_health(version.get("healthInfo")),
    ]


def _specification(spec: Mapping[str, Any]) -> str:
    parts = [f"gpu {spec.get('gpu')}", f"instance type {spec.get('instanceType')}"]
    if spec.get("backend"):
        parts.append(f"backend {spec['backend']}")
    parts += [
        f"min {spec.get('minInstances')}",
        f"max {spec.get('maxInstances')}",
        f"concurrency {spec.get('maxRequestConcurrency')}",
    ]
    return ", ".join(parts)


def deployment_fields(deployment: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """What ``deploy info`` shows: the version, its status, specifications, instances, errors."""
    fields: list[tuple[str, Any]] = [
        ("name", deployment.get("functionName")),
        ("function id", deployment.get("functionId")),
        ("version id", deployment.get("functionVersionId")),
        ("status", deployment.get("functionStatus")),
    ]
    for spec in deployment.get("deploymentSpecifications") or []:
        if isinstance(spec, Mapping):
            fields.append(("specification", _specification(spec)))
    instances = deployment.get("instances")
    if isinstance(instances, list):  # the local NVCF's addition: its running copies
        states = ", ".join(
            f"#{i.get('instance')} {i.get('status')}" for i in instances if isinstance(i, Mapping)
        )
        fields.append(("instances", f"{len(instances)} ({states})" if states else "0"))
    return fields + _health(deployment.get("healthInfo"))


def status_line(version: Mapping[str, Any], elapsed: float) -> None:
    """One line on stderr for a status a wait saw."""
    print(
        f"{version.get('name')} version {version.get('versionId')}: {version.get('status')} "
        f"({elapsed:.1f} s)",
        file=sys.stderr,
        flush=True,
    )
