"""The GRU sequence agent of the IPD spec.

Per round the agent sees the observation token (one-hot), its previous action (one-hot; zeros
at the start) and its previous reward; each goes through its own linear layer into an
``embed_dim`` embedding, the embeddings are summed and fed to a GRU cell. Swish on the GRU
output, then linear heads for policy logits and value. The optional opponent-id vector ``z``
(spec ablation) gets its own embedding, added to the sum.
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from coplay.envs.matrix_games import NUM_ACTIONS, NUM_TOKENS

OPPONENT_ID_DIM = 10


class AgentInput(NamedTuple):
    token: jax.Array  # (B,) int32 first-person observation token
    prev_action: jax.Array  # (B,) int32, -1 at the first round (no previous action)
    prev_reward: jax.Array  # (B,) float32, 0 at the first round
    opponent_id: jax.Array  # (B, 10) float32, zeros unless the opponent-id ablation is on


class GRUAgent(nn.Module):
    """The IPD sequence agent.

    ``__call__(hidden (B, H), AgentInput) -> hidden, (logits (B, 2), value (B,))`` is one round.
    The GRU is written with fused gate matrices so that :meth:`sequence` can project all T
    inputs at once and scan only the ``hidden @ W_h`` recurrence (the update's hot loop).
    Gate equations as in ``flax.linen.GRUCell``: r, z = sigmoid(.), n = tanh(x_n + r * h_n),
    h' = (1 - z) * n + z * h.
    """

    hidden_size: int = 128
    embed_dim: int = 32
    use_opponent_id: bool = False
    critic_opponent_id: bool = False
    """Privileged critic: the value head (only) also sees the opponent-id vector z."""

    def setup(self):
        self.embed_obs = nn.Dense(self.embed_dim)
        self.embed_action = nn.Dense(self.embed_dim)
        self.embed_reward = nn.Dense(self.embed_dim)
        if self.use_opponent_id:
            self.embed_opponent_id = nn.Dense(self.embed_dim)
        self.gates_x = nn.Dense(3 * self.hidden_size)
        self.gates_h = nn.Dense(3 * self.hidden_size, kernel_init=nn.initializers.orthogonal())
        self.policy = nn.Dense(NUM_ACTIONS, kernel_init=nn.initializers.orthogonal(0.01))
        self.value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))
        if self.critic_opponent_id:
            self.critic_hidden = nn.Dense(self.hidden_size)

    def input_gates(self, x: AgentInput) -> jax.Array:
        """(..., ) inputs -> (..., 3H) input contributions to the gates (any leading axes)."""
        emb = (
            self.embed_obs(jax.nn.one_hot(x.token, NUM_TOKENS))
            + self.embed_action(jax.nn.one_hot(x.prev_action, NUM_ACTIONS))  # -1 -> zeros
            + self.embed_reward(x.prev_reward[..., None])
        )
        if self.use_opponent_id:
            emb = emb + self.embed_opponent_id(x.opponent_id)
        return self.gates_x(emb)

    def recur(self, hidden: jax.Array, gx: jax.Array) -> jax.Array:
        """One GRU step from precomputed input gates: (B, H), (B, 3H) -> (B, H)."""
        gh = self.gates_h(hidden)
        xr, xz, xn = jnp.split(gx, 3, axis=-1)
        hr, hz, hn = jnp.split(gh, 3, axis=-1)
        r = nn.sigmoid(xr + hr)
        z = nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        return (1.0 - z) * n + z * hidden

    def heads(self, hidden: jax.Array, opponent_id: jax.Array | None = None):
        """(..., H) -> logits (..., 2), value (...).

        With ``critic_opponent_id`` the value comes from an MLP over the features and z; the
        policy never sees z through this path (it only depends on ``hidden``).
        """
        feat = nn.swish(hidden)
        if self.critic_opponent_id:
            feat_v = nn.swish(self.critic_hidden(jnp.concatenate([feat, opponent_id], -1)))
            return self.policy(feat), self.value(feat_v)[..., 0]
        return self.policy(feat), self.value(feat)[..., 0]

    def __call__(self, hidden: jax.Array, x: AgentInput):
        hidden = self.recur(hidden, self.input_gates(x))
        return hidden, self.heads(hidden, x.opponent_id)

    def initial_hidden(self, batch: int) -> jax.Array:
        return jnp.zeros((batch, self.hidden_size), jnp.float32)


def sequence(agent: GRUAgent, params, inputs: AgentInput, unroll: int = 1):
    """Run the agent over a whole recorded sequence (T, B, ...) -> logits (T, B, 2), values.

    Same numbers as stepping ``agent.apply`` T times, but the input projection is one matmul
    over all T and only the recurrence is scanned.
    """
    gx = agent.apply(params, inputs, method=GRUAgent.input_gates)  # (T, B, 3H)

    def step(hidden, gx_t):
        hidden = agent.apply(params, hidden, gx_t, method=GRUAgent.recur)
        return hidden, hidden

    hidden0 = jnp.zeros((gx.shape[1], agent.hidden_size), jnp.float32)
    _, hiddens = jax.lax.scan(step, hidden0, gx, unroll=unroll)  # (T, B, H)
    return agent.apply(params, hiddens, inputs.opponent_id, method=GRUAgent.heads)


def dummy_input(batch: int) -> AgentInput:
    return AgentInput(
        token=jnp.zeros((batch,), jnp.int32),
        prev_action=-jnp.ones((batch,), jnp.int32),
        prev_reward=jnp.zeros((batch,), jnp.float32),
        opponent_id=jnp.zeros((batch, OPPONENT_ID_DIM), jnp.float32),
    )
