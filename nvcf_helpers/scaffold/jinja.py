"""The Jinja extensions the templates load (``_extensions`` in ``cookiecutter.json``).

``TritonExtension`` adds ``triton_image_cmd``: the Triton images' CMD for
each ``protocol`` (``http``, ``grpc``), from
:class:`~nvcf_helpers.triton.command.TritonCommand`. ``TensorExtension`` adds
one filter, ``tensors``, that turns a declaration such as
``"INPUT0:FP32:[-1]"`` into a list of :class:`~nvcf_helpers.scaffold.tensors.TensorSpec`,
so each template file writes tensors in its own language (``config.pbtxt``,
PyTriton ``Tensor``, tritonclient ``InferInput``) from one parser. Input is
validated by the pre-generation hook before any file is rendered.
"""

from __future__ import annotations

from jinja2 import Environment
from jinja2.ext import Extension

from nvcf_helpers.scaffold.protocol import triton_image_commands
from nvcf_helpers.scaffold.tensors import TensorSpec, parse_tensors

__all__ = ["TensorExtension", "TritonExtension"]


def _tensors(text: str) -> list[TensorSpec]:
    return parse_tensors(text)


class TensorExtension(Extension):
    """Registers the ``tensors`` filter."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["tensors"] = _tensors


class TritonExtension(Extension):
    """Registers ``triton_image_cmd``: by protocol, the exec-form CMD of a Triton image."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["triton_image_cmd"] = triton_image_commands()
