"""Tests for nvcf_helpers.secrets: loading, merging, redaction, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nvcf_helpers import NvcfHelperError, Secrets, SecretsError, load_secrets

SECRET_VALUE = "hunter2-very-secret"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """A function secrets file and an account secrets file sharing one key."""
    function = tmp_path / "secrets.json"
    account = tmp_path / "accounts-secrets.json"
    function.write_text(
        json.dumps({"API_KEY": SECRET_VALUE, "shared": "from-function", "db": {"pw": "p4ss"}}),
        encoding="utf-8",
    )
    account.write_text(
        json.dumps({"shared": "from-account", "ACCOUNT_TOKEN": "acct-token-value"}),
        encoding="utf-8",
    )
    return function, account


class TestLoading:
    """load_secrets merges both files into a read-only mapping."""

    def test_function_secrets_override_account_secrets(self, files: tuple[Path, Path]) -> None:
        """Keys of both files are present; the function's value wins on a clash."""
        function, account = files
        secrets = load_secrets(function, account)
        assert dict(secrets) == {
            "API_KEY": SECRET_VALUE,
            "shared": "from-function",
            "db": {"pw": "p4ss"},
            "ACCOUNT_TOKEN": "acct-token-value",
        }
        assert secrets["db"]["pw"] == "p4ss"
        assert len(secrets) == 4

    def test_string_paths(self, files: tuple[Path, Path]) -> None:
        """Paths may be given as strings."""
        function, account = files
        assert load_secrets(str(function), str(account))["API_KEY"] == SECRET_VALUE

    def test_none_skips_a_file(self, files: tuple[Path, Path], tmp_path: Path) -> None:
        """None for either path skips that file instead of failing."""
        function, account = files
        assert set(load_secrets(function, None)) == {"API_KEY", "shared", "db"}
        assert dict(load_secrets(None, account)) == {
            "shared": "from-account",
            "ACCOUNT_TOKEN": "acct-token-value",
        }
        assert dict(load_secrets(None, None)) == {}

    def test_read_only(self, files: tuple[Path, Path]) -> None:
        """The mapping cannot be changed."""
        secrets = load_secrets(*files)
        with pytest.raises(TypeError):
            secrets["API_KEY"] = "x"  # type: ignore[index]


class TestRedaction:
    """repr and str show the keys, never a value."""

    @pytest.mark.parametrize("show", [repr, str, lambda s: f"{s}", lambda s: f"{s!r}"])
    def test_keys_shown_values_hidden(self, files: tuple[Path, Path], show: object) -> None:
        """Every key appears, no value does."""
        assert callable(show)
        text = show(load_secrets(*files))
        for key in ("API_KEY", "shared", "db", "ACCOUNT_TOKEN"):
            assert repr(key) in text
        for value in (SECRET_VALUE, "from-function", "from-account", "p4ss", "acct-token-value"):
            assert value not in text
        assert "[secure]" in text

    def test_repr_of_empty(self) -> None:
        """An empty mapping reads as such."""
        assert repr(Secrets({})) == "Secrets({})"


class TestErrors:
    """Bad files raise SecretsError saying what is wrong, without quoting secrets."""

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is named, with what to do."""
        missing = tmp_path / "nope.json"
        with pytest.raises(SecretsError, match=r"nope\.json does not exist: add the secrets"):
            load_secrets(missing, None)

    def test_invalid_json_does_not_leak(self, tmp_path: Path) -> None:
        """Invalid JSON is reported with its line, and the content is not quoted."""
        broken = tmp_path / "secrets.json"
        broken.write_text('{\n"API_KEY": "' + SECRET_VALUE + '",\n}', encoding="utf-8")
        with pytest.raises(SecretsError, match=r"is not valid JSON \(line 3\)") as caught:
            load_secrets(broken, None)
        assert SECRET_VALUE not in str(caught.value)
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__

    def test_non_object_does_not_leak(self, tmp_path: Path) -> None:
        """A JSON array is refused, and its values are not quoted."""
        listed = tmp_path / "accounts-secrets.json"
        listed.write_text(json.dumps([SECRET_VALUE]), encoding="utf-8")
        with pytest.raises(SecretsError, match="must hold a JSON object") as caught:
            load_secrets(None, listed)
        assert SECRET_VALUE not in str(caught.value)

    def test_unreadable_path(self, tmp_path: Path) -> None:
        """A path that cannot be read (a directory) says so."""
        with pytest.raises(SecretsError, match="cannot be read"):
            load_secrets(tmp_path, None)

    def test_is_an_nvcf_helper_error(self, tmp_path: Path) -> None:
        """SecretsError is an NvcfHelperError."""
        with pytest.raises(NvcfHelperError):
            load_secrets(tmp_path / "absent", None)
