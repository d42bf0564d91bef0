"""Overcooked in pure JAX with ZSC-Eval semantics (old and new dynamics).

See docs/overcooked.md. Main entry points: :class:`Overcooked`, :func:`get_layout`,
:func:`parse_layout`, :func:`hsp_candidates`.
"""

from coplay.envs.overcooked.env import Overcooked
from coplay.envs.overcooked.events import NEW_EVENTS, OLD_EVENTS, event_names
from coplay.envs.overcooked.layouts import (
    LayoutError,
    get_layout,
    layout_names,
    parse_layout,
)
from coplay.envs.overcooked.rewards import hsp_candidates
from coplay.envs.overcooked.state import EnvParams, State, make_params

__all__ = [
    "Overcooked",
    "EnvParams",
    "State",
    "make_params",
    "get_layout",
    "parse_layout",
    "layout_names",
    "LayoutError",
    "OLD_EVENTS",
    "NEW_EVENTS",
    "event_names",
    "hsp_candidates",
]
