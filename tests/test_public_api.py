"""Tests that keep the public API of nvcf_helpers honest and standard-library only."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import nvcf_helpers

# The public surface, pinned: adding or removing a name is a deliberate change here.
EXPECTED_ALL = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "HEADER_NAMES",
    "MAX_PARTIAL_RESPONSE_BYTES",
    "NVCF_LOG_FORMAT",
    "PARTIAL_SUFFIX",
    "PROGRESS_FILE",
    "AssetError",
    "AssetNotFoundError",
    "HeaderError",
    "InputError",
    "InvalidInputError",
    "MissingContextError",
    "NvcfHelperError",
    "OutputError",
    "ProgressError",
    "ProgressReporter",
    "ProgressUpdate",
    "RequestContext",
    "Secrets",
    "SecretsError",
    "SpecError",
    "__version__",
    "asset_path",
    "configure_logging",
    "current_request_id",
    "large_output",
    "list_assets",
    "load_secrets",
    "log_request",
    "open_asset",
    "parse_progress",
    "read_asset",
    "respond_or_spill",
    "spill_outputs",
]

# Run in a fresh interpreter: which modules does `import nvcf_helpers` add?
IMPORT_PROBE = """
import json, sys
before = set(sys.modules)
import nvcf_helpers
added = sorted(set(sys.modules) - before)
print(json.dumps({"added": added, "stdlib": sorted(sys.stdlib_module_names)}))
"""


def isort_key(name: str) -> tuple[int, str]:
    """Ruff's isort-style order: SCREAMING_CASE, then CamelCase, then everything else."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


class TestAll:
    """``__all__`` is sorted, complete and pinned."""

    def test_sorted(self) -> None:
        """``__all__`` is sorted as ruff's RUF022 sorts it: constants, classes, then the rest."""
        assert nvcf_helpers.__all__ == sorted(nvcf_helpers.__all__, key=isort_key)

    def test_pinned(self) -> None:
        """``__all__`` is exactly the agreed public surface."""
        assert nvcf_helpers.__all__ == EXPECTED_ALL

    def test_every_name_exists(self) -> None:
        """Each listed name is an attribute of the package."""
        missing = [name for name in nvcf_helpers.__all__ if not hasattr(nvcf_helpers, name)]
        assert missing == []

    def test_star_import_gives_exactly_all(self) -> None:
        """``from nvcf_helpers import *`` binds exactly the listed names."""
        namespace: dict[str, object] = {}
        exec("from nvcf_helpers import *", namespace)
        namespace.pop("__builtins__")
        assert sorted(namespace) == sorted(EXPECTED_ALL)

    def test_errors_share_one_base(self) -> None:
        """Every exported error subclasses NvcfHelperError."""
        errors = [
            value
            for name in nvcf_helpers.__all__
            if isinstance(value := getattr(nvcf_helpers, name), type)
            and issubclass(value, Exception)
        ]
        assert len(errors) == 11
        assert all(issubclass(error, nvcf_helpers.NvcfHelperError) for error in errors)

    def test_version_is_a_string(self) -> None:
        """``__version__`` comes from the package metadata."""
        from importlib.metadata import version

        assert nvcf_helpers.__version__ == version("nvcf-helpers")


class TestToolingStaysOut:
    """Function definitions are tooling: reachable from the root, never imported by it."""

    def test_old_paths_still_work(self) -> None:
        """``from nvcf_helpers import FunctionSpec`` still gives the spec module's class."""
        from nvcf_helpers import FunctionSpec, load_spec
        from nvcf_helpers.spec import FunctionSpec as Spec
        from nvcf_helpers.spec import load_spec as load

        assert FunctionSpec is Spec
        assert load_spec is load

    def test_unknown_names_are_attribute_errors(self) -> None:
        """A misspelt name fails as any module attribute does."""
        with pytest.raises(AttributeError, match="no attribute 'FunctionSpecs'"):
            _ = nvcf_helpers.FunctionSpecs  # type: ignore[attr-defined]

    def test_importing_the_runtime_imports_no_tooling(self) -> None:
        """``import nvcf_helpers`` in a fresh interpreter loads no spec, client or launcher."""
        result = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        added = set(json.loads(result.stdout)["added"])
        assert "nvcf_helpers.context" in added
        assert not added & {
            "nvcf_helpers.spec",
            "nvcf_helpers.testing",
            "nvcf_helpers.triton",
            "nvcf_helpers.client",
        }


class TestStandardLibraryOnly:
    """``import nvcf_helpers`` imports nothing outside the standard library."""

    def test_fresh_interpreter_imports_only_stdlib(self) -> None:
        """In a fresh subprocess, every module the import adds is stdlib or nvcf_helpers."""
        result = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        report = json.loads(result.stdout)
        stdlib = set(report["stdlib"])
        added = report["added"]
        assert "nvcf_helpers" in added, "the probe must really import the package"
        foreign = [
            module
            for module in added
            if module.partition(".")[0] not in stdlib and module.partition(".")[0] != "nvcf_helpers"
        ]
        assert foreign == []
