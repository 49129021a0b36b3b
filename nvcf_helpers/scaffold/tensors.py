"""The tensor declarations the templates take: ``NAME:TYPE:DIMS`` separated by ``;``.

For example ``INPUT0:FP32:[-1]`` or ``IMAGE:UINT8:[-1,-1,3]; SCALE:FP32:[1]``.
``TYPE`` is a Triton data type, with or without ``TYPE_`` (``FP32``,
``TYPE_FP32``; ``BYTES`` and ``STRING`` are the same type); ``DIMS`` lists the
dimensions without the batch dimension, ``-1`` for a variable one. Names must
be Python identifiers, because PyTriton passes inputs as keyword arguments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from nvcf_helpers.errors import InvalidInputError

__all__ = ["DATA_TYPES", "TemplateInputError", "TensorSpec", "check_distinct", "parse_tensors"]

#: Triton data type (as tritonclient spells it) -> numpy type, as Python source.
DATA_TYPES: dict[str, str] = {
    "BOOL": "np.bool_",
    "UINT8": "np.uint8",
    "UINT16": "np.uint16",
    "UINT32": "np.uint32",
    "UINT64": "np.uint64",
    "INT8": "np.int8",
    "INT16": "np.int16",
    "INT32": "np.int32",
    "INT64": "np.int64",
    "FP16": "np.float16",
    "FP32": "np.float32",
    "FP64": "np.float64",
    "BYTES": "np.object_",
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_EXAMPLE = "INPUT0:FP32:[-1]"


class TemplateInputError(InvalidInputError):
    """A template variable holds a value the template cannot generate from."""


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One declared input or output.

    Attributes:
        name: the tensor's name (a Python identifier).
        data_type: the Triton data type as tritonclient spells it (``FP32``, ``BYTES``).
        dims: the dimensions without the batch dimension; -1 is variable.
    """

    name: str
    data_type: str
    dims: tuple[int, ...]

    @property
    def config_type(self) -> str:
        """The ``data_type`` value of ``config.pbtxt`` (``TYPE_FP32``, ``TYPE_STRING``)."""
        return "TYPE_STRING" if self.data_type == "BYTES" else f"TYPE_{self.data_type}"

    @property
    def numpy_type(self) -> str:
        """The numpy type as Python source (``np.float32``)."""
        return DATA_TYPES[self.data_type]

    @property
    def pytriton_type(self) -> str:
        """The dtype PyTriton's ``Tensor`` takes, as Python source (``np.bytes_`` for BYTES)."""
        return "np.bytes_" if self.data_type == "BYTES" else DATA_TYPES[self.data_type]

    @property
    def is_float(self) -> bool:
        """Whether the type is a floating-point one."""
        return self.data_type.startswith("FP")

    @property
    def is_bytes(self) -> bool:
        """Whether the type is BYTES (text or binary strings)."""
        return self.data_type == "BYTES"

    @property
    def dims_text(self) -> str:
        """The dims as ``config.pbtxt`` writes them: ``[ -1, 3 ]``."""
        return "[ " + ", ".join(str(d) for d in self.dims) + " ]"

    @property
    def shape(self) -> tuple[int, ...]:
        """The dims as a Python tuple (for PyTriton's ``Tensor(shape=...)``)."""
        return self.dims


def _data_type(text: str, where: str) -> str:
    name = text.strip().upper()
    name = name.removeprefix("TYPE_")
    if name == "STRING":
        name = "BYTES"
    if name not in DATA_TYPES:
        raise TemplateInputError(
            f"{where} has data type {text.strip()!r}: use one of {', '.join(DATA_TYPES)}"
        )
    return name


def _dims(text: str, where: str) -> tuple[int, ...]:
    inner = text.strip().removeprefix("[").removesuffix("]").strip()
    parts = [part.strip() for part in inner.split(",")] if inner else []
    dims: list[int] = []
    for part in parts:
        try:
            value = int(part)
        except ValueError:
            value = 0
        if value == 0 or value < -1:
            raise TemplateInputError(
                f"{where} has dims {text.strip()!r}: write whole numbers >= 1, or -1 for a "
                "variable size, e.g. [-1] or [-1,3]"
            )
        dims.append(value)
    if not dims:
        raise TemplateInputError(
            f"{where} has no dims: give at least one, e.g. [-1] (a scalar is [1])"
        )
    return tuple(dims)


def parse_tensors(text: str, what: str = "inputs") -> list[TensorSpec]:
    """Parse a declaration such as ``"INPUT0:FP32:[-1]; SCALE:FP32:[1]"``.

    Args:
        text: the declaration.
        what: the variable's name, for messages (``inputs``, ``outputs``).

    Raises:
        TemplateInputError: the declaration is malformed; the message says how.
    """
    specs: list[TensorSpec] = []
    entries = [entry.strip() for entry in str(text).split(";") if entry.strip()]
    if not entries:
        raise TemplateInputError(f"{what} is empty: declare at least one, e.g. {_EXAMPLE}")
    for entry in entries:
        fields = entry.split(":")
        if len(fields) != 3:
            raise TemplateInputError(
                f"{what} entry {entry!r} is not NAME:TYPE:DIMS: write e.g. {_EXAMPLE}, "
                "and separate entries with ';'"
            )
        name = fields[0].strip()
        where = f"{what} entry {name!r}"
        if not _NAME.match(name):
            raise TemplateInputError(
                f"{what} entry name {name!r} is not valid: use letters, digits and '_', "
                "starting with a letter (it becomes a Python argument name)"
            )
        specs.append(TensorSpec(name, _data_type(fields[1], where), _dims(fields[2], where)))
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TemplateInputError(f"{what} declares {', '.join(duplicates)} more than once")
    return specs


def check_distinct(inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> None:
    """Refuse a name used for both an input and an output (Triton rejects it).

    Raises:
        TemplateInputError: a name is shared.
    """
    shared = sorted({spec.name for spec in inputs} & {spec.name for spec in outputs})
    if shared:
        raise TemplateInputError(
            f"{', '.join(shared)} is both an input and an output: give each tensor its own name"
        )
