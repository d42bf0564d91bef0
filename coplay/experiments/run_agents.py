"""The readers of run folders: one function per run kind, ``(path, config.json, ref) ->``
:class:`~coplay.agents.base.Agent`. :mod:`coplay.experiments.refs` holds the grammar of a
reference and the table from run kind to reader; nothing else should call these directly.

==================  ===========================================  ==========================
experiment          what is read                                 chosen by the reference
==================  ===========================================  ==========================
``ipd``             an A2C GRU learner, or a PPI learner acting  ``PATH#learner`` (default 0)
                    with its improved policy (planning inside
                    its model), from ``checkpoint.msgpack``
``overcooked-ppo``  a self-play PPO policy (``checkpoint``)      ``PATH#0,seat`` (default 0)
``hsp-population``  a member's biased policy (seat 0) or its     ``PATH#member,seat[@mid]``
                    best response (seat 1), ``manifest.json``
``mep-population``  a MEP stage-1 member (one policy, any seat)  ``PATH#member[@mid]``
``mep-adaptive``    the MEP stage-2 learner (``agent.msgpack``)
``hsp-adaptive``    the HSP adaptive agent (``agent.msgpack``)
``*-responses``     ``#k``: the best response to partner k (``agent.msgpack``, one per partner)
``coot``            the trained CooT (``model.msgpack``)
``coot-bc``         the BC baseline (``model.msgpack``)
``coot-dagger``     its last round's CooT (``round-N/model.msgpack``)
==================  ===========================================  ==========================

Parameters are read without a train-state template and checked against the shapes the run's
config gives its network: an unfinished run, a corrupt file or one from another config raise
:class:`~coplay.runs.RunError` naming the file and what was expected; an option out of range
(``learner``, ``member``, ``seat``) raises ``ValueError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from coplay.agents.base import Agent, actor_critic_agent, gru_agent
from coplay.agents.coot_agent import coot_agent
from coplay.agents.gpt import make_gpt
from coplay.agents.gru import AgentInput, dummy_input
from coplay.agents.ppi_model import PPIModel
from coplay.algos import a2c, bc, ppi
from coplay.algos.a2c import A2CConfig
from coplay.algos.coot import CootConfig
from coplay.algos.ppi_config import PPIConfig
from coplay.algos.ppo_config import PPOConfig
from coplay.config import ConfigError, config_from_json
from coplay.envs.matrix_games import NUM_ACTIONS as IPD_ACTIONS
from coplay.envs.overcooked import Overcooked
from coplay.populations.members import member_policies, network_of, take
from coplay.runs import RunDir, RunError, read_json

ADAPTIVE_AGENT = "agent.msgpack"  # what populations.adaptive.finish_adaptive writes
ADAPTIVE_KINDS = ("mep-adaptive", "hsp-adaptive")  # populations.adaptive.ADAPTIVE_KINDS
RESPONSE_KINDS = ("mep-responses", "hsp-responses")  # populations.adaptive.RESPONSE_KINDS
MODEL = "model.msgpack"  # a CooT / BC run's trained parameters


class Choice(NamedTuple):
    """What a reference picks inside a run folder (:class:`coplay.experiments.refs.AgentRef`
    without its path): ``member`` (the learner of an IPD run), ``seat``, ``which``."""

    member: int | None = None
    seat: int | None = None
    which: str = "final"

    def none_but(self, path: Path, kind: str, allowed: tuple[str, ...] = ()) -> None:
        """ValueError naming the options this run kind does not take."""
        given = [f for f in ("member", "seat") if f not in allowed
                 and getattr(self, f) is not None]
        if self.which != "final" and "which" not in allowed:
            given.append("which")
        if given:
            what = f"choose with {' / '.join(allowed)}" if allowed else "it holds one agent"
            raise ValueError(f"{path} is a {kind} folder: no {', '.join(given)} to choose "
                             f"({what})")


# --- reading parameters -----------------------------------------------------------------------
def read_params(file: Path, what: str) -> dict:
    """A flax msgpack file as nested dicts (no template); RunError naming the file."""
    try:
        data = serialization.msgpack_restore(Path(file).read_bytes())
    except FileNotFoundError:
        raise RunError(f"{file} does not exist ({what})") from None
    except Exception as e:  # msgpack raises many kinds on corrupt input
        raise RunError(f"{file} is corrupt, expected {what}: {e}") from None
    if not isinstance(data, dict):
        raise RunError(f"{file} is not a flax msgpack state, expected {what}")
    return data


def _field(data: dict, name: str, file: Path, what: str):
    if name not in data:
        raise RunError(f"{file} has no {name!r} entry, expected {what} "
                       f"(entries: {', '.join(map(str, data))})")
    return data[name]


def _shapes(tree) -> dict[str, tuple[int, ...]]:
    return {jax.tree_util.keystr(k): tuple(np.shape(x))
            for k, x in jax.tree_util.tree_leaves_with_path(tree)}


def _checked(params, expected, file: Path, what: str, lead: tuple[int, ...] = ()):
    """``params`` as jnp arrays, after checking they are ``expected`` (a tree of shape
    structs) with the leading axes ``lead``; RunError naming the file and the first
    difference otherwise."""
    want = {k: lead + s for k, s in _shapes(expected).items()}
    got = _shapes(params)
    if got != want:
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        diff = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                else next(f"{k} has shape {got[k]}, expected {want[k]}" for k in want
                          if got[k] != want[k]))
        raise RunError(f"{file}: its parameters do not fit {what} as the run's config.json "
                       f"describes it ({diff})")
    return jax.tree.map(jnp.asarray, params)


def _index(value: int | None, size: int, arg: str, what: str, default: int | None = 0) -> int:
    if value is None:
        if default is None:
            raise ValueError(f"{arg}: choose one of {list(range(size))} ({what})")
        value = default
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < size:
        raise ValueError(f"{arg} = {value!r}: must be one of {list(range(size))} ({what})")
    return value


def load_ipd_config(path: str | Path, raw: dict | None = None
                    ) -> tuple[dict, A2CConfig | PPIConfig]:
    """(config.json, resolved algorithm config): an A2CConfig, or a PPIConfig for PPI runs.
    ``raw``: config.json when the caller has read it already."""
    cfg = read_json(Path(path) / RunDir.CONFIG) if raw is None else raw
    if cfg.get("experiment") != "ipd" or "resolved" not in cfg:
        raise RunError(f"{path} is not an IPD run folder (no IPD config.json)")
    cls = PPIConfig if cfg.get("algo") == "ppi" else A2CConfig
    try:
        return cfg, config_from_json(cls, cfg["resolved"], f"{path}/config.json resolved")
    except (ConfigError, TypeError) as e:
        raise RunError(f"{path}/config.json does not match this version of coplay: {e}") from None



# --- IPD ----------------------------------------------------------------------------------------
def ipd_agent(path: Path, raw: dict, choice: Choice) -> Agent:
    """An IPD learner (``choice.member``, default 0) of an A2C or PPI run."""
    choice.none_but(path, "ipd", ("member",))
    learner = 0 if choice.member is None else choice.member
    _, algo = load_ipd_config(path, raw)
    file = path / RunDir.CHECKPOINT
    kind = "PPI" if isinstance(algo, PPIConfig) else "A2C"
    what = f"the {kind} train state of {algo.num_learners} learner(s)"
    learner = _index(learner, algo.num_learners, "learner", f"{path} has {algo.num_learners} "
                     "learner(s)")
    params = _field(read_params(file, what), "params", file, what)
    if isinstance(algo, PPIConfig):
        expected = jax.eval_shape(lambda k: ppi.init_params(algo, k), jax.random.PRNGKey(0))
    else:
        module = a2c.make_agent(algo)
        expected = jax.eval_shape(lambda k: module.init(k, module.initial_hidden(1),
                                                        dummy_input(1)), jax.random.PRNGKey(0))
    params = take(_checked(params, expected, file, f"{kind} GRU learners",
                           (algo.num_learners,)), learner)
    name = f"ipd {kind.lower()} learner {learner} ({path})"
    if isinstance(algo, PPIConfig):
        return ppi_agent(algo, params, name)
    return gru_agent(a2c.make_agent(algo), params, name)


class PPIAgentState(NamedTuple):
    hidden: jax.Array  # (H,) the model's GRU state after the rounds seen
    round: jax.Array  # () int32, rounds decided so far (planning stops at the episode's end)
    plan_key: jax.Array  # the game's planning key (planning_noise = "episode"), else unused


def _ppi_init(spec, params, key):
    cfg, _ = spec
    return PPIAgentState(jnp.zeros((cfg.hidden_size,), jnp.float32), jnp.zeros((), jnp.int32),
                         key)


def _ppi_policy(spec, params, key, state: PPIAgentState, obs: AgentInput):
    """One decision of :func:`coplay.algos.ppi.rollout`'s improved policy, for one game."""
    cfg, beta = spec
    model = ppi.make_model(cfg)
    x = AgentInput(*(jnp.asarray(v, d)[None] for v, d in zip(
        obs, (jnp.int32, jnp.int32, jnp.float32, jnp.float32), strict=True)))
    hidden, feat = model.apply(params, state.hidden[None], x, method=PPIModel.step)
    prior = model.apply(params, feat, method=PPIModel.action_logits)  # (1, 2)
    plan_key = state.plan_key if cfg.planning_noise == "episode" else key
    q = ppi.plan_q(cfg, params, hidden, feat, x.opponent_id, state.round, plan_key)
    logits = ppi.improved_logits(prior, q, beta)[0]
    return logits, state._replace(hidden=hidden[0], round=state.round + 1)


def ppi_agent(cfg: PPIConfig, params, name: str = "ppi", beta: float | None = None) -> Agent:
    """A PPI learner (one model's parameters, no learner axis) acting as in its rollouts:
    π(a | x) ∝ p(a | x) exp(β Q̂(x, a)), Q̂ from ``num_rollouts`` rollouts of
    ``planning_horizon`` rounds inside its model (the policy key draws them; with
    ``planning_noise = "episode"`` the key given to ``reset`` does, for the whole game).
    ``beta`` overrides the config's (0: the model's prior alone). The rounds it counts are the
    game's: ``reset`` at the start of every ``num_rounds``-round game."""
    return Agent(params, _ppi_policy, name, "ipd", IPD_ACTIONS,
                 (cfg, cfg.beta if beta is None else float(beta)), _ppi_init)


# --- Overcooked ---------------------------------------------------------------------------------
def _ppo_config(path: Path, raw: dict) -> PPOConfig:
    try:
        return config_from_json(PPOConfig, raw["resolved"], f"{path}/config.json resolved")
    except (ConfigError, KeyError, TypeError) as e:
        raise RunError(f"{path}/config.json does not match this version of coplay: {e}") \
            from None


def _env(path: Path, layout) -> Overcooked:
    try:
        return Overcooked(layout)
    except (ValueError, OSError, TypeError) as e:
        raise RunError(f"{path}: the run's layout {layout!r} cannot be loaded: {e}") from None


def _policy_agent(path: Path, algo: PPOConfig, env: Overcooked, params, file: Path,
                  lead: tuple[int, ...], pick, name: str) -> Agent:
    """Check ``params`` (leading axes ``lead``) against the run's network, ``pick`` one
    policy's (no leading axis), and wrap it."""
    net = network_of(algo, env)
    h, w, c = env.obs_shape
    critic_c = 2 * c if algo.centralised_value else c
    expected = jax.eval_shape(lambda k: net.init(k, jnp.zeros((1, h, w, c)),
                                                 jnp.zeros((1, h, w, critic_c))),
                              jax.random.PRNGKey(0))
    what = f"the {algo.network} actor-critic of {env.layout.name}"
    params = _checked(params, expected, file, what, lead)
    return actor_critic_agent(net, pick(params), c, algo.centralised_value, name)


def self_play_agent(path: Path, raw: dict, choice: Choice) -> Agent:
    """One seat's policy of a self-play PPO pair (``choice.seat``, default 0)."""
    choice.none_but(path, "overcooked-ppo", ("member", "seat"))
    _index(choice.member, 1, "member", f"{path} holds one self-play pair")
    algo, env = _ppo_config(path, raw), _env(path, raw.get("layout"))
    seat = _index(choice.seat, 2, "seat", "the two seats of the self-play pair")
    g = 0 if algo.share_policy else seat  # a shared policy plays both seats
    file = path / RunDir.CHECKPOINT
    what = "the PPO train state of one self-play pair"
    params = _field(read_params(file, what), "params", file, what)
    lead = (1, 1 if algo.share_policy else 2)  # (member, policy)
    return _policy_agent(path, algo, env, params, file, lead,
                         lambda p: take(take(p, 0), g),
                         f"overcooked-ppo {env.layout.name} seat {seat} ({path})")


def population_agent(path: Path, raw: dict, choice: Choice) -> Agent:
    """A member of an HSP (``member``, ``seat``: biased policy or best response) or MEP
    stage-1 population, ``which`` = final or mid (its mid-skill snapshot)."""
    member, seat, which = choice
    if which not in ("final", "mid"):
        raise ValueError(f"which = {which!r}: final or mid")
    algo, env = _ppo_config(path, raw), _env(path, raw.get("layout"))
    man_file = path / "manifest.json"
    if not man_file.is_file():
        raise RunError(f"{path}: the population has not finished (no manifest.json); "
                       f"continue it with coplay populations train --out {path} --resume")
    man = read_json(man_file)
    try:
        num_members = int(man["num_members"])
        entry = man["members"]
    except (KeyError, TypeError, ValueError):
        raise RunError(f"{man_file}: expected num_members and members") from None
    member = _index(member, num_members, "member", f"{path} has {num_members} members",
                    default=0 if num_members == 1 else None)
    hsp = raw["experiment"] == "hsp-population"
    seat = _index(seat, 2, "seat", "0: the biased policy, 1: its best response" if hsp
                  else "MEP members play both seats with one policy",
                  default=None if hsp else 0)
    try:
        biased, br = member_policies(path, member, which)
    except KeyError as e:
        raise RunError(f"{man_file}: member {member} has no {e} entry "
                       f"(which = {which!r})") from None
    except Exception as e:  # a missing or corrupt parameter file
        if isinstance(e, RunError):
            raise
        file = entry[member].get("checkpoint", "?") if isinstance(entry, list) else "?"
        raise RunError(f"{path}: member {member}'s parameters ({file}) are corrupt: {e}") \
            from None
    params = (biased, br)[seat] if hsp else biased
    role = ("biased policy", "best response")[seat] if hsp else "MEP member"
    file = path / str(entry[member]["mid_skill"]["file"] if which == "mid"
                      else entry[member]["checkpoint"])
    return _policy_agent(path, algo, env, params, file, (),
                         lambda p: p, f"{raw['experiment']} {env.layout.name} member {member} "
                         f"{role} ({path})")


def adaptive_agent(path: Path, raw: dict, choice: Choice) -> Agent:
    """The learner of an HSP / MEP adaptive (stage-2) run, or learner ``member`` (the best
    response to partner ``member``) of a per-partner (``*-responses``) run."""
    kind = raw["experiment"]
    each = kind in RESPONSE_KINDS
    choice.none_but(path, kind, ("member",) if each else ())
    algo, env = _ppo_config(path, raw), _env(path, raw.get("layout"))
    file = path / ADAPTIVE_AGENT
    if not file.is_file():
        raise RunError(f"{path}: no {ADAPTIVE_AGENT} (the {kind} run has not finished; "
                       f"continue it with coplay populations train --out {path} --resume)")
    params = read_params(file, f"the {kind} learners' parameters")
    if not each:
        return _policy_agent(path, algo, env, params, file, (1,), lambda p: take(p, 0),
                             f"{kind} {env.layout.name} learner ({path})")
    k = len(raw.get("partner_members") or [])
    i = _index(choice.member, k, "member", f"{path} has a best response to each of {k} "
               "partners", default=0 if k == 1 else None)
    return _policy_agent(path, algo, env, params, file, (k, 1), lambda p: take(take(p, i), 0),
                         f"{kind} {env.layout.name} best response {i} ({path})")


# --- CooT, BC, DAgger -------------------------------------------------------------------------
def _model(path: Path, kind: str) -> dict:
    file = path / MODEL
    if not file.is_file():
        raise RunError(f"{path}: no {MODEL} (the {kind} run has not finished; resume it)")
    return jax.tree.map(jnp.asarray, read_params(file, f"the {kind} parameters"))


def _config(cls, raw: dict, key: str, path: Path):
    try:
        return config_from_json(cls, raw[key], f"{path / RunDir.CONFIG} {key}")
    except (ConfigError, KeyError, TypeError) as e:
        raise RunError(f"{path / RunDir.CONFIG} does not match this version of coplay: "
                       f"{e}") from None


def coot_run_agent(path: Path, raw: dict, choice: Choice) -> Agent:
    """The trained Coordination Transformer of a finished ``coplay coot train`` folder."""
    choice.none_but(path, "coot")
    cfg = _config(CootConfig, raw, "coot", path)
    params, spec = _model(path, "CooT"), cfg.context
    return coot_agent(make_gpt(cfg.gpt), params, spec.num_episodes, spec.episode_len,
                      spec.query_len, int(np.prod(raw["obs_shape"])),
                      f"coot-s{raw.get('seed', '?')}")


def bc_run_agent(path: Path, raw: dict, choice: Choice) -> Agent:
    """The BC baseline of a finished ``coplay coot bc`` folder."""
    choice.none_but(path, "coot-bc")
    cfg = _config(bc.BCConfig, raw, "bc", path)
    return bc.bc_agent(cfg, _model(path, "BC"), f"bc-top{cfg.top_fraction:g}")


def dagger_result(out: str | Path, raw: dict | None = None) -> Path:
    """The CooT run folder of a DAgger folder's last round (finished), or an error."""
    out = Path(out)
    raw = read_json(out / RunDir.CONFIG) if raw is None else raw
    if raw.get("experiment") != "coot-dagger":
        raise RunError(f"{out}: not a CooT DAgger folder")
    rounds = int(raw["dagger"]["rounds"])
    last = out / f"round-{rounds - 1}"
    if not (last / MODEL).is_file():
        raise RunError(f"{out}: round {rounds - 1} of {rounds} has not finished; rerun "
                       "`coplay coot dagger` with the same --out to continue")
    return last


def dagger_agent(path: Path, raw: dict, choice: Choice) -> Agent:
    """The CooT of a ``coplay coot dagger`` folder's last round."""
    choice.none_but(path, "coot-dagger")
    last = dagger_result(path, raw)
    return coot_run_agent(last, read_json(last / RunDir.CONFIG), choice)
