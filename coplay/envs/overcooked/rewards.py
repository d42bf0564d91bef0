"""Recipe judgements, rewards and hidden-utility (HSP) weight grids.

- :func:`optimal_value_table`: for pot contents c, the value of the best order still reachable
  by adding ingredients (Overcooked-AI's ``get_optimal_possible_recipe`` then
  ``get_recipe_value``): the best superset value if positive, else the value of c itself.
- :func:`agent_rewards`: r_i = sparse_weight_i * sparse + w_i . events_i
  + shaping_factor * shaped_i.
- :func:`hsp_candidates`: ZSC-Eval's behaviour-preferring weight vectors per layout.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np

from coplay.envs.overcooked.events import event_names

# (o, t) cells of the 4x4 recipe table that are real recipes (1..3 ingredients).
_COUNTS = np.arange(4)
_SIZE = _COUNTS[:, None] + _COUNTS[None, :]  # (4, 4)
_RECIPE_MASK = (_SIZE >= 1) & (_SIZE <= 3)
# _SUPERSET[a, b, c, d]: recipe (c, d) can be reached from contents (a, b).
_SUPERSET = (
    (_COUNTS[None, None, :, None] >= _COUNTS[:, None, None, None])
    & (_COUNTS[None, None, None, :] >= _COUNTS[None, :, None, None])
    & _RECIPE_MASK[None, None]
)


def optimal_value_table(recipe_value: jnp.ndarray) -> jnp.ndarray:
    """(4, 4) -> (4, 4): best reachable order value from contents [onions, tomatoes]."""
    masked = jnp.where(jnp.asarray(_SUPERSET), recipe_value[None, None], -jnp.inf)
    best = masked.max(axis=(2, 3))  # (4, 4); -inf where nothing is reachable
    own = jnp.where(jnp.asarray(_RECIPE_MASK), recipe_value, 0.0)
    return jnp.where(best > 0, best, own)


def agent_rewards(
    sparse: jnp.ndarray,
    shaped: jnp.ndarray,
    events: jnp.ndarray,
    event_weights: jnp.ndarray,
    sparse_weight: jnp.ndarray,
    shaping_factor: jnp.ndarray,
) -> jnp.ndarray:
    """Per-agent reward (2,) from team sparse (), shaped (2,), events (2, E)."""
    # An unrolled sum over the few events, not a reduction: XLA:CPU handed the (batch, 2, E)
    # reduction to a library kernel that showed as ~10 % of a step at batch 512 in a profile.
    weighted = event_weights * events  # (2, E)
    hidden = weighted[..., 0]
    for e in range(1, weighted.shape[-1]):
        hidden = hidden + weighted[..., e]  # (2,)
    return sparse_weight * sparse + hidden + shaping_factor * shaped


# --- HSP weight grids (ZSC-Eval shell/train_bias_agents.sh, spec section 2) -------------------
# Per layout: {event: candidate values}, fixed entries, sparse candidates. "[a:b:c]" lists values.
_FIXED_STANDARD = {"USEFUL_DISH_PICKUP": (3.0,), "SOUP_PICKUP": (5.0,), "PLACEMENT_IN_POT": (3.0,)}
_OLD_DEFAULT = {
    "pickup_onion_from_O": (-20.0, 0.0, 10.0),
    "pickup_dish_from_D": (-20.0, 0.0, 10.0),
    "delivery": (-20.0, 0.0),
    "STAY": (-0.1, 0.0, 0.1),
}
HSP_GRIDS: dict[str, tuple[dict[str, tuple[float, ...]], tuple[float, ...]]] = {
    "random0": (
        {
            "pickup_onion_from_O": (0.0, 10.0),
            "pickup_dish_from_D": (0.0, 10.0),
            "pickup_soup_from_X": (-20.0, 0.0),
            "STAY": (-0.1, 0.0, 0.1),
        },
        (0.1, 1.0),
    ),
    "random0_medium": (
        {
            "pickup_onion_from_X": (-20.0, 0.0),
            "pickup_onion_from_O": (-20.0, 0.0, 10.0),
            "pickup_dish_from_D": (0.0, 10.0),
            "pickup_soup_from_X": (-20.0, 0.0),
            "STAY": (-0.1, 0.0, 0.1),
        },
        (0.1, 1.0),
    ),
    "small_corridor": (
        {
            "pickup_onion_from_O": (-20.0, 0.0, 5.0),
            "pickup_dish_from_D": (-20.0, 0.0, 5.0),
            "delivery": (-20.0, 0.0),
            "STAY": (-0.1, 0.0),
        },
        (0.1, 1.0),
    ),
    "random1": (_OLD_DEFAULT, (0.1, 1.0)),
    "random3": (_OLD_DEFAULT, (0.1, 1.0)),
    "unident_s": (_OLD_DEFAULT, (0.1, 1.0)),
}
_NEW_GRID = (
    {
        "potting_onion": (-20.0, 0.0),
        "potting_tomato": (-20.0, 0.0),
        "deliver_size_two_order": (-5.0, 0.0, 20.0),
        "deliver_size_three_order": (-15.0, 0.0, 10.0),
        "STAY": (-0.1, 0.0, 0.1),
    },
    (1.0,),
)
for _name in ("random0_m", "random1_m", "random3_m"):
    HSP_GRIDS[_name] = _NEW_GRID


def hsp_candidates(layout_name: str, max_nonzero: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """All hidden-utility candidates of a layout, ZSC-Eval's enumeration order.

    Returns ``(event_weights (N, E), sparse_weight (N,))``. A slot is *variable* when it has
    more than one candidate (the sparse weight included); vectors with more than
    ``max_nonzero`` non-zero variable entries are dropped.
    """
    if layout_name not in HSP_GRIDS:
        raise KeyError(f"no HSP grid for layout {layout_name!r}; known: {', '.join(HSP_GRIDS)}")
    grid, sparse_values = HSP_GRIDS[layout_name]
    old = not layout_name.endswith("_m")
    names = event_names(old)
    slots: list[tuple[float, ...]] = []
    for name in names:
        if name in grid:
            slots.append(grid[name])
        elif name in _FIXED_STANDARD:
            slots.append(_FIXED_STANDARD[name])
        else:
            slots.append((0.0,))
    slots.append(sparse_values)
    variable = np.array([len(s) > 1 for s in slots])
    cands = np.array(list(itertools.product(*slots)), np.float32)  # (N_all, E + 1)
    keep = (cands[:, variable] != 0).sum(axis=1) <= max_nonzero
    cands = cands[keep]
    return cands[:, :-1], cands[:, -1]
