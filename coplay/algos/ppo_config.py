"""PPO's config: :class:`PPOConfig`, its checks (:func:`validate`) and the values derived from
it (updates of a run, policies per member, the entropy / shaping / learning-rate schedules).

The trainer that reads it is :func:`coplay.algos.ppo.make_train`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import jax
import jax.numpy as jnp

from coplay.config import checker


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO for Overcooked. ``PPOConfig()`` is the paper's (ZSC-Eval's self-play / HSP MAPPO
    values: CNN, 100 envs x 400 steps, 15 epochs; feed-forward where ZSC-Eval is recurrent;
    GPU scale). This CPU's ``default`` preset (JaxMARL IPPO's values with separate parameters
    per seat and ZSC-Eval's learning rate, docs/ppo.md) and ``tiny`` are in
    :mod:`coplay.experiments.overcooked.presets`."""

    num_envs: int = 100
    """Parallel environments per member (JaxMARL IPPO: 16; ZSC-Eval: 100-200 threads)."""
    num_steps: int = 400
    """Steps per environment in each rollout (JaxMARL IPPO: 128; ZSC-Eval: 400)."""
    total_steps: int = 10_000_000
    """Environment steps per member (one step moves both cooks), rounded up to whole chunks."""
    updates_per_chunk: int = 1
    """PPO updates per jitted chunk; metrics, progress and checkpoints happen between chunks."""
    update_epochs: int = 15
    """Passes over each rollout (JaxMARL IPPO: 4; ZSC-Eval: 15)."""
    num_minibatches: int = 1
    """Minibatches per pass; must divide the samples per policy and rollout."""
    learning_rate: float = 5e-4
    """Adam learning rate (ZSC-Eval: 5e-4; JaxMARL IPPO: 2.5e-4)."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over training (JaxMARL IPPO: yes)."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip, per policy."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_eps: float = 0.2
    """PPO ratio clip (and the value clip when `clip_value`)."""
    value_coef: float = 1.0
    """Weight of the value loss (the loss itself is 0.5 * squared error, as JaxMARL)."""
    clip_value: bool = True
    """Clip value updates to +-clip_eps around the rollout's values (JaxMARL IPPO: yes)."""
    huber_delta: float | None = 10.0
    """Huber loss with this delta instead of the squared value error (MAPPO / ZSC-Eval: 10);
    None: squared error (JaxMARL IPPO)."""
    value_norm: bool = True
    """Normalise value targets by running statistics (MAPPO / ZSC-Eval's ValueNorm); the
    critic then predicts normalised values."""
    value_norm_beta: float = 0.99999
    """Decay of the value-normaliser statistics, per update (MAPPO: 0.99999)."""
    advantage_norm: Literal["minibatch", "batch", "none"] = "batch"
    """Normalise advantages per minibatch (JaxMARL IPPO), over each policy's whole rollout
    (MAPPO / ZSC-Eval), or not at all."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before advantages and value targets."""
    entropy_coefs: tuple[float, ...] = (0.2, 0.05, 0.001)
    """Entropy-bonus coefficients at `entropy_horizons`, linearly interpolated (one value:
    constant; ZSC-Eval: 0.2, 0.05, 0.001)."""
    entropy_horizons: tuple[float, ...] = (0.0, 0.6, 1.0)
    """Fractions of `total_steps` where `entropy_coefs` apply (ZSC-Eval: 0, 0.6, 1)."""
    shaping_factor: float | None = 1.0
    """Initial weight of the standard shaped reward (placement 3, dish 3, soup 5); None keeps
    each member's EnvParams.shaping_factor."""
    shaping_horizon: int | None = 10_000_000
    """Environment steps over which the shaping weight decays linearly to 0 (JaxMARL IPPO:
    2.5e6); None keeps it constant."""
    share_policy: bool = False
    """One policy for both seats (JaxMARL IPPO); False: separate parameters per seat."""
    randomise_seats: bool = True
    """Draw per episode which cook each seat steers (ZSC-Eval's random_index)."""
    centralised_value: bool = False
    """MAPPO-style critic: it sees both cooks' observations (channel concat)."""
    network: Literal["mlp", "cnn"] = "cnn"
    """Torso of actor and critic: mlp (JaxMARL IPPO) or cnn (ZSC-Eval: 32-64-32, 3x3)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Dense layers of each tower (after the convolutions for cnn)."""
    cnn_filters: tuple[int, ...] = (32, 64, 32)
    """Convolution filters of the cnn torso (3x3, stride 1, SAME)."""
    activation: Literal["tanh", "relu"] = "relu"
    """Activation of the dense layers (JaxMARL IPPO: tanh)."""
    horizon: int = 400
    """Episode length in steps (ZSC-Eval: 400)."""
    scan_unroll: int = 1
    """Unroll factor of the rollout scan (speed only)."""
    population_entropy_coef: float = 0.0
    """MEP's population-entropy bonus (Zhao et al. 2023; spec: 0.01): each seat's reward gets
    + coef * -log pi_bar(a|s), pi_bar the mean over population members of the same seat's
    policy at the state (members see each other through the vmapped member axis; the
    un-vmapped ``member_chunk`` then needs ``jax.vmap(..., axis_name="member")``). 0: off."""


def validate(cfg: PPOConfig) -> None:
    """Raise :class:`ConfigError` naming the first invalid field (before anything compiles)."""

    need = checker(cfg, "ppo")

    for f in ("num_envs", "num_steps", "total_steps", "updates_per_chunk", "update_epochs",
              "num_minibatches", "horizon", "scan_unroll"):
        v = getattr(cfg, f)
        need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, f,
             "must be an integer >= 1")
    need(cfg.learning_rate > 0, "learning_rate", "must be > 0")
    need(cfg.adam_eps > 0, "adam_eps", "must be > 0")
    need(cfg.max_grad_norm > 0, "max_grad_norm", "must be > 0")
    need(0.0 <= cfg.gamma <= 1.0, "gamma", "must be in [0, 1]")
    need(0.0 <= cfg.gae_lambda <= 1.0, "gae_lambda", "must be in [0, 1]")
    need(cfg.clip_eps > 0, "clip_eps", "must be > 0")
    need(cfg.value_coef >= 0, "value_coef", "must be >= 0")
    need(cfg.huber_delta is None or cfg.huber_delta > 0, "huber_delta", "must be > 0 or None")
    need(0.0 < cfg.value_norm_beta < 1.0, "value_norm_beta", "must be in (0, 1)")
    need(cfg.reward_scale > 0, "reward_scale", "must be > 0")
    need(cfg.population_entropy_coef >= 0, "population_entropy_coef", "must be >= 0")
    need(len(cfg.entropy_coefs) >= 1 and all(c >= 0 for c in cfg.entropy_coefs),
         "entropy_coefs", "needs at least one value, all >= 0")
    need(len(cfg.entropy_horizons) == len(cfg.entropy_coefs), "entropy_horizons",
         f"needs one fraction per entropy coefficient ({len(cfg.entropy_coefs)})")
    h = cfg.entropy_horizons
    need(all(0.0 <= x <= 1.0 for x in h) and all(a < b for a, b in zip(h, h[1:], strict=False)),
         "entropy_horizons", "must be increasing fractions in [0, 1]")
    need(cfg.shaping_factor is None or cfg.shaping_factor >= 0, "shaping_factor",
         "must be >= 0 or None")
    need(cfg.shaping_horizon is None or cfg.shaping_horizon >= 1, "shaping_horizon",
         "must be >= 1 or None")
    need(cfg.network in ("mlp", "cnn"), "network", "choose mlp or cnn")
    need(cfg.advantage_norm in ("minibatch", "batch", "none"), "advantage_norm",
         "choose minibatch, batch or none")
    need(cfg.activation in ("tanh", "relu"), "activation", "choose tanh or relu")
    need(len(cfg.hidden_sizes) >= 1 and all(int(x) >= 1 for x in cfg.hidden_sizes),
         "hidden_sizes", "needs at least one layer, all sizes >= 1")
    need(len(cfg.cnn_filters) >= 1 and all(int(x) >= 1 for x in cfg.cnn_filters),
         "cnn_filters", "needs at least one layer, all sizes >= 1")
    samples = cfg.num_steps * cfg.num_envs * (2 if cfg.share_policy else 1)
    need(samples % cfg.num_minibatches == 0, "num_minibatches",
         f"must divide the {samples} samples per policy and rollout "
         "(num_steps x num_envs, x2 with share_policy)")


def steps_per_update(cfg: PPOConfig) -> int:
    return cfg.num_envs * cfg.num_steps


def num_updates(cfg: PPOConfig) -> int:
    """Updates of a run: total_steps rounded up to whole chunks."""
    chunks = math.ceil(cfg.total_steps / (steps_per_update(cfg) * cfg.updates_per_chunk))
    return max(chunks, 1) * cfg.updates_per_chunk


def num_policies(cfg: PPOConfig) -> int:
    return 1 if cfg.share_policy else 2


def entropy_coef_at(cfg: PPOConfig, env_steps: jax.Array) -> jax.Array:
    """Piecewise-linear entropy coefficient at a number of env steps (held past the ends)."""
    xs = jnp.asarray(cfg.entropy_horizons, jnp.float32) * cfg.total_steps
    return jnp.interp(jnp.asarray(env_steps, jnp.float32), xs,
                      jnp.asarray(cfg.entropy_coefs, jnp.float32))


def shaping_scale_at(cfg: PPOConfig, env_steps: jax.Array) -> jax.Array:
    """Multiplier of the initial shaping weight: 1 -> 0 linearly over shaping_horizon."""
    if cfg.shaping_horizon is None:
        return jnp.ones((), jnp.float32)
    return jnp.clip(1.0 - jnp.asarray(env_steps, jnp.float32) / cfg.shaping_horizon, 0.0, 1.0)


def learning_rate_at(cfg: PPOConfig, update: jax.Array) -> jax.Array:
    if not cfg.anneal_lr:
        return jnp.asarray(cfg.learning_rate, jnp.float32)
    return cfg.learning_rate * (1.0 - update / num_updates(cfg))
