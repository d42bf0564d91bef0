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
    """The IPD sequence agent, one round per call.

    ``__call__(hidden (B, H), AgentInput) -> hidden, (logits (B, 2), value (B,))``.
    (A variant with fused gate matrices, projecting all T inputs at once outside the scan, was
    measured no faster on CPU than flax's GRUCell — bench/bench_ipd.py — so the plain cell it is.)
    """

    hidden_size: int = 128
    embed_dim: int = 32
    use_opponent_id: bool = False
    critic_opponent_id: bool = False
    """Privileged critic: the value head (only) also sees the opponent-id vector z."""

    @nn.compact
    def __call__(self, hidden: jax.Array, x: AgentInput):
        emb = (
            nn.Dense(self.embed_dim, name="embed_obs")(jax.nn.one_hot(x.token, NUM_TOKENS))
            # a previous action of -1 (first round) one-hot encodes to zeros
            + nn.Dense(self.embed_dim, name="embed_action")(
                jax.nn.one_hot(x.prev_action, NUM_ACTIONS))
            + nn.Dense(self.embed_dim, name="embed_reward")(x.prev_reward[..., None])
        )
        if self.use_opponent_id:
            emb = emb + nn.Dense(self.embed_dim, name="embed_opponent_id")(x.opponent_id)
        hidden, out = nn.GRUCell(self.hidden_size, name="gru")(hidden, emb)
        feat = nn.swish(out)
        logits = nn.Dense(NUM_ACTIONS, name="policy",
                          kernel_init=nn.initializers.orthogonal(0.01))(feat)
        if self.critic_opponent_id:
            # the policy never sees z: only this value path does
            feat = nn.swish(nn.Dense(self.hidden_size, name="critic_hidden")(
                jnp.concatenate([feat, x.opponent_id], -1)))
        value = nn.Dense(1, name="value", kernel_init=nn.initializers.orthogonal(1.0))(feat)
        return hidden, (logits, value[..., 0])

    def initial_hidden(self, batch: int) -> jax.Array:
        return jnp.zeros((batch, self.hidden_size), jnp.float32)


def sequence(agent: GRUAgent, params, inputs: AgentInput, unroll: int = 1):
    """Run the agent over a recorded sequence (T, B, ...) -> logits (T, B, 2), values (T, B)."""

    def step(hidden, x):
        return agent.apply(params, hidden, x)

    _, (logits, values) = jax.lax.scan(step, agent.initial_hidden(inputs.token.shape[1]),
                                       inputs, unroll=unroll)
    return logits, values


def dummy_input(batch: int) -> AgentInput:
    return AgentInput(
        token=jnp.zeros((batch,), jnp.int32),
        prev_action=-jnp.ones((batch,), jnp.int32),
        prev_reward=jnp.zeros((batch,), jnp.float32),
        opponent_id=jnp.zeros((batch, OPPONENT_ID_DIM), jnp.float32),
    )
