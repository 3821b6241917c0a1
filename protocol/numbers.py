"""Number types for documents read from JSON or YAML: no booleans or strings as numbers.

pydantic's lax mode takes ``true`` as 1 and ``"5"`` as 5; a spec that says ``rounds: true`` is
a mistake, and its JSON schema says so. These types refuse both and accept every JSON number
that fits (an integral float such as ``3.0`` for an integer, as JSON Schema allows).

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

from typing import Any

from pydantic import BeforeValidator
from typing_extensions import Annotated

__all__ = ["Float", "Int"]


def _number(value: Any) -> Any:
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return value


Int = Annotated[int, BeforeValidator(_number)]
Float = Annotated[float, BeforeValidator(_number)]
