"""Function and account secrets, as NVCF mounts them into the container.

NVCF writes a function's secrets to ``/var/secrets/secrets.json`` and the
account's to ``/var/secrets/accounts-secrets.json``; values may be strings or
JSON objects. :func:`load_secrets` returns them in a read-only mapping whose
``repr`` lists the keys but never the values, so logging it leaks nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nvcf_helpers.errors import SecretsError

__all__ = ["ACCOUNT_SECRETS_PATH", "FUNCTION_SECRETS_PATH", "Secrets", "load_secrets"]

FUNCTION_SECRETS_PATH = Path("/var/secrets/secrets.json")
ACCOUNT_SECRETS_PATH = Path("/var/secrets/accounts-secrets.json")


class Secrets(Mapping[str, Any]):
    """A read-only mapping of secret names to values that never shows its values."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shown = ", ".join(f"{key!r}: '[secure]'" for key in self._values)
        return f"Secrets({{{shown}}})"

    __str__ = __repr__


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretsError(
            f"secrets file {path} does not exist: add the secrets to the function "
            "(ngc cf function create --secret ...), or pass path=None if it has none"
        ) from None
    except OSError as exc:
        raise SecretsError(f"secrets file {path} cannot be read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        # The message must not quote the file: it holds secrets.
        raise SecretsError(
            f"secrets file {path} is not valid JSON (line {getattr(exc, 'lineno', '?')}): "
            "fix the secret definitions"
        ) from None
    if not isinstance(data, dict):
        raise SecretsError(f"secrets file {path} must hold a JSON object of name -> value")
    return data


def load_secrets(
    path: str | Path | None = FUNCTION_SECRETS_PATH,
    accounts_path: str | Path | None = ACCOUNT_SECRETS_PATH,
) -> Secrets:
    """Read the function's and the account's secrets into one mapping.

    Function secrets win over account secrets of the same name.

    Args:
        path: the function secrets file; ``None`` to skip it.
        accounts_path: the account secrets file; ``None`` to skip it.

    Raises:
        SecretsError: a file that is missing, unreadable, not JSON, or not an object.
    """
    values: dict[str, Any] = {}
    for source in (accounts_path, path):
        if source is not None:
            values.update(_read(Path(source)))
    return Secrets(values)
