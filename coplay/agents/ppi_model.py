"""The PPI sequence model: one GRU over the interleaved (o, r, a) stream of an IPD episode.

Per round t the stream holds the observation o_t, the reward r_t that came with it (the
previous round's reward, 0 at the start) and the agent's own action a_t. One GRU step per round
reads (o_t, r_t, a_{t-1}) — the same embeddings as :class:`coplay.agents.gru.GRUAgent` — and
the heads predict, in stream order, everything the next tokens hold:

- ``action_logits(feat_t)``                     p(a_t | x≤t), the agent's own next action;
- ``obs_logits(feat_t, a_t)``                   p(o_{t+1} | x≤t, a_t), the next observation
                                                (it encodes the co-player's reply);
- ``reward(feat_t, a_t, o_{t+1})``              E[r_{t+1} | x≤t, a_t, o_{t+1}] (Gaussian mean).

The heads are linear (the observation head has one weight matrix per own action): planning
runs them B x 2 x K x 15 times per decision, so the GRU carries the nonlinearity. Each head
sees only the tokens before the one it predicts, so the model is causal by construction
(tested: changing a later token never changes an earlier prediction). Folding the three
tokens of a round into one recurrent step keeps planning at one GRU step per round.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from coplay.agents.gru import AgentInput
from coplay.envs.matrix_games import NUM_ACTIONS, NUM_TOKENS


class PPIModel(nn.Module):
    """``step(hidden (B, H), AgentInput) -> hidden, feat (B, H)`` plus the three heads."""

    hidden_size: int = 128
    embed_dim: int = 32
    use_opponent_id: bool = False

    def setup(self):
        self.embed_obs = nn.Dense(self.embed_dim)
        self.embed_action = nn.Dense(self.embed_dim)
        self.embed_reward = nn.Dense(self.embed_dim)
        if self.use_opponent_id:
            self.embed_opponent_id = nn.Dense(self.embed_dim)
        self.gru = nn.GRUCell(self.hidden_size)
        self.action_head = nn.Dense(NUM_ACTIONS)
        self.obs_head = nn.Dense(NUM_ACTIONS * NUM_TOKENS)  # one linear head per own action
        self.reward_head = nn.Dense(1)

    def step(self, hidden: jax.Array, x: AgentInput):
        emb = (self.embed_obs(jax.nn.one_hot(x.token, NUM_TOKENS))
               + self.embed_action(jax.nn.one_hot(x.prev_action, NUM_ACTIONS))  # -1 -> zeros
               + self.embed_reward(x.prev_reward[..., None]))
        if self.use_opponent_id:
            emb = emb + self.embed_opponent_id(x.opponent_id)
        hidden, out = self.gru(hidden, emb)
        return hidden, nn.swish(out)

    def action_logits(self, feat: jax.Array) -> jax.Array:
        """(…, H) -> (…, 2): the prior p(a_t | x≤t)."""
        return self.action_head(feat)

    def obs_logits(self, feat: jax.Array, action: jax.Array) -> jax.Array:
        """(…, H), (…,) int -> (…, 5): p(o_{t+1} | x≤t, a_t)."""
        logits = self.obs_head(feat).reshape(*feat.shape[:-1], NUM_ACTIONS, NUM_TOKENS)
        return jnp.take_along_axis(logits, action[..., None, None], -2)[..., 0, :]

    def reward(self, feat: jax.Array, action: jax.Array, next_token: jax.Array) -> jax.Array:
        """(…, H), (…,), (…,) -> (…,): predicted reward of round t."""
        z = jnp.concatenate([feat, jax.nn.one_hot(action, NUM_ACTIONS),
                             jax.nn.one_hot(next_token, NUM_TOKENS)], -1)
        return self.reward_head(z)[..., 0]

    def __call__(self, hidden: jax.Array, x: AgentInput):
        """Touch every head (used by ``init``): returns hidden and the three predictions for
        action 0 and token 0."""
        hidden, feat = self.step(hidden, x)
        zeros = jnp.zeros(feat.shape[:-1], jnp.int32)
        return hidden, (self.action_logits(feat), self.obs_logits(feat, zeros),
                        self.reward(feat, zeros, zeros))

    def initial_hidden(self, batch: int) -> jax.Array:
        return jnp.zeros((batch, self.hidden_size), jnp.float32)


def predict_sequence(model: PPIModel, params, inputs: AgentInput, actions: jax.Array,
                     next_tokens: jax.Array, unroll: int = 1):
    """Teacher-forced predictions over a recorded episode, time-major (T, B, ...).

    ``inputs`` are what the agent saw at each round, ``actions`` (T, B) what it did and
    ``next_tokens`` (T, B) the observation that followed. Returns action logits (T, B, 2),
    next-observation logits (T, B, 5) and predicted rewards (T, B).
    """

    def body(hidden, xs):
        x, action, next_token = xs
        hidden, feat = model.apply(params, hidden, x, method=PPIModel.step)
        act = model.apply(params, feat, method=PPIModel.action_logits)
        obs = model.apply(params, feat, action, method=PPIModel.obs_logits)
        rew = model.apply(params, feat, action, next_token, method=PPIModel.reward)
        return hidden, (act, obs, rew)

    _, out = jax.lax.scan(body, model.initial_hidden(actions.shape[1]),
                          (inputs, actions, next_tokens), unroll=unroll)
    return out
