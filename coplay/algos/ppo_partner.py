"""MEP stage 2 in the PPO trainer: :class:`FrozenPartner` (frozen policies steering seat 1) and
the extra config checks of training one learner beside it (:func:`validate_with_partner`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from coplay.algos.ppo_config import PPOConfig
from coplay.config import ConfigError


class FrozenPartner(NamedTuple):
    """Frozen policies that steer seat 1 instead of the trained policy (MEP stage 2).

    The learner is then one policy (``share_policy=True``) trained on seat 0's data only.
    ``params`` is an argument of the jitted chunk (not train state: nothing updates it);
    ``logits(params, runner, obs_seat (N, 2, H, W, C)) -> (N, A)`` gives seat 1's logits, and
    ``after_step(runner, done (N,), sparse_return (N,) of the episodes ending, key) -> runner``
    runs after every step (e.g. draws the next partner of each finished episode). The runner
    may be a subclass of :class:`coplay.algos.ppo_state.Runner` with the partner's fields.
    """

    params: Any
    logits: Callable
    after_step: Callable
    per_member: bool = False
    """False: every member trains with the same ``params``; True: ``params`` has a leading
    member axis and member m trains with its own entry (best responses to one frozen partner
    each, vmapped)."""


def validate_with_partner(cfg: PPOConfig) -> None:
    """The extra conditions of training one learner beside a :class:`FrozenPartner`."""
    if not cfg.share_policy:
        raise ConfigError("ppo.share_policy = False: a frozen partner needs share_policy = "
                          "True (one learner, trained on seat 0)")
    if (cfg.num_steps * cfg.num_envs) % cfg.num_minibatches:
        raise ConfigError(f"ppo.num_minibatches = {cfg.num_minibatches}: must divide the "
                          f"{cfg.num_steps * cfg.num_envs} samples of the learner's seat")

