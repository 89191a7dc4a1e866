"""A tiny declarative schema for the TOML configuration: every error names its key path."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """Raised with every problem found, each a line `key.path: what is wrong`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class Spec:
    """Base class: `check` returns the cleaned value or appends errors."""

    def check(self, value: Any, path: str, errors: list[str]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class Num(Spec):
    min: float | None = None
    max: float | None = None
    integer: bool = False

    def check(self, value: Any, path: str, errors: list[str]) -> Any:
        ok_type = isinstance(value, int) if self.integer else isinstance(value, (int, float))
        kind = "a whole number" if self.integer else "a number"
        bounds = ""
        if self.min is not None:
            bounds += f" >= {_fmt(self.min)}"
        if self.max is not None:
            bounds += f"{' and' if bounds else ''} <= {_fmt(self.max)}"
        if isinstance(value, bool) or not ok_type or (
            (self.min is not None and value < self.min) or (self.max is not None and value > self.max)
        ):
            errors.append(f"{path}: must be {kind}{bounds}")
            return None
        return value


@dataclass
class Str(Spec):
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    hint: str = ""
    nonempty: bool = False

    def check(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, str):
            errors.append(f"{path}: must be a string")
            return None
        if self.nonempty and not value.strip():
            errors.append(f"{path}: must not be empty")
            return None
        if self.choices is not None and value not in self.choices:
            errors.append(f"{path}: must be one of {', '.join(self.choices)}")
            return None
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            errors.append(f"{path}: must be {self.hint or 'of the form ' + self.pattern}")
            return None
        return value


@dataclass
class Bool(Spec):
    def check(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, bool):
            errors.append(f"{path}: must be true or false")
            return None
        return value


@dataclass
class List(Spec):
    item: Spec

    def check(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, list):
            errors.append(f"{path}: must be a list")
            return None
        return [self.item.check(v, f"{path}[{i}]", errors) for i, v in enumerate(value)]


@dataclass
class Custom(Spec):
    """A check given as a function returning an error message (or None)."""

    inner: Spec
    rule: Callable[[Any], str | None]

    def check(self, value: Any, path: str, errors: list[str]) -> Any:
        before = len(errors)
        cleaned = self.inner.check(value, path, errors)
        if len(errors) == before:
            problem = self.rule(cleaned)
            if problem:
                errors.append(f"{path}: {problem}")
                return None
        return cleaned


@dataclass
class Table(Spec):
    """A TOML table with known keys (`fields`) and/or any keys matching `each`."""

    fields: dict[str, Spec] = field(default_factory=dict)
    each: Spec | None = None
    required: tuple[str, ...] = ()
    key_pattern: str = r"[a-z][a-z0-9_]*"

    def check(self, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, dict):
            errors.append(f"{path}: must be a table")
            return None
        out: dict[str, Any] = {}
        for key, sub in value.items():
            sub_path = f"{path}.{key}" if path else key
            if key in self.fields:
                out[key] = self.fields[key].check(sub, sub_path, errors)
            elif self.each is not None and re.fullmatch(self.key_pattern, key):
                out[key] = self.each.check(sub, sub_path, errors)
            else:
                errors.append(f"{sub_path}: unknown key")
        for key in self.required:
            if key not in value:
                errors.append(f"{path + '.' if path else ''}{key}: is required")
        return out


def _fmt(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Merge `over` onto `base` table by table (lists and scalars are replaced whole)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
