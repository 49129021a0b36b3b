"""Helpers for the template tests: where the templates are, baking, loading generated code."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]
TEMPLATES = REPOSITORY / "templates"
TEMPLATE_NAMES = ("pytriton-container", "triton-container", "triton-model")
#: Templates without model or tensor variables, each tested by its own test_<name> file.
OTHER_TEMPLATE_NAMES = ("fastapi-container", "helm-function")

#: A non-default declaration: several tensors, BYTES, fixed and variable dims.
CUSTOM_IO = {
    "inputs": "A:FP32:[-1]; B:BYTES:[2]",
    "outputs": "X:INT64:[-1]; Y:BYTES:[2]; Z:FP64:[-1]",
}


def bake_ok(cookies: Any, template: str, **extra: str) -> Path:
    """Bake ``template`` with ``extra`` variables and return the project directory."""
    result = cookies.bake(template=str(TEMPLATES / template), extra_context=extra)
    assert result.exception is None, result.exception
    assert result.exit_code == 0
    path: Path = result.project_path
    return path


def load_module(path: Path, name: str) -> ModuleType:
    """Import a generated file (client.py) under a unique module name."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
