"""IPD learners in the Axelrod library (PyPI ``axelrod``, the optional extra ``coplay[axelrod]``).

- :class:`LearnerPlayer`: any coplay IPD :class:`~coplay.agents.base.Agent` (an A2C or PPI
  learner from its run folder, a memory-1 table) as an ``axelrod.Player``. Each turn one jitted
  call of the agent's ``act`` on the last round's first-person token, the agent's state (the
  GRU hidden vector) carried from turn to turn. Its random draws come from a JAX key made from
  the player's seeded ``axelrod`` RNG at the start of every match, and are split each turn as
  :func:`coplay.algos.ipd_rollout.rollout` splits its round keys, so a ``Match`` with a seed is
  reproducible and plays exactly coplay's rollout on the same key (``rollout_key``).
- :func:`axelrod_game`: the project's payoff table as an ``axelrod.Game``.
- :func:`run_axelrod`: the ``coplay ipd axelrod`` command — a round-robin tournament of the
  run's learners and named library strategies, a Moran process, and library strategies as
  evaluation probes (the within-episode statistics of ``coplay ipd eval``), all written to
  the run folder with ``report.md``.

The learner always observes the project's IPD (its first-person tokens, and the rewards of
``MatrixGameParams()``, the table every IPD run trains on), whatever game the tournament
scores with. Matches are played one by one in this process (``processes=None``: any number,
even 1, forks workers): JAX does not survive a fork, and a player holds compiled functions
that cannot be pickled.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from pathlib import Path
from typing import Literal

import jax
import matplotlib.pyplot as plt  # the Agg backend: coplay.eval.plots chooses it on import
import numpy as np
import tyro

from coplay.agents.base import Agent, ipd_input
from coplay.agents.classic import memory1_agent
from coplay.agents.gru import OPPONENT_ID_DIM, AgentInput
from coplay.algos.ipd_rollout import Trajectory
from coplay.envs.matrix_games import START, MatrixGameParams
from coplay.eval.ipd import pairing_stats
from coplay.eval.plots import plot_within_episode
from coplay.experiments.refs import AgentRef, resolve
from coplay.experiments.run_agents import load_ipd_config
from coplay.runs import RunError, atomic_write_text, write_json
from coplay.zoo import is_ref, list_entries, ref_name, ref_of

try:  # the optional extra; every entry point calls require_axelrod() first
    import axelrod as axl
except ImportError:
    axl = None

INSTALL_HINT = "pip install 'coplay[axelrod]'"

# Classic strategies of the default tournament: the library's basic ones, the reciprocators
# and extortioners of the IPD literature, and the entrants of Axelrod's first tournament.
DEFAULT_STRATEGIES = (
    "TitForTat", "Cooperator", "Defector", "Random", "Grudger", "TitFor2Tats", "TwoTitsForTat",
    "SuspiciousTitForTat", "HardTitForTat", "WinStayLoseShift", "GTFT", "Alternator",
    "Prober", "Gradual", "ZDExtort2", "ZDGTFT2", "FirstByDavis", "FirstByFeld",
    "FirstByGrofman", "FirstByJoss", "FirstByShubik", "FirstByTullock", "FirstByNydegger",
    "FirstBySteinAndRapoport", "FirstByTidemanAndChieruzzi", "FirstByDowning",
    "FirstByGraaskamp",
)
DEFAULT_MORAN = ("TitForTat", "Defector", "Cooperator", "Grudger")
DEFAULT_PROBES = ("TitForTat", "Grudger", "Alternator", "ZDExtort2", "FirstByJoss")


class AxelrodMissing(RuntimeError):
    """The ``axelrod`` package is not installed."""


def require_axelrod():
    """The ``axelrod`` module, or :class:`AxelrodMissing` saying how to install it."""
    if axl is None:
        raise AxelrodMissing(f"the Axelrod library is not installed: {INSTALL_HINT}")
    return axl


def axelrod_game(env_params: MatrixGameParams | None = None):
    """The payoff table ``payoff[own, other]`` (default: the project's IPD, (T, R, P, S) =
    (2, 1, 0, -1)) as an ``axelrod.Game``; both use 0 = C, 1 = D."""
    ax = require_axelrod()
    payoff = np.asarray((MatrixGameParams() if env_params is None else env_params).payoff)
    (r, s), (t, p) = payoff.tolist()
    return ax.Game(r=r, s=s, t=t, p=p)


# --- the player -------------------------------------------------------------------------------
# Compiled per agent object (clones of a player share their agent): (agent, reset, turn).
# Entries keep their agent alive for the life of the process, as the players did.
_COMPILED: dict[int, tuple[Agent, object, object]] = {}


def _compiled(agent: Agent):
    entry = _COMPILED.get(id(agent))
    if entry is None or entry[0] is not agent:
        def turn(key, state, token):
            key, k_act, _ = jax.random.split(key, 3)  # as each round of ipd_rollout.rollout
            action, state = agent.act(k_act, state, ipd_input(token))
            return action, key, state

        # the parameters are closed over (constants of the program): a turn moves a key, the
        # state and one token
        entry = (agent, jax.jit(agent.reset), jax.jit(turn))
        _COMPILED[id(agent)] = entry
    return entry[1], entry[2]


_PlayerBase = axl.Player if axl is not None else object


class LearnerPlayer(_PlayerBase):
    """A coplay IPD agent as an ``axelrod.Player``.

    ``memory_depth`` and ``stochastic`` are its Axelrod classifier entries: a learner's are
    infinite and True (a GRU remembers the whole match and samples its actions); a memory-1
    table's are 1 and whether any of its probabilities lies strictly between 0 and 1 (see
    :func:`memory1_player`). After (or during) a match ``rollout_key`` is the JAX key its
    draws started from: ``rollout(rollout_key, ...)`` with one learner and one episode draws
    the same actions against the same co-player.
    """

    name = "coplay learner"
    classifier = {
        "memory_depth": float("inf"), "stochastic": True, "long_run_time": False,
        "inspects_source": False, "manipulates_source": False, "manipulates_state": False,
        "makes_use_of": set(),  # neither the game nor the match length: only the history
    }

    def __init__(self, agent: Agent, name: str = "coplay learner",
                 memory_depth: float = float("inf"), stochastic: bool = True):
        require_axelrod()
        if not isinstance(agent, Agent) or agent.kind != "ipd":
            kind = agent.kind if isinstance(agent, Agent) else type(agent).__name__
            raise ValueError(f"LearnerPlayer needs an IPD agent, got {kind!r}")
        super().__init__()
        self.agent, self.name = agent, str(name)
        self.classifier = {**self.classifier, "memory_depth": memory_depth,
                           "stochastic": bool(stochastic)}
        self._reset_fn, self._turn_fn = _compiled(agent)
        self._decided = -1  # history length at the last decision (-1: none this match)
        self._action = None
        self._key = self._state = self.rollout_key = None
        if not hasattr(self, "_random"):  # a Match seeds stochastic players; alone: seed 0
            self.set_seed(0)

    def __repr__(self) -> str:  # Axelrod names players by repr; the default lists init args
        return self.name

    def _start_match(self) -> None:
        seed = int(self._random.randint(low=0, high=2**31 - 1))
        k_reset, self.rollout_key = jax.random.split(jax.random.PRNGKey(seed))
        self._key, self._state = self.rollout_key, self._reset_fn(k_reset)

    def strategy(self, opponent):
        """The agent's action this turn. Asked again before the turn is played (a strategy
        that simulates its opponent), it answers the same action: one draw per turn."""
        del opponent  # only what happened (the history, noise included) reaches the agent
        n = len(self.history)
        if n == self._decided:
            return self._action
        if n == 0:
            self._start_match()
        elif n != self._decided + 1:
            raise RuntimeError(f"{self.name}: the history jumped from {self._decided} to {n} "
                               "turns between decisions (players are reset between matches)")
        if n == 0:
            token = START
        else:
            token = 1 + 2 * self.history[-1].value + self.history.coplays[-1].value
        action, self._key, self._state = self._turn_fn(self._key, self._state, np.int32(token))
        self._decided, self._action = n, (axl.Action.C, axl.Action.D)[int(action)]
        return self._action


def memory1_player(probs, name: str = "memory-1") -> LearnerPlayer:
    """A memory-1 table (P(C | start, cc, cd, dc, dd), :func:`~coplay.agents.classic.
    memory1_agent`) as a player, classified memory depth 1 and deterministic when every
    probability is 0 or 1."""
    probs = np.asarray(probs, np.float32)
    stochastic = bool(np.any((probs > 0) & (probs < 1)))
    return LearnerPlayer(memory1_agent(probs, name), name, 1, stochastic)


def learner_agents(source: str | Path, learners: tuple[int, ...] = ()) -> list[Agent]:
    """The IPD learners of a run folder (all, or those listed), the agent of a
    ``zoo:<name>`` entry, or the learners of an exported run, ``zoo:<name>`` whose entries are
    ``<name>/learnerNN`` (all, or those listed); ValueError / RunError naming what is wrong."""
    if is_ref(source):
        name = ref_name(source).rstrip("/")
        exported = sorted(n for n in list_entries(prefix=name + "/")
                          if re.fullmatch(re.escape(name) + r"/learner\d+", n))
        if name not in list_entries(prefix=name) and exported:
            ids = [int(n.rsplit("learner", 1)[1]) for n in exported]
            for i in learners:
                if i not in ids:
                    raise ValueError(f"learner {i}: {source} has learners {ids}")
            return [resolve(ref_of(f"{name}/learner{i:02d}")) for i in (learners or ids)]
        if learners:
            raise ValueError(f"{source}: a zoo entry holds one agent (no learners to choose)")
        agent = resolve(source)
        if agent.kind != "ipd":
            raise RunError(f"{source} is a {agent.kind} agent, not an IPD learner")
        return [agent]
    _, algo = load_ipd_config(source)  # RunError when the folder is not an IPD run
    for i in learners:
        if not 0 <= i < algo.num_learners:
            raise ValueError(f"learner {i}: {source} has learners 0..{algo.num_learners - 1}")
    return [resolve(AgentRef(str(source), member=i))
            for i in (learners or range(algo.num_learners))]


def learner_players(agents: list[Agent], label: str,
                    ids: tuple[int, ...] = ()) -> list[LearnerPlayer]:
    """One player per agent, named ``coplay <label> learner <id>`` (ids default 0, 1, ...)."""
    ids = ids or tuple(range(len(agents)))
    return [LearnerPlayer(a, f"coplay {label} learner {i}")
            for a, i in zip(agents, ids, strict=True)]


# --- strategies by name -----------------------------------------------------------------------
def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def strategy_classes(names: tuple[str, ...]) -> list[type]:
    """Library strategies by class name (``TitForTat``) or display name (``Tit For Tat``),
    case and punctuation ignored; ``("all",)``: every strategy that obeys Axelrod's rules
    (``axelrod.strategies``). ValueError naming an unknown one and the closest names."""
    ax = require_axelrod()
    if tuple(names) == ("all",):
        return list(ax.strategies)
    table: dict[str, type] = {}
    for cls in ax.all_strategies:
        table.setdefault(_norm(cls.__name__), cls)
        table.setdefault(_norm(cls.name), cls)
    out = []
    for name in names:
        cls = table.get(_norm(name))
        if cls is None:
            close = difflib.get_close_matches(name, sorted(c.__name__ for c in ax.all_strategies),
                                              n=5, cutoff=0.5)
            hint = f" (closest: {', '.join(close)})" if close else ""
            raise ValueError(f"unknown Axelrod strategy {name!r}{hint}; names are the library's "
                             "class names, e.g. TitForTat, or 'all'")
        out.append(cls)
    return out


# --- probes: library strategies as co-players, coplay's evaluation statistics ----------------
def probe_stats(agents: list[Agent], strategy: type, num_rounds: int, episodes: int,
                seed: int) -> dict:
    """Each learner plays ``episodes`` seeded matches of ``num_rounds`` turns against
    ``strategy``; the statistics of ``coplay ipd eval``'s probes (reward per round on the
    project's table, cooperation, within-episode curves, memory-1 profile) over them."""
    ax = require_axelrod()
    payoff = np.asarray(MatrixGameParams().payoff)
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, (len(agents), episodes))
    shape = (num_rounds, len(agents), episodes)
    token, own, other = (np.zeros(shape, np.int32) for _ in range(3))
    for i, agent in enumerate(agents):
        player = LearnerPlayer(agent, f"learner {i}")
        for e in range(episodes):
            match = ax.Match((player, strategy()), turns=num_rounds, seed=int(seeds[i, e]),
                             game=axelrod_game())
            plays = np.array([[a.value, b.value] for a, b in match.play()], np.int32)
            own[:, i, e], other[:, i, e] = plays[:, 0], plays[:, 1]
    token[1:] = 1 + 2 * own[:-1] + other[:-1]  # START (0) before the first round
    prev = np.concatenate([np.full((1, *shape[1:]), -1, np.int32), own[:-1]])
    reward = payoff[own, other].astype(np.float32)
    prev_reward = np.concatenate([np.zeros((1, *shape[1:]), np.float32), reward[:-1]])
    inputs = AgentInput(token, prev, prev_reward,
                        np.zeros((*shape, OPPONENT_ID_DIM), np.float32))
    zeros = np.zeros(shape, np.float32)
    return pairing_stats(Trajectory(inputs, own, zeros, zeros, reward, other)) | {
        "strategy": strategy.name, "episodes": episodes}


# --- the command ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AxelrodConfig:
    """Enter a trained IPD run's learners into the Axelrod library: a round-robin tournament
    against its strategies, a Moran process, and its strategies as evaluation probes; results,
    Axelrod's plots and report.md in RUN_DIR/axelrod (or --out)."""

    run_dir: tyro.conf.Positional[str]
    """The IPD run folder (`coplay ipd train`, A2C or PPI), or zoo:<name> for an IPD zoo
    entry or an exported run's learners (zoo:ipd/a2c-default-s0: learner00..07; then --out is
    needed)."""
    learners: tuple[int, ...] = ()
    """Which of the run's learners enter (default: all)."""
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    """Library strategies of the tournament, by class name (TitForTat, FirstByJoss, ...), or
    `all` (every strategy obeying Axelrod's rules: about 240, slow)."""
    turns: int | None = None
    """Turns per match (default: the run's num_rounds, the game length the learners know)."""
    repetitions: int = 5
    """Repetitions of every match of the tournament."""
    seed: int = 0
    """Seed of the tournament, the Moran process and the probe matches."""
    game: Literal["coplay", "standard"] = "coplay"
    """Scoring table: coplay ((T, R, P, S) = (2, 1, 0, -1), the learners' own) or standard
    (Axelrod's (5, 3, 1, 0)). The learners observe the coplay table's rewards either way."""
    moran: tuple[str, ...] = DEFAULT_MORAN
    """Strategies of the Moran process beside the first entered learner, one individual each
    (empty: no Moran process)."""
    moran_generations: int = 300
    """Stop the Moran process after this many generations if it has not fixated."""
    probes: tuple[str, ...] = DEFAULT_PROBES
    """Library strategies played as evaluation probes (empty: none)."""
    probe_episodes: int = 32
    """Matches per learner and probe."""
    out: Path | None = None
    """Output folder (default: RUN_DIR/axelrod)."""


def validate(cfg: AxelrodConfig) -> None:
    for name in ("repetitions", "probe_episodes", "moran_generations"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} = {getattr(cfg, name)}: must be >= 1")
    if cfg.turns is not None and cfg.turns < 1:
        raise ValueError(f"turns = {cfg.turns}: must be >= 1")
    if is_ref(cfg.run_dir) and cfg.out is None:
        raise ValueError(f"{cfg.run_dir}: a zoo entry has no run folder, give --out")


def _game(cfg: AxelrodConfig):
    return axelrod_game() if cfg.game == "coplay" else require_axelrod().Game()


def tournament_results(players: list, cfg: AxelrodConfig, turns: int):
    """Play the round robin; the library's ResultSet."""
    ax = require_axelrod()
    tournament = ax.Tournament(players, game=_game(cfg), turns=turns,
                               repetitions=cfg.repetitions, seed=cfg.seed)
    return tournament.play(processes=None, progress_bar=False)


def summarise_tournament(results, num_learners: int) -> dict:
    """What results.json keeps: every player's rank (1 = best median score per turn), mean and
    median score per turn, cooperation rate, and the library's matrices (mean payoff per turn
    and cooperation rate of row vs column, averaged over repetitions)."""
    names = list(results.players)
    scores = np.asarray(results.normalised_scores, float)  # (players, repetitions) per turn
    rank = {names[i]: r + 1 for r, i in enumerate(results.ranking)}
    by_name = lambda values: dict(zip(names, map(float, values), strict=True))  # noqa: E731
    return {
        "players": names, "learners": names[:num_learners], "ranked_names": results.ranked_names,
        "rank": rank, "mean_score_per_turn": by_name(scores.mean(1)),
        "median_score_per_turn": by_name(np.median(scores, 1)),
        "cooperation_rate": by_name(results.cooperating_rating),
        "payoff_matrix": np.asarray(results.payoff_matrix, float).tolist(),
        "cooperation_matrix": np.asarray(results.normalised_cooperation, float).tolist(),
        "wins": np.asarray(results.wins).tolist(),
    }


def save_axelrod_plots(results, out: Path, title: str) -> list[str]:
    """The library's tournament plots as PNGs in ``out``; their file names."""
    plot = require_axelrod().Plot(results)
    files = []
    for method, what in (("boxplot", "payoff"), ("payoff", "payoff matrix"),
                         ("winplot", "wins"), ("sdvplot", "payoff differences"),
                         ("pdplot", "payoff differences")):
        fig = getattr(plot, method)(title=f"{title} - {what}")
        fig.savefig(out / f"{method}.png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        files.append(f"{method}.png")
    return files


def moran_process(learner: LearnerPlayer, strategies: list[type], cfg: AxelrodConfig,
                  turns: int, out: Path) -> dict:
    """A Moran process (birth-death, no mutation) of ``learner`` and one individual of each
    strategy; populations plot in ``out / moran.png``."""
    ax = require_axelrod()
    mp = ax.MoranProcess([learner] + [s() for s in strategies], turns=turns, game=_game(cfg),
                         seed=cfg.seed)
    for _ in range(cfg.moran_generations):
        try:
            next(mp)
        except StopIteration:
            break
    fixated = mp.fixation_check()
    fig, axis = plt.subplots(figsize=(7, 4))
    mp.populations_plot(ax=axis)
    fig.savefig(out / "moran.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return {"players": [str(p) for p in mp.initial_players], "generations": len(mp) - 1,
            "fixated": bool(fixated), "winner": mp.winning_strategy_name if fixated else None,
            "final_population": dict(mp.populations[-1])}


def run_axelrod(cfg: AxelrodConfig) -> Path:
    """The whole command (see :class:`AxelrodConfig`); returns the report's path."""
    validate(cfg)
    require_axelrod()
    agents = learner_agents(cfg.run_dir, cfg.learners)
    zoo = is_ref(cfg.run_dir)
    run_cfg, algo = (None, None) if zoo else load_ipd_config(cfg.run_dir)
    turns = cfg.turns or (algo.num_rounds if algo is not None else 100)
    label = "PPI" if run_cfg and run_cfg.get("algo") == "ppi" else "A2C"
    if zoo:
        label = cfg.run_dir
    strategies = strategy_classes(cfg.strategies)
    moran = strategy_classes(cfg.moran) if cfg.moran else []
    probes = strategy_classes(cfg.probes) if cfg.probes else []
    out = Path(cfg.out) if cfg.out is not None else Path(cfg.run_dir) / "axelrod"
    out.mkdir(parents=True, exist_ok=True)
    players = learner_players(agents, label, cfg.learners)

    results = tournament_results(players + [s() for s in strategies], cfg, turns)
    summary = summarise_tournament(results, len(players))
    results.write_summary(str(out / "summary.csv"))
    plots = save_axelrod_plots(results, out, f"coplay {label} learners")
    record = {"run": str(cfg.run_dir), "axelrod_version": axl.__version__, "turns": turns,
              "repetitions": cfg.repetitions, "seed": cfg.seed, "game": cfg.game,
              "tournament": summary, "plots": plots}
    if moran:
        record["moran"] = moran_process(players[0], moran, cfg, turns, out)
    if probes:
        record["probes"] = {s.name: probe_stats(agents, s, turns, cfg.probe_episodes,
                                                cfg.seed + k)
                            for k, s in enumerate(probes)}
        names = tuple(record["probes"])
        plot_within_episode({f"{label} learners": {"probes": record["probes"]}},
                            out / "within_episode.png", probes=names)
    write_json(out / "results.json", record)
    atomic_write_text(out / "report.md", render_report(record))
    return out / "report.md"


# --- report.md --------------------------------------------------------------------------------
def render_report(record: dict) -> str:
    t = record["tournament"]
    names, learners = t["players"], t["learners"]
    lines = [f"# {record['run']} in the Axelrod library (axelrod {record['axelrod_version']})",
             "", f"Round robin of {len(names)} players (self-matches included), "
             f"{record['turns']} turns, {record['repetitions']} repetitions, seed "
             f"{record['seed']}, scored with the {record['game']} table; actions sampled.",
             "", "## Ranking", "",
             "| rank | player | median score / turn | mean score / turn | cooperation |",
             "|---|---|---|---|---|"]
    for name in t["ranked_names"]:
        bold = "**" if name in learners else ""
        lines.append(f"| {t['rank'][name]} | {bold}{name}{bold} | "
                     f"{t['median_score_per_turn'][name]:.3f} | "
                     f"{t['mean_score_per_turn'][name]:.3f} | "
                     f"{t['cooperation_rate'][name]:.3f} |")
    lines += ["", "## The learners against each strategy", "",
              "Cooperation rate of the learner / its mean score per turn, per co-player.", "",
              "| co-player | " + " | ".join(f"L{i}" for i in range(len(learners))) + " |",
              "|---|" + "---|" * len(learners)]
    coop, pay = np.asarray(t["cooperation_matrix"]), np.asarray(t["payoff_matrix"])
    for j, name in enumerate(names):
        cells = " | ".join(f"{coop[i, j]:.2f} / {pay[i, j]:.2f}" for i in range(len(learners)))
        lines.append(f"| {name} | {cells} |")
    lines += ["", "Learners: " + ", ".join(f"L{i} = {n}" for i, n in enumerate(learners)), ""]
    lines += ["## Axelrod's plots", ""] + [f"![{p}]({p})" for p in record["plots"]] + [""]
    if "moran" in record:
        m = record["moran"]
        end = (f"fixated on **{m['winner']}** after {m['generations']} generations"
               if m["fixated"] else f"not fixated after {m['generations']} generations "
               f"(final population {m['final_population']})")
        lines += ["## Moran process", "", f"One individual each of {', '.join(m['players'])}: "
                  f"{end}.", "", "![moran](moran.png)", ""]
    if "probes" in record:
        lines += ["## Library strategies as probes", "",
                  "Each learner's matches against the strategy, statistics as in "
                  "`coplay ipd eval` (reward per round on the coplay table).", "",
                  "| probe | episodes / learner | reward / round | cooperation | "
                  "coop. 2nd half | co-player cooperation |", "|---|---|---|---|---|---|"]
        for name, s in record["probes"].items():
            lines.append(f"| {name} | {s['episodes']} | {s['reward']:.3f} | "
                         f"{s['cooperation']:.3f} | {s['cooperation_second_half']:.3f} | "
                         f"{s['coplayer_cooperation']:.3f} |")
        lines += ["", "![within episode](within_episode.png)", ""]
    return "\n".join(lines)
