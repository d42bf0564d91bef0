"""PPI's planning inside the model: Monte-Carlo Q̂ of both actions (:func:`plan_q`), the
model's prediction of the co-player's move, and the improved policy π ∝ p·exp(β·Q̂)
(:func:`improved_logits`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from coplay.agents.gru import AgentInput
from coplay.agents.ppi_model import PPIModel
from coplay.algos.ppi_config import PPIConfig, make_model


def token_action_mask(action: jax.Array) -> jax.Array:
    """(…,) own action -> (…, 5) bool: next-observation tokens consistent with it."""
    tokens = jnp.arange(5)
    own = (tokens - 1) // 2
    return (tokens >= 1) & (own == action[..., None])


def plan_q(cfg: PPIConfig, params, hidden: jax.Array, feat: jax.Array,
           opponent_id: jax.Array, round_index: jax.Array, key: jax.Array) -> jax.Array:
    """Q̂ (B, 2) of both actions at B decision points, one learner's model.

    ``hidden`` and ``feat`` (B, H) are the model's state after reading x≤t; ``round_index``
    () or (B,) is t. Each of the B x 2 x K rollouts starts with the candidate action, samples
    the next observation among those consistent with the action taken (the agent sees its own
    move), adds the predicted reward, feeds (o, a, r̂) back into the GRU and draws its next own
    action from the prior; ``planning_horizon`` rounds in one ``lax.scan``. Rollout i of C and
    rollout i of D share their random numbers (common random numbers; samples are
    argmax(logits + Gumbel), i.e. exact categorical draws).
    """
    model = make_model(cfg)
    b, k, h = hidden.shape[0], cfg.num_rollouts, cfg.planning_horizon
    m = b * 2 * k
    expand = lambda x: jnp.broadcast_to(x[:, None, None], (b, 2, k, *x.shape[1:])).reshape(  # noqa: E731
        m, *x.shape[1:])
    action = jnp.broadcast_to(jnp.arange(2)[None, :, None], (b, 2, k)).reshape(m)
    t0 = expand(jnp.broadcast_to(jnp.asarray(round_index, jnp.int32), (b,)))
    z = expand(opponent_id)
    apply = lambda method, *a: model.apply(params, *a, method=method)  # noqa: E731

    def shared_gumbel(key, n):
        """(m, n) Gumbel noise equal for the two candidate actions of a rollout: common
        random numbers, so Q̂(C) - Q̂(D) is not blurred by independent luck."""
        g = jax.random.gumbel(key, (b, 1, k, n))
        return jnp.broadcast_to(g, (b, 2, k, n)).reshape(m, n)

    def body(carry, xs):
        hidden, feat, action, ret = carry
        j, key = xs
        k_obs, k_act = jax.random.split(key)
        logits = apply(PPIModel.obs_logits, feat, action)
        logits = jnp.where(token_action_mask(action), logits, -jnp.inf)
        token = jnp.argmax(logits + shared_gumbel(k_obs, logits.shape[-1]), -1).astype(
            jnp.int32)
        reward = apply(PPIModel.reward, feat, action, token)
        live = (t0 + j < cfg.num_rounds) | cfg.plan_past_episode_end
        ret = ret + jnp.where(live, reward, 0.0)
        hidden, feat = apply(PPIModel.step, hidden, AgentInput(token, action, reward, z))
        prior = apply(PPIModel.action_logits, feat)
        action = jnp.argmax(prior + shared_gumbel(k_act, prior.shape[-1]), -1)
        return (hidden, feat, action.astype(jnp.int32), ret), None

    init = (expand(hidden), expand(feat), action, jnp.zeros((m,), jnp.float32))
    (_, _, _, ret), _ = jax.lax.scan(body, init, (jnp.arange(h), jax.random.split(key, h)),
                                     unroll=cfg.scan_unroll)
    return ret.reshape(b, 2, k).mean(-1)


def predicted_coplayer_coop(obs_logits: jax.Array, action: jax.Array) -> jax.Array:
    """(…, 5) next-observation logits given own action a (…,) -> (…,) the model's P(co-player
    plays C this round): the mass of token (a, C) among the tokens consistent with a."""
    probs = jax.nn.softmax(jnp.where(token_action_mask(action), obs_logits, -jnp.inf))
    return jnp.take_along_axis(probs, (1 + 2 * action)[..., None], -1)[..., 0]


def improved_logits(prior_logits: jax.Array, q: jax.Array, beta: float) -> jax.Array:
    """log π = log p(a|x) + β·Q̂ − log Z, over the last axis."""
    return jax.nn.log_softmax(jax.nn.log_softmax(prior_logits) + beta * q)

