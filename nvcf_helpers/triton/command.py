"""The ``tritonserver`` command line as one model: built, written into images, read back.

``serve``, the Dockerfile templates and ``check`` all go through
:class:`TritonCommand`, so the flags NVCF needs (header forwarding, a short
exit timeout) are decided in one place.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from nvcf_helpers.names import DEFAULT_PORT, HEADER_FORWARD_PATTERN

__all__ = ["EXIT_TIMEOUT_SECONDS", "IMAGE_MODEL_REPOSITORY", "TritonCommand"]

#: How long tritonserver waits for open connections after SIGTERM. NVCF's
#: worker keeps connections open, tritonserver's own default is 30 s and
#: ``docker stop`` kills after 10 s: 5 s exits cleanly inside that.
EXIT_TIMEOUT_SECONDS = 5
#: Where the Triton images of the templates copy the model repository.
IMAGE_MODEL_REPOSITORY = "/models"

_HTTP_FORWARD = "--http-header-forward-pattern"
_GRPC_FORWARD = "--grpc-header-forward-pattern"
_NO_AUTO_COMPLETE = "--disable-auto-complete-config"
# Flag -> (field, type) for the flags this model owns; any other flag is kept
# as it was written, in extra_args.
_VALUED_FLAGS: dict[str, tuple[str, type]] = {
    "--model-repository": ("model_repository", str),
    "--backend-directory": ("backend_directory", str),
    "--http-address": ("http_address", str),
    "--http-port": ("http_port", int),
    "--grpc-address": ("grpc_address", str),
    "--grpc-port": ("grpc_port", int),
    _HTTP_FORWARD: ("http_forward_pattern", str),
    _GRPC_FORWARD: ("grpc_forward_pattern", str),
    "--exit-timeout-secs": ("exit_timeout_seconds", int),
    "--allow-metrics": ("allow_metrics", str),
}


@dataclass(frozen=True)
class TritonCommand:
    """A ``tritonserver`` invocation with NVCF's requirements as defaults.

    ``None`` leaves a flag out, so tritonserver's own default applies.
    """

    model_repository: str
    executable: str = "tritonserver"
    http_port: int | None = DEFAULT_PORT
    http_address: str | None = None
    grpc_port: int | None = None
    grpc_address: str | None = None
    backend_directory: str | None = None
    http_forward_pattern: str | None = HEADER_FORWARD_PATTERN
    #: gRPC metadata keys are lower case, and Triton matches them as written.
    grpc_forward_pattern: str | None = None
    allow_metrics: str | None = "false"
    exit_timeout_seconds: int | None = EXIT_TIMEOUT_SECONDS
    #: A generated repository holds complete configs: skip Triton's auto-complete.
    auto_complete_config: bool = True
    extra_args: tuple[str, ...] = ()

    @classmethod
    def for_image(cls, *, auto_complete_config: bool = False) -> TritonCommand:
        """The command a Triton image of ours runs: ``/models`` on NVCF's port."""
        return cls(IMAGE_MODEL_REPOSITORY, auto_complete_config=auto_complete_config)

    def argv(self) -> list[str]:
        """The command as a list of words, ``--flag=value`` for every valued flag."""
        words = [self.executable]
        for flag, (field, _) in _VALUED_FLAGS.items():
            value = getattr(self, field)
            if value is not None:
                words.append(f"{flag}={value}")
        if not self.auto_complete_config:
            words.append(_NO_AUTO_COMPLETE)
        words.extend(self.extra_args)
        return words

    def exec_form(self) -> str:
        """The command as a Dockerfile exec-form array (``CMD <this>``)."""
        return json.dumps(self.argv())

    def replace(self, **changes: object) -> TritonCommand:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def parse(cls, words: Sequence[str]) -> TritonCommand:
        """Read a command back, in either ``--flag value`` or ``--flag=value`` form.

        The words start with the executable. The last of a repeated flag wins,
        as in tritonserver; flags this model does not own stay in ``extra_args``.

        Raises:
            ValueError: a valued flag without a value, or a port that is not a number.
        """
        if not words:
            raise ValueError("an empty command has no tritonserver in it")
        values: dict[str, object] = {
            "model_repository": "",
            "http_port": None,
            "http_forward_pattern": None,
            "allow_metrics": None,
            "exit_timeout_seconds": None,
        }
        extra: list[str] = []
        for flag, value in _flags(list(words[1:])):
            if flag == _NO_AUTO_COMPLETE and value is None:
                values["auto_complete_config"] = False
            elif flag in _VALUED_FLAGS and value is not None:
                field, kind = _VALUED_FLAGS[flag]
                values[field] = kind(value)
            elif flag in _VALUED_FLAGS:
                raise ValueError(f"{flag} has no value")
            else:
                extra.extend([flag] if value is None else [flag, value])
        return cls(executable=words[0], extra_args=tuple(extra), **values)  # type: ignore[arg-type]


def _flags(words: list[str]) -> Iterator[tuple[str, str | None]]:
    """``(flag, value)`` pairs; ``value`` is ``None`` for a flag standing alone."""
    index = 0
    while index < len(words):
        word = words[index]
        flag, equals, value = word.partition("=")
        if equals:
            yield flag, value
        elif word in _VALUED_FLAGS and index + 1 < len(words):
            index += 1
            yield word, words[index]
        else:
            yield word, None
        index += 1
