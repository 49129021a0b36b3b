"""Every error raised by nvcf_helpers.

Each one subclasses :class:`NvcfHelperError`, and each message says what was
wrong and what to do about it, so a caller can show it to a user as it is::

    NvcfHelperError
    ├── InvalidInputError        the caller sent something the function cannot use
    │   ├── HeaderError          an NVCF header or parameter holds a malformed value
    │   ├── AssetError           an asset id is unsafe or unusable
    │   │   └── AssetNotFoundError
    │   └── InputError           a model input is missing, mistyped or out of range
    ├── MissingContextError      an NVCF header the operation needs was not sent
    ├── ProgressError            a progress update the NVCF worker would reject
    ├── OutputError              a large-output name or write the worker would mishandle
    ├── SecretsError             a secrets file is missing or is not a JSON object
    └── SpecError                a function definition (function.json) is invalid

:class:`InvalidInputError` marks the caller's mistakes: adapters answer them
with a client error (HTTP 400 / ``INVALID_ARG``) instead of a server error.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AssetError",
    "AssetNotFoundError",
    "HeaderError",
    "InputError",
    "InvalidInputError",
    "MissingContextError",
    "NvcfHelperError",
    "OutputError",
    "ProgressError",
    "SecretsError",
    "SpecError",
]


class NvcfHelperError(Exception):
    """Every error of this package subclasses me."""


class InvalidInputError(NvcfHelperError):
    """The caller sent something the function cannot use (a client error)."""


class HeaderError(InvalidInputError, ValueError):
    """An NVCF header (or a forwarded parameter) holds a malformed value."""

    def __init__(self, header: str, value: object, expected: str) -> None:
        self.header = header
        self.value = value
        super().__init__(f"header {header} is {value!r}: expected {expected}")


class AssetError(InvalidInputError, ValueError):
    """An asset id is unsafe (a path, a traversal) or otherwise unusable."""


class AssetNotFoundError(AssetError, FileNotFoundError):
    """The asset id is well formed but no such file was delivered."""


class InputError(InvalidInputError, ValueError):
    """A model input is missing, has the wrong type, or is out of range."""


class MissingContextError(NvcfHelperError, LookupError):
    """An NVCF header that the operation needs is absent from the request."""

    def __init__(self, header: str, needed_for: str) -> None:
        self.header = header
        super().__init__(
            f"header {header} is missing, so {needed_for} is not possible: NVCF's worker "
            "sends it with every request to a container function (a Helm function's service "
            f"gets no asset directory); when testing locally, send {header} yourself or run "
            "the function under `nvcf-helpers local`"
        )


class ProgressError(NvcfHelperError, ValueError):
    """A progress update that NVCF's worker would reject."""


class OutputError(NvcfHelperError, ValueError):
    """A large-output name or write that NVCF's worker would mishandle."""


class SecretsError(NvcfHelperError):
    """A secrets file is missing, unreadable, or not a JSON object."""


class SpecError(NvcfHelperError, ValueError):
    """A function definition (the body of POST /v2/nvcf/functions) is invalid.

    ``problems`` lists every problem found, one sentence each.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems) or [message]
        super().__init__(message)
