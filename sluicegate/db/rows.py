"""Database rows to msgspec Structs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


def to_struct(values: Mapping[Any, Any], type_: type[T]) -> T:
    """Convert a result row mapping (its keys are `quoted_name`, a str subclass msgspec
    does not accept as a field name) to `type_`, validating every field."""
    return msgspec.convert({str(k): v for k, v in values.items()}, type_)
