"""What the `coplay` commands share: presets as the defaults of typed flags.

A command's arguments are a frozen dataclass whose nested algorithm config (``a2c``, ``ppi``,
``ppo``) is parsed by tyro field by field, so every field is a flag (``--a2c.learning-rate``)
with its docstring in ``--help``. The preset named on the command line is read first and its
config becomes the default of those flags, so ``--help`` shows the values a run would use.
``--set FIELD=VALUE`` stays as a thin alias applied to the nested config after parsing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

import tyro

from coplay.config import parse_overrides

T = TypeVar("T")


def flag_value(argv: list[str], flag: str, default: str) -> str:
    """The value of ``--flag VALUE`` / ``--flag=VALUE`` in ``argv`` (the last one wins)."""
    value = default
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def parse_with_preset(cls: type[T], argv: list[str], prog: str, field: str,
                      presets: Mapping[str, Any], fallback: str = "default",
                      **defaults) -> T:
    """Parse ``argv`` into ``cls`` with the nested config ``field`` defaulting to the preset
    named by ``--preset`` (an unknown name is left for tyro to refuse with the choices);
    then apply ``--set`` items to that nested config (errors name ``field.NAME``)."""
    preset = flag_value(argv, "--preset", fallback)
    base = presets.get(preset, presets[fallback])
    default = cls(**defaults, **{field: base})
    args = tyro.cli(cls, args=argv, prog=prog, default=default)
    items = getattr(args, "set", ())
    if items:
        args = dataclasses.replace(args, **{field: parse_overrides(getattr(args, field), items,
                                                                   field)})
    return args


def override_or_none(config, presets: Mapping[str, Any], preset: str):
    """None when ``config`` is the preset's own (a run then records the preset by name, so
    runs started before a field existed still resume), else ``config``."""
    return None if presets.get(preset) == config else config
