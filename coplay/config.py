"""Config plumbing shared by every system: the error type, field checks, ``--set`` overrides,
and frozen config dataclasses rebuilt from their JSON form.

The lowest room of the package: it imports nothing from coplay, so every config (algorithms,
populations, runs) can raise :class:`ConfigError` without importing another system.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


def checker(cfg: Any, label: str) -> Callable[[bool, str, str], None]:
    """``need(cond, field, msg)``: raise ``ConfigError("label.field = value: msg")`` unless
    ``cond`` (the one field-check helper of every ``validate``)."""

    def need(cond: bool, field: str, msg: str) -> None:
        if not cond:
            raise ConfigError(f"{label}.{field} = {getattr(cfg, field)!r}: {msg}")

    return need


def is_int(v: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def need_positive_ints(cfg: Any, label: str, fields: tuple[str, ...]) -> None:
    """Every one of ``fields`` an integer >= 1."""
    need = checker(cfg, label)
    for f in fields:
        need(is_int(getattr(cfg, f)) and getattr(cfg, f) >= 1, f, "must be an integer >= 1")


# --- `--set FIELD=VALUE` overrides -------------------------------------------------------------
def parse_overrides(base: T, items: tuple[str, ...], label: str) -> T:
    """Apply ``FIELD=VALUE`` strings to the dataclass ``base`` (values converted to each
    field's type; tuples comma-separated); errors name ``label.field``."""
    cls = type(base)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    changes = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected FIELD=VALUE")
        name, raw = item.split("=", 1)
        name = name.strip().replace("-", "_")
        if name not in names:
            raise ConfigError(f"--set {item!r}: {label} has no field {name!r} "
                              f"(fields: {', '.join(sorted(names))})")
        changes[name] = _convert(hints[name], raw, item)
    return dataclasses.replace(base, **changes)


def _convert(hint, raw: str, item: str):
    args = typing.get_args(hint)
    try:
        if raw.lower() == "none" and type(None) in args:
            return None
        if type(None) in args and len(args) == 2:  # X | None: the value as an X
            return _convert(next(t for t in args if t is not type(None)), raw, item)
        if hint is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1")
        if typing.get_origin(hint) is tuple:
            kind = args[0]
            return tuple(kind(float(x)) if kind is int else kind(x)
                         for x in raw.split(",") if x.strip())
        if typing.get_origin(hint) is typing.Literal:
            if raw not in args:
                raise ValueError(raw)
            return raw
        kinds = [t for t in args if t is not type(None)] or [hint]
        kind = kinds[0]
        if kind is int:
            value = float(raw)
            if not value.is_integer():
                raise ValueError(raw)
            return int(value)
        return kind(raw)
    except ValueError:
        raise ConfigError(f"--set {item!r}: {raw!r} is not a valid {hint}") from None


# --- JSON -> config -------------------------------------------------------------------------
def config_from_json(cls: type[T], data: dict, where: str = "config") -> T:
    """Rebuild the frozen dataclass ``cls`` from its JSON form (``runs.to_jsonable``): lists
    back to tuples and nested dicts back to dataclasses, following the field types. A key
    that ``cls`` does not have is an error naming ``where`` (a config written by another
    version of coplay); missing keys take the field defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)} for "
                          f"{cls.__name__} (written by another version of coplay?)")
    return cls(**{k: _from_json(hints[k], v, f"{where}.{k}") for k, v in data.items()})


def _from_json(hint, value, where: str):
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for t in args:
            if t is type(None):
                continue
            return _from_json(t, value, where)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return config_from_json(hint, value, where)
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v, where) for v in value)
        return tuple(value)
    return value
