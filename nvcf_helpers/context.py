"""The request context: a typed, immutable view of one NVCF invocation.

:class:`RequestContext` parses the ``NVCF-*`` headers once, from HTTP headers,
PyTriton's ``Request.parameters`` or the Triton Python backend's
``request.parameters()`` JSON, into a frozen dataclass.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, cast

from nvcf_helpers import names
from nvcf_helpers.errors import HeaderError
from nvcf_helpers.names import DEFAULT_MAX_RESPONSE_BYTES

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "HEADER_NAMES", "RequestContext"]

#: The header each field comes from, in the spelling NVCF's documentation uses.
HEADER_NAMES: Mapping[str, str] = names.CONTEXT_HEADERS

# Lower-cased header name -> field name: the only table a lookup touches.
_FIELD_BY_HEADER = {header.lower(): name for name, header in HEADER_NAMES.items()}
_FIELD_BY_SPELLING = {**_FIELD_BY_HEADER, **{h: n for n, h in HEADER_NAMES.items()}}

# The identity NVCF also puts in the container's environment.
_ENV_NAMES = {variable: field for field, variable in names.CONTEXT_ENVIRONMENT.items()}


def _non_negative_int(field: str, raw: str) -> int:
    text = raw.strip()
    # int() alone would accept "+5", " 5 " and "5_000"; NVCF sends plain digits.
    if not text.isascii() or not text.isdigit():
        raise HeaderError(HEADER_NAMES[field], raw, "a non-negative integer")
    return int(text)


def _asset_ids(field: str, raw: str) -> tuple[str, ...]:
    return tuple(part for part in (p.strip() for p in raw.split(",")) if part)


def _path(field: str, raw: str) -> Path:
    return Path(raw)


# How a non-empty header value becomes a field; fields not listed keep the string.
_CONVERTERS: dict[str, Callable[[str, str], Any]] = {
    "max_response_bytes": _non_negative_int,
    "poll_seconds": _non_negative_int,
    "asset_ids": _asset_ids,
    "asset_dir": _path,
    "large_output_dir": _path,
}


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What NVCF told the container about one invocation.

    A field is ``None`` when its header was absent or empty (never ``""``),
    except ``max_response_bytes``, which takes NVCF's default, and
    ``asset_ids``, which is an empty tuple.
    """

    request_id: str | None = None
    subject: str | None = None
    nca_id: str | None = None
    function_name: str | None = None
    function_id: str | None = None
    function_version_id: str | None = None
    asset_dir: Path | None = None
    large_output_dir: Path | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    nspect_id: str | None = None
    backend: str | None = None
    instance_type: str | None = None
    region: str | None = None
    env: str | None = None
    asset_ids: tuple[str, ...] = ()
    poll_seconds: int | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> RequestContext:
        """Build a context from HTTP headers, matching names case-insensitively.

        Args:
            headers: any mapping of header names to values (a dict, an HTTP
                framework's header object) or an iterable of ``(name, value)``
                pairs. Names that are not NVCF headers are ignored; when a name
                appears more than once, the last value wins.

        Raises:
            HeaderError: a size or poll time that is not a non-negative integer.
        """
        # Not every header object is a Mapping: http.server's (an email Message)
        # has items() but iterates over names only.
        items_method = getattr(headers, "items", None)
        items: Iterable[tuple[str, str]] = (
            items_method() if callable(items_method) else cast(Iterable[tuple[str, str]], headers)
        )
        raw: dict[str, str] = {}
        for name, value in items:
            # Exact spellings first: most senders use one of them, and lower() is
            # the cost that dominates on a header mapping.
            field = _FIELD_BY_SPELLING.get(name)
            if field is None:
                field = _FIELD_BY_HEADER.get(name.lower())
            if field is not None and isinstance(value, str):
                raw[field] = value
        return cls._from_raw(raw)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any] | str | bytes | None) -> RequestContext:
        """Build a context from inference request parameters.

        Args:
            parameters: PyTriton's ``Request.parameters`` dict, or the JSON
                string returned by the Triton Python backend's
                ``request.parameters()``. Triton puts forwarded headers there;
                when the body also had a parameter of the same name the JSON
                holds the key twice and the later one (the header) wins.
                Values that are not strings (numbers, booleans) are body
                parameters, never headers, and are ignored.

        Raises:
            HeaderError: the JSON is malformed, or a header value is malformed.
        """
        if parameters is None:
            return cls()
        if isinstance(parameters, (str, bytes)):
            try:
                decoded = json.loads(parameters) if parameters else {}
            except ValueError as exc:
                raise HeaderError(
                    "parameters", parameters, f"a JSON object of request parameters ({exc})"
                ) from None
            if not isinstance(decoded, dict):
                raise HeaderError("parameters", parameters, "a JSON object of request parameters")
            parameters = decoded
        return cls.from_headers(parameters)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RequestContext:
        """Build a context holding the function identity from ``NVCF_*`` variables.

        Args:
            environ: the environment to read; ``os.environ`` by default.
        """
        source = os.environ if environ is None else environ
        raw = {field: source[name] for name, field in _ENV_NAMES.items() if name in source}
        return cls._from_raw(raw)

    @classmethod
    def _from_raw(cls, raw: Mapping[str, str]) -> RequestContext:
        values: dict[str, Any] = {}
        for field, text in raw.items():
            if not text or text.isspace():
                continue  # an empty header is an absent header: never "", never an error
            convert = _CONVERTERS.get(field)
            values[field] = text if convert is None else convert(field, text)
        return cls(**values)

    def to_headers(self) -> dict[str, str]:
        """The NVCF headers that would describe this context (absent fields omitted).

        Useful to replay a request with the headers NVCF's worker sends.
        """
        headers: dict[str, str] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None or value == ():
                continue
            if field.name == "asset_ids":
                value = ",".join(value)
            headers[HEADER_NAMES[field.name]] = str(value)
        return headers
