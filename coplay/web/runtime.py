"""The game on the server: one jitted tick (agent act + env step) per agent, compiled once at
start-up by :meth:`GameRuntime.warm_up`, never per request.

Keys are a pure function of (participant seed, agent slot, episode, step), so an agent's state
after a participant's finished episodes can be rebuilt exactly by replaying them (after a
server restart) with :meth:`GameRuntime.replay`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.base import Agent, ipd_input
from coplay.envs.matrix_games import (
    COOPERATE,
    START,
    IteratedMatrixGame,
    MatrixGameState,
    first_person_tokens,
)
from coplay.envs.overcooked import Overcooked, State
from coplay.envs.overcooked.state import STAY
from coplay.web.study import StudyConfig

RESET_STEP = 2**30  # the step index of an agent's reset key


def state_to_dict(state: State) -> dict[str, Any]:
    """A JSON-able dict of one (unbatched) state."""
    return {k: np.asarray(getattr(state, k)).tolist() for k in State.__dataclass_fields__}


def state_from_dict(d: dict[str, Any]) -> State:
    return State(**{k: jnp.asarray(d[k], jnp.int32) for k in State.__dataclass_fields__})


def _key(ids: jax.Array) -> jax.Array:
    """ids (4,) uint32: participant seed, slot, episode, step."""
    key = jax.random.PRNGKey(ids[0])
    for i in range(1, 4):
        key = jax.random.fold_in(key, ids[i])
    return key


class GameRuntime:
    """The env of a study and its agents' jitted functions."""

    game = "overcooked"
    idle_action = STAY  # the human's action at a tick without a key

    def __init__(self, cfg: StudyConfig, agents: dict[str, Agent]):
        self.cfg = cfg
        self.agents = agents
        self.env = Overcooked(cfg.layout)
        self.params = self.env.default_params(horizon=cfg.episode_length)
        self.human, self.seat = cfg.human_seat, 1 - cfg.human_seat
        _, state = self.env.reset(jax.random.PRNGKey(0), self.params)
        self.initial_state = jax.device_get(state)
        self._tick = jax.jit(self._tick_impl)
        self._reset = jax.jit(lambda agent, ids: agent.reset(_key(ids)))
        self._end = jax.jit(lambda agent, s, rewards: agent.end_episode(s, rewards))

    def _tick_impl(self, agent: Agent, ids, state: State, agent_state, human_action, greedy):
        obs = self.env.get_obs(state, self.params)  # (2, H, W, C)
        key = _key(ids)
        act, agent_state = jax.lax.cond(
            greedy, lambda: agent.act(key, agent_state, obs[self.seat], True),
            lambda: agent.act(key, agent_state, obs[self.seat], False))
        actions = jnp.zeros((2,), jnp.int32).at[self.human].set(human_action)
        actions = actions.at[self.seat].set(act)
        _, new_state, _, _, info = self.env.step_env(key, state, actions, self.params)
        return new_state, agent_state, act, info["sparse_reward"], info["shaped_by_agent"]

    to_dict = staticmethod(state_to_dict)
    from_dict = staticmethod(state_from_dict)

    # --- one participant's calls -----------------------------------------------------------
    def reset(self, name: str, seed: int, slot: int):
        return self._reset(self.agents[name], _ids(seed, slot, 0, RESET_STEP))

    def tick(self, name: str, seed: int, slot: int, episode: int, t: int, state: State,
             agent_state, human_action: int):
        """(new state, agent state, agent action, team sparse reward, shaped (2,))."""
        greedy = next(a.greedy for a in self.cfg.agents if a.name == name)
        out = self._tick(self.agents[name], _ids(seed, slot, episode, t), state, agent_state,
                         jnp.int32(human_action), jnp.bool_(greedy))
        new_state, agent_state, act, reward, shaped = out
        return (jax.device_get(new_state), agent_state, int(act), float(reward),
                np.asarray(shaped, np.float32))

    def end_episode(self, name: str, agent_state, rewards):
        r = np.zeros((self.cfg.episode_length,), np.float32)
        r[: len(rewards)] = np.asarray(rewards, np.float32)[: len(r)]
        return self._end(self.agents[name], agent_state, jnp.asarray(r))

    def stateless(self, name: str) -> bool:
        return not jax.tree.leaves(jax.eval_shape(
            lambda: self.agents[name].reset(jax.random.PRNGKey(0))))

    def replay(self, name: str, seed: int, slot: int, episodes: list[list[tuple]]):
        """The agent's state at the start of its next episode with this participant, from the
        recorded finished ``episodes`` (each a list of (state dict, human action, agent
        action, reward)). Returns (state, number of agent actions that differed)."""
        agent_state = self.reset(name, seed, slot)
        if self.stateless(name):
            return agent_state, 0
        mismatches = 0
        for e, steps in enumerate(episodes):
            for t, (state, human, agent_action, _) in enumerate(steps):
                _, agent_state, act, _, _ = self.tick(name, seed, slot, e, t,
                                                      self.from_dict(state), agent_state,
                                                      human)
                mismatches += int(act != agent_action)
            agent_state = self.end_episode(name, agent_state, [s[3] for s in steps])
        return agent_state, mismatches

    def warm_up(self) -> None:
        """Compile every agent's reset, tick and end of episode (before serving)."""
        for name in self.agents:
            s = self.reset(name, 0, 0)
            _, s, _, _, _ = self.tick(name, 0, 0, 0, 0, self.initial_state, s, STAY)
            self.end_episode(name, s, [0.0])


class IPDRuntime(GameRuntime):
    """The iterated prisoner's dilemma of a study (``game = "ipd"``): the human is player 0,
    one round per ``tick`` (a click, not a clock); ``episode_length`` rounds a game. Every game
    starts from a fresh agent state (the IPD agents are trained game by game)."""

    game = "ipd"
    idle_action = COOPERATE

    def __init__(self, cfg: StudyConfig, agents: dict[str, Agent]):
        self.cfg = cfg
        self.agents = agents
        self.env = IteratedMatrixGame(cfg.episode_length)
        self.params = self.env.default_params()
        self.human, self.seat = 0, 1
        self.initial_state = jax.device_get(self.env.reset(jax.random.PRNGKey(0),
                                                           self.params)[1])
        self._tick = jax.jit(self._tick_impl)
        self._reset = jax.jit(lambda agent, ids: agent.reset(_key(ids)))

    def _tick_impl(self, agent: Agent, ids, state, agent_state, human_action, greedy):
        token = jnp.where(state.round == 0, START, first_person_tokens(state.last_actions)[1])
        key = _key(ids)
        obs = ipd_input(token, env_params=self.params)
        act, agent_state = jax.lax.cond(
            greedy, lambda: agent.act(key, agent_state, obs, True),
            lambda: agent.act(key, agent_state, obs, False))
        actions = jnp.stack([human_action, act]).astype(jnp.int32)
        _, new_state, rewards, _, _ = self.env.step(key, state, actions, self.params)
        return new_state, agent_state, act, rewards[0], rewards

    @staticmethod
    def to_dict(state) -> dict[str, Any]:
        return {"round": int(state.round), "last_actions": np.asarray(state.last_actions).tolist()}

    @staticmethod
    def from_dict(d: dict[str, Any]):
        return MatrixGameState(jnp.asarray(d["round"], jnp.int32),
                               jnp.asarray(d["last_actions"], jnp.int32))

    def reset(self, name: str, seed: int, slot: int, episode: int = 0):
        return self._reset(self.agents[name], _ids(seed, slot, episode, RESET_STEP))

    def end_episode(self, name: str, agent_state, rewards):
        return agent_state  # unused: every game starts from reset (see agent_state_for)

    def stateless(self, name: str) -> bool:
        return True  # across games: nothing carries over

    def warm_up(self) -> None:
        for name in self.agents:
            s = self.reset(name, 0, 0)
            self.tick(name, 0, 0, 0, 0, self.initial_state, s, COOPERATE)


def make_runtime(cfg: StudyConfig, agents: dict[str, Agent]) -> GameRuntime:
    return (IPDRuntime if cfg.game == "ipd" else GameRuntime)(cfg, agents)


def _ids(seed: int, slot: int, episode: int, t: int) -> jax.Array:
    return jnp.asarray([seed, slot, episode, t], jnp.uint32)
