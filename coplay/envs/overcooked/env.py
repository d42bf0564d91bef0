"""The Overcooked environment: gymnax-style pure ``reset`` / ``step`` over an agent axis.

>>> env = Overcooked("random1")
>>> params = env.default_params()
>>> obs, state = env.reset(key, params)                        # obs (2, H, W, C)
>>> obs, state, reward, done, info = env.step(key, state, actions, params)  # actions (2,)

``reward`` is (2,): ``sparse_weight * sparse + event_weights . events + shaping_factor *
shaped`` per cook (defaults: the team's sparse reward for both). ``info`` holds the team sparse
reward, each cook's sparse and shaped rewards and the (2, E) event flags of the step.
``step`` resets automatically when the horizon is reached (the returned obs/state are then the
new episode's); ``step_env`` never resets. Jit them at the top level of your program.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from coplay.envs.overcooked.events import event_names
from coplay.envs.overcooked.interaction import (
    cook_pots,
    idle_movement_event,
    materialise,
    resolve_interacts,
)
from coplay.envs.overcooked.layouts import Layout, get_layout
from coplay.envs.overcooked.movement import resolve_movement
from coplay.envs.overcooked.observation import get_obs, num_channels
from coplay.envs.overcooked.rewards import agent_rewards
from coplay.envs.overcooked.state import (
    NUM_ACTIONS,
    NUM_AGENTS,
    EnvParams,
    State,
    initial_state,
    make_params,
)


class Overcooked:
    """Two cooks on one layout. Static: grid shape and dynamics (old / new)."""

    num_agents = NUM_AGENTS
    num_actions = NUM_ACTIONS

    def __init__(self, layout: str | Layout = "cramped_room", old_dynamics: bool | None = None):
        if isinstance(layout, str):
            layout = get_layout(layout, old_dynamics=old_dynamics)
        elif old_dynamics is not None and old_dynamics != layout.old_dynamics:
            raise ValueError("pass old_dynamics to get_layout / parse_layout instead")
        self.layout = layout
        self.old_dynamics = layout.old_dynamics
        self.event_names = event_names(self.old_dynamics)
        self.num_events = len(self.event_names)
        self.obs_shape = (layout.height, layout.width, num_channels(self.old_dynamics))

    def default_params(self, **kwargs) -> EnvParams:
        """EnvParams of this layout; kwargs go to :func:`state.make_params` (horizon, ...)."""
        return make_params(self.layout, **kwargs)

    def reset(self, key: jax.Array, params: EnvParams) -> tuple[jnp.ndarray, State]:
        """Standard start state (deterministic; ``key`` is accepted for API symmetry)."""
        del key
        state = initial_state(params)
        return self.get_obs(state, params), state

    def get_obs(self, state: State, params: EnvParams) -> jnp.ndarray:
        return get_obs(state, params, self.old_dynamics)

    def step_env(self, key: jax.Array, state: State, actions: jnp.ndarray, params: EnvParams):
        """One transition without auto-reset. actions: (2,) int in [0, 6)."""
        new_state, reward, done, info = self.transition(key, state, actions, params)
        new_state = _materialised(new_state)
        return self.get_obs(new_state, params), new_state, reward, done, info

    def transition(self, key: jax.Array, state: State, actions: jnp.ndarray, params: EnvParams):
        """The state transition alone: (new_state, reward (2,), done (), info)."""
        del key
        actions = jnp.asarray(actions, jnp.int32)
        c = resolve_interacts(state, actions, params, self.old_dynamics)
        pos, direction, idle_move = resolve_movement(state.pos, state.dir, actions, params)
        events = idle_movement_event(c.events, idle_move, self.old_dynamics)
        tick = cook_pots(c.obj, c.soup, c.tick, params, self.old_dynamics)
        new_state = State(
            pos=pos,
            dir=direction,
            held=c.held,
            held_soup=c.held_soup,
            obj=c.obj,
            soup=c.soup,
            tick=tick,
            time=state.time + 1,
        )
        sparse = c.sparse[0] + c.sparse[1]
        reward = agent_rewards(
            sparse,
            c.shaped,
            events.astype(jnp.float32),
            params.event_weights,
            params.sparse_weight,
            params.shaping_factor,
        )
        done = new_state.time >= params.horizon
        info = {
            "sparse_reward": sparse,  # () team sparse reward
            "sparse_by_agent": c.sparse,  # (2,) who delivered
            "shaped_by_agent": c.shaped,  # (2,) standard shaped reward
            "events": events,  # (2, E) int32 0/1 flags
        }
        return new_state, reward, done, info

    def step(self, key: jax.Array, state: State, actions: jnp.ndarray, params: EnvParams):
        """One transition; at the horizon the returned obs/state are a fresh episode's."""
        new_state, reward, done, info = self.transition(key, state, actions, params)
        new_state = _materialised(jax.tree_util.tree_map(
            lambda r, s: jnp.where(done, r, s), initial_state(params), new_state
        ))
        return self.get_obs(new_state, params), new_state, reward, done, info


def _materialised(state: State) -> State:
    """A freshly computed state with its cooks and grids materialised (computed once).

    Otherwise XLA fuses the transition's (long) expressions into every consumer: the per-cell
    obs loops would recompute the cooks' positions and held objects for every cell and channel,
    and the obs and the returned state would each recompute the new kitchen grids (see
    :func:`interaction.materialise`; ``optimization_barrier`` is removed by XLA:CPU).
    """
    pos, direction, held, held_soup, obj, soup, tick = materialise(
        state.pos, state.dir, state.held, state.held_soup, state.obj, state.soup, state.tick)
    return state.replace(pos=pos, dir=direction, held=held, held_soup=held_soup, obj=obj,
                         soup=soup, tick=tick)
