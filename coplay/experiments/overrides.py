"""``--set FIELD=VALUE`` overrides of a frozen config dataclass, shared by the CLIs."""

from __future__ import annotations

import dataclasses
import typing

from coplay.algos.a2c import ConfigError


def parse_overrides(base, items: tuple[str, ...], label: str):
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
