"""``load_agent(path)``: any trained run folder -> an :class:`~coplay.agents.base.Agent`.

The folder's ``config.json`` says what it holds (its ``experiment``):

==================  ===========================================  ==========================
experiment          what is loaded                               choose with
==================  ===========================================  ==========================
``ipd``             an A2C GRU learner, or a PPI learner acting  ``learner`` (default 0)
                    with its improved policy (planning inside
                    its model), from ``checkpoint.msgpack``
``overcooked-ppo``  a self-play PPO policy (``checkpoint``)      ``seat`` (default 0)
``hsp-population``  a member's biased policy (seat 0) or its     ``member``, ``seat``
                    best response (seat 1), ``manifest.json``
``mep-population``  a MEP stage-1 member (one policy, any seat)  ``member``
``mep-adaptive``    the MEP stage-2 learner (``agent.msgpack``)
``hsp-adaptive``    the HSP adaptive agent (``agent.msgpack``)
``zoo:<name>``      a model-zoo entry (actor weights, fp16), not
                    a folder: :mod:`coplay.experiments.zoo_export`
==================  ===========================================  ==========================

Parameters are read without a train-state template and checked against the shapes the run's
config gives its network: a folder that is not a run, an unfinished one, a corrupt file or
one from another config raise :class:`~coplay.runs.RunError` naming the file and what was
expected; an argument out of range (``learner``, ``member``, ``seat``) raises ``ValueError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from coplay import zoo
from coplay.agents.base import Agent, actor_critic_agent, gru_agent
from coplay.agents.gru import AgentInput, dummy_input
from coplay.agents.ppi_model import PPIModel
from coplay.algos import a2c, ppi
from coplay.algos.ppi_config import PPIConfig
from coplay.algos.ppo_config import PPOConfig
from coplay.config import ConfigError, config_from_json
from coplay.envs.matrix_games import NUM_ACTIONS as IPD_ACTIONS
from coplay.envs.overcooked import Overcooked
from coplay.experiments.ipd_runs import load_run_config
from coplay.experiments.populations import load_run as load_population_run
from coplay.experiments.zoo_agents import zoo_agent
from coplay.populations.members import member_policies, network_of, take
from coplay.runs import RunDir, RunError, read_json

ADAPTIVE_AGENT = "agent.msgpack"  # what coplay.experiments.adaptive.finish_adaptive writes
ADAPTIVE_KINDS = ("mep-adaptive", "hsp-adaptive")  # coplay.experiments.adaptive.KINDS
KNOWN = ("ipd", "overcooked-ppo", "hsp-population", "mep-population", *ADAPTIVE_KINDS)


def load_agent(path: str | Path, *, member: int | None = None, seat: int | None = None,
               learner: int = 0, which: str = "final") -> Agent:
    """The trained policy in the run folder ``path`` (see the module docstring).

    ``learner``: which IPD learner; ``member``: which population member (may be left out when
    there is one); ``seat``: which policy of an Overcooked pair (0 or 1; a population of
    hidden-utility pairs needs it: 0 the biased policy, 1 its best response); ``which``:
    ``final`` or ``mid`` (a population member's mid-skill snapshot). ``"zoo:<name>"``: the
    model-zoo entry ``name`` (:func:`coplay.experiments.zoo_agents.zoo_agent`; no options).
    """
    if zoo.is_ref(path):
        if member is not None or seat is not None or learner != 0 or which != "final":
            raise ValueError(f"{path}: a zoo entry holds one policy (no member, seat, "
                             "learner or which to choose)")
        return zoo_agent(zoo.ref_name(path))
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: no such run folder")
    if not (path / RunDir.CONFIG).is_file():
        raise RunError(f"{path} is not a run folder: no {RunDir.CONFIG} (load_agent reads "
                       f"the folders of {', '.join(KNOWN)} runs)")
    raw = read_json(path / RunDir.CONFIG)
    experiment = raw.get("experiment") if isinstance(raw, dict) else None
    if experiment not in KNOWN:
        raise RunError(f"{path / RunDir.CONFIG}: experiment {experiment!r} holds no agent "
                       f"load_agent knows (expected one of {', '.join(KNOWN)})")
    overcooked_args = member is not None or seat is not None or which != "final"
    if experiment == "ipd":
        if overcooked_args:
            raise ValueError("member, seat and which are for Overcooked folders; an IPD run "
                             "folder takes learner")
        return _ipd_agent(path, learner)
    if learner != 0:
        raise ValueError(f"learner = {learner}: for IPD run folders; {path} is a "
                         f"{experiment} folder (choose with member / seat)")
    if which not in ("final", "mid"):
        raise ValueError(f"which = {which!r}: final or mid")
    if which == "mid" and not experiment.endswith("-population"):
        raise ValueError("which = 'mid': mid-skill snapshots exist for population members only")
    if experiment == "overcooked-ppo":
        return _self_play_agent(path, raw, seat)
    if experiment in ADAPTIVE_KINDS:
        if member is not None or seat is not None:
            raise ValueError(f"{path} holds one agent (the {experiment} learner): no member or "
                             "seat to choose")
        return _adaptive_agent(path, raw)
    return _population_agent(path, raw, member, seat, which)


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


# --- IPD ----------------------------------------------------------------------------------------
def _ipd_agent(path: Path, learner: int) -> Agent:
    cfg, algo = load_run_config(path)
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


def _self_play_agent(path: Path, raw: dict, seat: int | None) -> Agent:
    algo, env = _ppo_config(path, raw), _env(path, raw.get("layout"))
    seat = _index(seat, 2, "seat", "the two seats of the self-play pair")
    g = 0 if algo.share_policy else seat  # a shared policy plays both seats
    file = path / RunDir.CHECKPOINT
    what = "the PPO train state of one self-play pair"
    params = _field(read_params(file, what), "params", file, what)
    lead = (1, 1 if algo.share_policy else 2)  # (member, policy)
    return _policy_agent(path, algo, env, params, file, lead,
                         lambda p: take(take(p, 0), g),
                         f"overcooked-ppo {env.layout.name} seat {seat} ({path})")


def _population_agent(path: Path, raw: dict, member: int | None, seat: int | None,
                      which: str) -> Agent:
    cfg, algo, _ = load_population_run(path)
    env = _env(path, cfg.layout)
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


def _adaptive_agent(path: Path, raw: dict) -> Agent:
    algo, env = _ppo_config(path, raw), _env(path, raw.get("layout"))
    file, kind = path / ADAPTIVE_AGENT, raw["experiment"]
    if not file.is_file():
        raise RunError(f"{path}: no {ADAPTIVE_AGENT} (the {kind} run has not finished; "
                       f"continue it with coplay populations train --out {path} --resume)")
    params = read_params(file, f"the {kind} learner's parameters")
    return _policy_agent(path, algo, env, params, file, (1,),
                         lambda p: take(p, 0),
                         f"{kind} {env.layout.name} learner ({path})")
