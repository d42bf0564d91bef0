"""PPI's config: :class:`PPIConfig` (spec: Algorithm 2), its checks (:func:`validate`) and what
it derives: the sequence model it describes (:func:`make_model`) and the share of learner games.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from coplay.agents.ppi_model import PPIModel
from coplay.config import checker


@dataclasses.dataclass(frozen=True)
class PPIConfig:
    """PPI in the mixed pool. Defaults are the paper's values (spec, Algorithm 2)."""

    num_rounds: int = 100
    """Rounds per IPD episode (the paper: 100)."""
    num_learners: int = 2
    """PPI agents trained side by side, each with its own model and dataset."""
    frozen_learners: tuple[int, ...] = ()
    """Learners that play but never retrain (the frozen step-1 victim of step 2)."""
    hidden_size: int = 128
    """GRU hidden size (the paper: 128)."""
    embed_dim: int = 32
    """Embedding size of observation, previous action and previous reward (the paper: 32)."""
    tabular_fraction: float = 0.5
    """Share of each learner's games against a fresh random tabular agent (the paper: 0.5);
    0 is the `no-tabular` ablation."""
    use_opponent_id: bool = False
    """`opponent-id` ablation: the model also reads the tabular co-player's log-policy z
    (zeros for learner co-players), in the data and in planning."""
    num_phases: int = 30
    """Phases k = 1..K (the paper: 30)."""
    d0_trajectories: int = 200_000
    """Size of D_0: trajectories (one per seat) of games between two random tabular agents
    (the paper: 200,000); shared by all learners."""
    trajectories_per_phase: int = 20_000
    """Games each learner plays with its improved policy per phase (the paper: 20,000)."""
    collect_batch: int = 1000
    """Games per learner in one jitted collection call (memory vs. speed; must divide
    `trajectories_per_phase`)."""
    beta: float = 0.01
    """Inverse temperature of the improvement π ∝ p·exp(β·Q̂) (the paper: 0.01)."""
    planning_horizon: int = 15
    """Rounds simulated inside the model per rollout (the paper: 15)."""
    num_rollouts: int = 8
    """Monte-Carlo rollouts per candidate action and decision (unreported in the paper)."""
    planning_noise: Literal["decision", "episode"] = "decision"
    """Random numbers of the planning rollouts: "decision" draws fresh ones at every decision
    (unreported in the paper; the `default`'s choice); "episode" draws one set per game and
    learner and reuses it at every decision of that game, so a learner's Monte-Carlo error is a
    smooth function of the history instead of a fresh coin at every round: a consistent
    persona within a game, a different one in the next (a deviation; see docs/ipd.md)."""
    plan_past_episode_end: bool = False
    """If False (default), rollouts stop counting reward at the episode's last round, so Q̂
    is the return of the real remaining game; True counts the full horizon everywhere."""
    obs_loss_weight: float = 1.0
    """λ_obs on the next-observation cross-entropy (unreported; see docs/ipd.md)."""
    action_loss_weight: float = 1.0
    """λ_act on the own-action cross-entropy (unreported)."""
    reward_loss_weight: float = 0.5
    """λ_rew on the reward squared error (unreported; 0.5 = unit-variance Gaussian NLL)."""
    learning_rate: float = 1e-4
    """AdamW learning rate (the paper: 1e-4)."""
    weight_decay: float = 1e-2
    """AdamW weight decay (the paper: 1e-2)."""
    adam_b1: float = 0.9
    """AdamW beta1 (the paper: 0.9)."""
    adam_b2: float = 0.98
    """AdamW beta2 (the paper: 0.98)."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip (the paper: 1.0)."""
    epochs: float = 10.0
    """Passes over the cumulative dataset per phase (the paper: 10)."""
    dataset_window: int = 0
    """0 (the paper): phase k trains on the cumulative dataset D_0 ∪ phases 1..k−1. W ≥ 1 keeps
    the base data (D_0, or the inherited dataset of step 3) and only the last W phases, so
    the prior p(a|x) follows the recent improved policies instead of their average over
    every phase (a deviation; see docs/ipd.md)."""
    prior_window: int = 0
    """0 (the paper): the own-action head — the prior p(a|x) of the improved policy and of the
    rollouts — learns from the whole training dataset, like the other heads, so in a learner's
    contexts it is the *average* of every past phase's improved policy (fictitious play). W ≥ 1:
    it learns only from the games of the last W phases (the base data while there are none),
    while the observation and reward heads keep learning from everything, so the prior follows
    the latest improved policy (policy iteration) and the world model keeps every co-player it
    has seen (a deviation; see docs/ipd.md)."""
    batch_size: int = 256
    """Trajectories per gradient step (the paper: 256)."""
    reinit_model: bool = True
    """Re-initialise the model at the start of every phase (the paper: yes). False warm-starts
    it from the previous phase's model, which then needs far fewer steps on D_{k-1}."""
    max_steps_per_phase: int | None = None
    """If set, at most this many gradient steps per phase (the dataset grows every phase)."""
    first_phase_steps: int | None = None
    """If set, phase 1 (training on D_0 alone) takes exactly this many steps instead; with
    `reinit_model` off it is the pre-training that later phases fine-tune."""
    train_chunk_steps: int = 50
    """Gradient steps per jitted call (speed only; steps are rounded up to a multiple)."""
    scan_unroll: int = 1
    """Unroll factor of the per-round scans (speed only)."""


def validate(cfg: PPIConfig) -> None:
    """Raise :class:`ConfigError` naming the first invalid field (before anything compiles)."""

    need = checker(cfg, "ppi")

    for f in ("num_rounds", "hidden_size", "embed_dim", "num_phases", "d0_trajectories",
              "trajectories_per_phase", "collect_batch", "planning_horizon", "num_rollouts",
              "batch_size", "train_chunk_steps", "scan_unroll"):
        need(isinstance(getattr(cfg, f), int) and getattr(cfg, f) >= 1, f,
             "must be an integer >= 1")
    need(isinstance(cfg.num_learners, int)
         and (cfg.num_learners == 1 or (cfg.num_learners >= 2 and cfg.num_learners % 2 == 0)),
         "num_learners", "must be 1 (self-play) or an even number >= 2 (learners are paired; "
         "more than two are paired at random in every game)")
    need(all(isinstance(i, int) and 0 <= i < cfg.num_learners for i in cfg.frozen_learners)
         and len(set(cfg.frozen_learners)) < cfg.num_learners, "frozen_learners",
         f"must be distinct learner indices below num_learners ({cfg.num_learners}), "
         "with at least one learner left to train")
    need(0.0 <= cfg.tabular_fraction <= 1.0, "tabular_fraction", "must be in [0, 1]")
    need(cfg.d0_trajectories % 2 == 0, "d0_trajectories",
         "must be even (each random tabular game gives one trajectory per seat)")
    need(cfg.trajectories_per_phase % cfg.collect_batch == 0, "collect_batch",
         f"must divide trajectories_per_phase ({cfg.trajectories_per_phase})")
    need(cfg.beta >= 0, "beta", "must be >= 0")
    need(cfg.planning_noise in ("decision", "episode"), "planning_noise",
         'must be "decision" or "episode"')
    for f in ("obs_loss_weight", "action_loss_weight", "reward_loss_weight", "weight_decay"):
        need(getattr(cfg, f) >= 0, f, "must be >= 0")
    need(cfg.action_loss_weight > 0, "action_loss_weight",
         "must be > 0: the action head is the prior of the improved policy")
    need(cfg.learning_rate > 0, "learning_rate", "must be > 0")
    need(0 <= cfg.adam_b1 < 1 and 0 <= cfg.adam_b2 < 1, "adam_b2", "betas must be in [0, 1)")
    need(cfg.max_grad_norm > 0, "max_grad_norm", "must be > 0")
    need(cfg.epochs > 0, "epochs", "must be > 0")
    need(isinstance(cfg.dataset_window, int) and cfg.dataset_window >= 0, "dataset_window",
         "must be an integer >= 0 (0 = the cumulative dataset)")
    need(isinstance(cfg.prior_window, int) and cfg.prior_window >= 0, "prior_window",
         "must be an integer >= 0 (0 = the prior learns from the whole dataset)")
    for f in ("max_steps_per_phase", "first_phase_steps"):
        need(getattr(cfg, f) is None or getattr(cfg, f) >= 1, f, "must be >= 1")


def make_model(cfg: PPIConfig) -> PPIModel:
    return PPIModel(cfg.hidden_size, cfg.embed_dim, cfg.use_opponent_id)


def num_learner_games(cfg: PPIConfig, n: int) -> int:
    """Of ``n`` games per learner, how many are against the other learner."""
    return int(round((1.0 - cfg.tabular_fraction) * n))
