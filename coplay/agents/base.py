"""One interface for every policy that plays: IPD learners and strategies, Overcooked
actor-critics and scripted cooks, later the Coordination Transformer.

An :class:`Agent` is a pytree of parameters plus pure functions (static fields):

    state = agent.reset(key)                               # start of an episode
    action, state = agent.act(key, state, observation)     # one decision, () int32
    logits, state = agent.policy(key, state, observation)  # the distribution behind it (A,)
    state = agent.end_episode(state, episode)              # between episodes

Everything is unbatched (one game, one seat) and jittable; batches are ``jax.vmap`` over keys,
states and observations, and a population of agents of one architecture is ``jax.vmap`` over
stacked parameters: ``jax.vmap(lambda p, k, s, o: agent.replace(params=p).act(k, s, o))``.
:class:`Player` holds key and state for a Python loop (the web page, a terminal game).

What an agent observes, by ``kind``:

- ``"ipd"``: what a learner sees each round, an :class:`~coplay.agents.gru.AgentInput` of
  scalars — its first-person token, its previous action (-1 at the start) and reward, and the
  opponent-id vector (10,) (zeros unless the opponent-id ablation); :func:`ipd_input` builds
  one from the token alone. Actions: 0 = cooperate, 1 = defect.
- ``"overcooked"``: the (H, W, C) ego-centric observation of the cook it steers (row ``cook``
  of ``Overcooked.get_obs``). Actions: the env's six.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import struct

from coplay.agents.actor_critic import ActorCritic
from coplay.agents.gru import OPPONENT_ID_DIM, AgentInput, GRUAgent
from coplay.envs.matrix_games import NUM_ACTIONS as IPD_ACTIONS
from coplay.envs.matrix_games import START, MatrixGameParams

Kind = Literal["ipd", "overcooked"]
KINDS = ("ipd", "overcooked")


def _no_state(spec, params, key):
    del spec, params, key
    return ()


def _same_state(spec, params, state, episode):
    del spec, params, episode
    return state


def _sample(key: jax.Array, logits: jax.Array, greedy: bool) -> jax.Array:
    if greedy:
        return jnp.argmax(logits, -1).astype(jnp.int32)
    return jax.random.categorical(key, logits).astype(jnp.int32)


class Agent(struct.PyTreeNode):
    """A policy as data: ``params`` (the one dynamic field) and pure functions of it.

    The functions take ``spec`` (static, hashable: the network module or config they need)
    and ``params`` first:

    - ``policy_fn(spec, params, key, state, obs) -> (logits (A,), state)``: the action
      distribution (unnormalised log-probabilities) and the next state. ``key`` is for agents
      that draw while deciding (PPI's planning, a scripted cook's choices); others ignore it.
    - ``init_fn(spec, params, key) -> state`` (default: no state, ``()``).
    - ``end_fn(spec, params, state, episode) -> state`` (default: the state unchanged; CooT
      appends the finished episode to its context).
    - ``act_fn(spec, params, key, state, obs, greedy) -> (action, state)``, optional: replaces
      the default sampling (categorical from ``policy`` with ``key``; its ``policy`` gets
      ``fold_in(key, 1)``), e.g. so a memory-1 strategy draws exactly as the IPD rollout does.
    """

    params: Any
    policy_fn: Callable = struct.field(pytree_node=False)
    name: str = struct.field(pytree_node=False)
    kind: str = struct.field(pytree_node=False)
    num_actions: int = struct.field(pytree_node=False)
    spec: Any = struct.field(pytree_node=False, default=None)
    init_fn: Callable = struct.field(pytree_node=False, default=_no_state)
    end_fn: Callable = struct.field(pytree_node=False, default=_same_state)
    act_fn: Callable | None = struct.field(pytree_node=False, default=None)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Agent kind {self.kind!r}: choose one of {KINDS}")

    def reset(self, key: jax.Array):
        """The agent's state at the start of an episode."""
        return self.init_fn(self.spec, self.params, key)

    def policy(self, key: jax.Array, state, obs) -> tuple[jax.Array, Any]:
        """(logits (A,), next state) for one observation."""
        return self.policy_fn(self.spec, self.params, key, state, obs)

    def act(self, key: jax.Array, state, obs, greedy: bool = False) -> tuple[jax.Array, Any]:
        """(action () int32, next state): sampled with ``key``, or the most likely action
        (``greedy``, a Python bool)."""
        if self.act_fn is not None:
            return self.act_fn(self.spec, self.params, key, state, obs, greedy)
        logits, state = self.policy(jax.random.fold_in(key, 1), state, obs)
        return _sample(key, logits, greedy), state

    def end_episode(self, state, episode: Any = None):
        """The state to start the next episode from, given the finished ``episode`` (whatever
        the game loop recorded: its trajectory or its return). Call :meth:`reset` instead to
        forget everything."""
        return self.end_fn(self.spec, self.params, state, episode)


class Player:
    """An agent with its own key and state, for a Python loop (outside jit).

    >>> player = Player(agent, seed=0)
    >>> action = player.step(obs)         # an int
    >>> player.end_episode(episode)       # or player.reset() for a fresh start
    """

    def __init__(self, agent: Agent, seed: int = 0, key: jax.Array | None = None,
                 greedy: bool = False):
        self.agent = agent
        self.greedy = bool(greedy)
        self._key = jax.random.PRNGKey(seed) if key is None else key
        self._act = jax.jit(lambda a, k, s, o: a.act(k, s, o, self.greedy))
        self.reset()

    def _next_key(self) -> jax.Array:
        self._key, key = jax.random.split(self._key)
        return key

    def reset(self) -> None:
        """Start afresh (a new episode with nothing remembered)."""
        self.state = self.agent.reset(self._next_key())

    def step(self, obs) -> int:
        """The agent's action for this observation; advances its state."""
        obs = jax.tree.map(jnp.asarray, obs)
        action, self.state = self._act(self.agent, self._next_key(), self.state, obs)
        return int(action)

    def end_episode(self, episode: Any = None) -> None:
        self.state = self.agent.end_episode(self.state, episode)


# --- IPD observations -------------------------------------------------------------------------
def ipd_input(token, opponent_id=None, env_params: MatrixGameParams | None = None) -> AgentInput:
    """What an IPD agent sees in a round whose first-person token is ``token`` (0 = start,
    else 1 + 2 * own + other of the previous round): its previous action and reward follow
    from the token and the payoff table (default: the spec's IPD). ``opponent_id`` (10,)
    defaults to zeros (what every agent sees outside the opponent-id ablation)."""
    payoff = (MatrixGameParams() if env_params is None else env_params).payoff
    token = jnp.asarray(token, jnp.int32)
    own, other = (token - 1) // 2, (token - 1) % 2
    start = token == START
    return AgentInput(
        token=token,
        prev_action=jnp.where(start, -1, own).astype(jnp.int32),
        prev_reward=jnp.where(start, 0.0, payoff[jnp.clip(own, 0), jnp.clip(other, 0)]
                              ).astype(jnp.float32),
        opponent_id=(jnp.zeros((OPPONENT_ID_DIM,), jnp.float32) if opponent_id is None
                     else jnp.asarray(opponent_id, jnp.float32)),
    )


# --- agents from networks ---------------------------------------------------------------------
def _gru_init(module: GRUAgent, params, key):
    del params, key
    return jnp.zeros((module.hidden_size,), jnp.float32)


def _gru_policy(module: GRUAgent, params, key, hidden, obs: AgentInput):
    del key
    x = AgentInput(*(jnp.asarray(v, d)[None] for v, d in zip(
        obs, (jnp.int32, jnp.int32, jnp.float32, jnp.float32), strict=True)))
    hidden, (logits, _) = module.apply(params, hidden[None], x)  # batch of one, as in training
    return logits[0], hidden[0]


def gru_agent(module: GRUAgent, params, name: str = "gru") -> Agent:
    """The IPD GRU learner with parameters ``params`` (no learner axis). State: the GRU
    hidden vector (H,), zeros at the start of a game."""
    return Agent(params, _gru_policy, name, "ipd", IPD_ACTIONS, module, _gru_init)


def _actor_policy(spec, params, key, state, obs):
    del key
    net, critic_channels = spec
    x = jnp.asarray(obs, jnp.float32)[None]  # (1, H, W, C)
    # the towers are separate: the logits do not depend on the critic's input (under jit XLA
    # drops the critic altogether), which may need both cooks' channels (centralised value)
    logits, _ = net.apply(params, x, jnp.zeros(x.shape[:-1] + (critic_channels,), x.dtype))
    return logits[0], state


def actor_critic_agent(net: ActorCritic, params, obs_channels: int,
                       centralised_value: bool = False, name: str = "actor-critic") -> Agent:
    """An Overcooked PPO policy (one seat's parameters, no member or policy axis) acting on its
    cook's (H, W, C) observation; ``centralised_value``: the critic was trained on both cooks'
    channels (only its input shape matters here). No state."""
    critic_channels = obs_channels * (2 if centralised_value else 1)
    return Agent(params, _actor_policy, name, "overcooked", net.num_actions,
                 (net, critic_channels))


def stack_params(agents: list[Agent]):
    """The parameters of agents of one architecture on a leading axis (for ``jax.vmap``)."""
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]),
                        *[a.params for a in agents])



# --- wrappers ---------------------------------------------------------------------------------
def _inner(spec, params) -> Agent:
    template, _ = spec
    return template.replace(params=params)


def _noisy_init(spec, params, key):
    return _inner(spec, params).reset(key)


def _noisy_policy(spec, params, key, state, obs):
    return _inner(spec, params).policy(key, state, obs)


def _noisy_end(spec, params, state, episode):
    return _inner(spec, params).end_episode(state, episode)


def _noisy_act(spec, params, key, state, obs, greedy):
    _, epsilon = spec
    agent = _inner(spec, params)
    k_act, k_coin, k_random = jax.random.split(key, 3)
    action, state = agent.act(k_act, state, obs, greedy)
    random_action = jax.random.randint(k_random, (), 0, agent.num_actions, jnp.int32)
    return jnp.where(jax.random.uniform(k_coin) < epsilon, random_action, action), state


def with_action_noise(agent: Agent, epsilon: float) -> Agent:
    """``agent`` taking a uniformly random action with probability ``epsilon`` at every step
    (its state advances as if it had taken its own). Agents of one architecture and one
    ``epsilon`` share a compiled program: the wrapper's functions are module-level and the
    wrapped agent enters the static spec without its parameters."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"action noise epsilon = {epsilon}: must be in [0, 1]")
    return Agent(agent.params, _noisy_policy, agent.name, agent.kind, agent.num_actions,
                 (agent.replace(params=None), float(epsilon)), _noisy_init, _noisy_end,
                 _noisy_act)
