"""Helpers shared by eai's configuration dataclasses (tokenizer, classifier, ...)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def config_from_dict(cls: type[T], d: dict[str, Any]) -> T:
    """Build a config dataclass from saved JSON, naming any field this eai does not know."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    return cls(**d)
