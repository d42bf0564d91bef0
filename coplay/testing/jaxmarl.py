"""A thin JaxMARL-style adapter: dicts keyed ``agent_0`` / ``agent_1`` at the edge.

    env = JaxMARLOvercooked("random1")
    obs, state = env.reset(key)                       # {"agent_0": (H, W, C), ...}
    obs, state, rewards, dones, info = env.step(key, state, {"agent_0": a0, "agent_1": a1})

``dones`` has ``"__all__"``; ``info["shaped_reward"]`` is a per-agent dict as in JaxMARL.
The params live on the adapter (JaxMARL has no params argument). ``action_order="jaxmarl"``
accepts JaxMARL's overcooked action indices (right, down, left, up, stay, interact) instead of
Overcooked-AI's (north, south, east, west, stay, interact).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from coplay.envs.overcooked.env import Overcooked
from coplay.envs.overcooked.state import EnvParams, State

# JaxMARL index -> our index.
_FROM_JAXMARL = jnp.array([2, 1, 3, 0, 4, 5], jnp.int32)


@struct.dataclass
class Discrete:
    n: int = struct.field(pytree_node=False)

    def sample(self, key: jax.Array) -> jnp.ndarray:
        return jax.random.randint(key, (), 0, self.n)


@struct.dataclass
class Box:
    low: float = struct.field(pytree_node=False)
    high: float = struct.field(pytree_node=False)
    shape: tuple = struct.field(pytree_node=False)
    dtype: object = struct.field(pytree_node=False, default=jnp.float32)


class JaxMARLOvercooked:
    """JaxMARL ``MultiAgentEnv``-shaped wrapper around :class:`Overcooked`."""

    def __init__(self, layout="random1", params: EnvParams | None = None,
                 action_order: str = "coplay", **param_kwargs):
        self.env = Overcooked(layout)
        self.params = params if params is not None else self.env.default_params(**param_kwargs)
        if action_order not in ("coplay", "jaxmarl"):
            raise ValueError("action_order must be 'coplay' or 'jaxmarl'")
        self.action_order = action_order
        self.agents = ["agent_0", "agent_1"]
        self.num_agents = 2
        self.name = "coplay-overcooked"

    def action_space(self, agent: str | None = None) -> Discrete:
        return Discrete(6)

    def observation_space(self, agent: str | None = None) -> Box:
        return Box(0.0, float("inf"), self.env.obs_shape)

    def _dict(self, x):
        return {a: x[i] for i, a in enumerate(self.agents)}

    def reset(self, key: jax.Array):
        obs, state = self.env.reset(key, self.params)
        return self._dict(obs), state

    def step(self, key: jax.Array, state: State, actions: dict):
        a = jnp.stack([jnp.asarray(actions[k], jnp.int32) for k in self.agents])
        if self.action_order == "jaxmarl":
            a = _FROM_JAXMARL[a]
        obs, state, reward, done, info = self.env.step(key, state, a, self.params)
        dones = {k: done for k in self.agents} | {"__all__": done}
        out_info = {"shaped_reward": self._dict(info["shaped_by_agent"]),
                    "events": self._dict(info["events"]),
                    "sparse_reward": info["sparse_reward"]}
        return self._dict(obs), state, self._dict(reward), dones, out_info
