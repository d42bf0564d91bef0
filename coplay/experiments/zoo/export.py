"""Population members and finished runs into the model zoo (entries back into agents:
:mod:`coplay.experiments.zoo_agents`).

:func:`export_population` writes, for every member of a finished population folder, the
*actor* half of its parameters (``actor`` torso + ``policy`` head; the critic tower ``critic``
/ ``value`` is dropped: it is not needed to act) in float16 to the zoo:

- ``hsp-population``: ``<prefix>/memberNN-biased`` (seat 0, the biased policy) and
  ``<prefix>/memberNN-br`` (seat 1, its best response),
- ``mep-population``: ``<prefix>/memberNN`` (MEP stage-1 agent, any seat),

each with meta enough to rebuild the network (layout, network kind, sizes, activation, number
of actions, observation shape) and the member's hidden utility, candidate index and return;
then :func:`export_selection` writes the JSON entry ``<prefix>/population``: the members'
entry names and summaries, the population summary and the run's ``selection.json`` (null
when the run has none).

:func:`export_run` writes one entry ``<name>`` for a finished run folder of the CooT stack:

- ``coot``: the Coordination Transformer's GPT parameters (``model.msgpack``); meta (agent
  ``coot``): the GPT config, the context spec, obs shape, layout, seed, preset, the run's
  ``config.json`` and a training summary (dataset, best epoch, validation loss),
- ``coot-bc``: the BC baseline's parameters; meta (agent ``bc``): the BC config, obs shape,
  layout, seed, the best epoch of ``history.json``,
- ``mep-adaptive`` / ``hsp-adaptive``: the learner's actor (``agent.msgpack`` less the critic);
  meta (agent ``actor-critic``) as a population member's: network, layout, kind,
- ``overcooked-ppo`` (self-play PPO, the CooT evaluation's self-play baseline): the seat-0
  policy's actor (the shared policy where the run shares one), meta as the adaptive learner's.

:func:`export_ipd_run` writes the learners of a finished A2C IPD run (``coplay ipd train``) as
``<prefix>/learnerNN``: the GRU's parameters; meta (agent ``ipd-gru``): the run's resolved
A2C config, seed, preset and the learner's index. (PPI learners are not exported yet.)

:func:`zoo_agent` rebuilds an entry as an :class:`~coplay.agents.base.Agent`, dispatching on
meta's ``agent`` (``actor-critic`` when absent, ``coot``, ``bc``;
``coplay.experiments.refs.resolve("zoo:<name>")`` calls it).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
from flax import serialization

from coplay import zoo
from coplay.algos.a2c import A2CConfig
from coplay.algos.ppo_config import PPOConfig
from coplay.config import ConfigError, config_from_json
from coplay.envs.overcooked import Overcooked
from coplay.experiments.coot.train import BCRunConfig, load_coot_config
from coplay.experiments.populations.train import load_run as load_population_run
from coplay.experiments.refs import AgentRef, resolve
from coplay.experiments.run_agents import load_ipd_config
from coplay.experiments.zoo_agents import actor_params
from coplay.populations.members import member_policies
from coplay.runs import RunDir, RunError, read_json

CRITIC_KEYS = ("critic", "value")
KINDS = ("hsp-population", "mep-population")
RESPONSE_KINDS = ("mep-responses", "hsp-responses")  # populations.adaptive.RESPONSE_KINDS
RUN_KINDS = ("coot", "coot-bc", "mep-adaptive", "hsp-adaptive", "overcooked-ppo", "ipd",
             *RESPONSE_KINDS)
RESPONSES_ENTRY = "responses"
RUN_MODEL = "model.msgpack"  # coplay.experiments.coot.train.MODEL
ADAPTIVE_AGENT = "agent.msgpack"  # coplay.experiments.populations.adaptive.AGENT_FILE


def _population(run_dir: Path):
    if not (run_dir / RunDir.CONFIG).is_file():
        raise RunError(f"{run_dir} is not a run folder: no {RunDir.CONFIG}")
    raw = read_json(run_dir / RunDir.CONFIG)
    experiment = raw.get("experiment") if isinstance(raw, dict) else None
    if experiment not in KINDS:
        raise RunError(f"{run_dir / RunDir.CONFIG}: experiment {experiment!r}; the zoo "
                       f"exports {' and '.join(KINDS)} folders")
    cfg, algo, raw = load_population_run(run_dir)
    man_file = run_dir / "manifest.json"
    if not man_file.is_file():
        raise RunError(f"{run_dir}: the population has not finished (no manifest.json)")
    man = read_json(man_file)
    if not isinstance(man, dict) or not isinstance(man.get("members"), list):
        raise RunError(f"{man_file}: expected members")
    return cfg, algo, raw, man


def _network_meta(algo, env: Overcooked) -> dict:
    return {"kind": algo.network, "hidden_sizes": list(algo.hidden_sizes),
            "activation": algo.activation, "cnn_filters": list(algo.cnn_filters),
            "num_actions": int(env.num_actions), "obs_shape": list(env.obs_shape)}


def _member_meta(entry: dict) -> dict:
    keep = ("candidate", "weights", "event_weights", "sparse_weight", "return", "return_std",
            "training_return", "features", "features_by_order")
    return {k: entry[k] for k in keep if k in entry}


def export_population(run_dir: str | Path, zoo_name_prefix: str, zoo_dir=None,
                      which: str = "final", dtype: str = "float16",
                      overwrite: bool = False, budget: int | None = None,
                      mid_members: tuple[int, ...] = ()) -> list[str]:
    """Write every member's actor parameters (see the module docstring) and the
    ``<prefix>/population`` entry; returns the names written (the population entry last).
    ``mid_members`` (HSP, which = final): these members also at their mid-skill snapshot,
    ``<prefix>/memberNN-biased-mid`` / ``-br-mid`` (the CooT dataset's mid-skill episodes)."""
    run_dir = Path(run_dir)
    prefix = zoo.check_name(zoo_name_prefix.rstrip("/"))
    cfg, algo, raw, man = _population(run_dir)
    env = Overcooked(cfg.layout)
    hsp = raw["experiment"] == "hsp-population"
    roles = (("biased", 0), ("br", 1)) if hsp else (("member", None),)
    source = {"run": str(run_dir), "experiment": raw["experiment"], "layout": cfg.layout,
              "preset": cfg.preset, "seed": cfg.seed, "which": which,
              "centralised_value": bool(algo.centralised_value), "network": algo.network,
              "hidden_sizes": list(algo.hidden_sizes), "cnn_filters": list(algo.cnn_filters),
              "activation": algo.activation}
    if mid_members and (not hsp or which != "final"):
        raise RunError("mid_members: for an HSP population exported at which = final")
    bad = sorted(set(mid_members) - set(range(len(man["members"]))))
    if bad:
        raise RunError(f"mid_members {bad}: {run_dir} has {len(man['members'])} members")
    names: list[str] = []
    member_index = []
    for m, entry in enumerate(man["members"]):
        written = {}
        for snap in (which, "mid") if m in mid_members else (which,):
            try:
                pair = member_policies(run_dir, m, snap)
            except KeyError as e:
                raise RunError(f"{run_dir}/manifest.json: member {m} has no {e} entry "
                               f"(which = {snap!r})") from None
            tail = "-mid" if snap == "mid" and which == "final" else ""
            for (role, seat), params in zip(roles, pair, strict=False):
                name = f"{prefix}/member{m:02d}" + (f"-{role}" if hsp else "") + tail
                meta = {"layout": cfg.layout, "kind": raw["experiment"], "member": m,
                        "role": role + tail, "seat": seat, "network": _network_meta(algo, env),
                        **_member_meta(entry),
                        "source": {**source, "which": snap,
                                   "checkpoint": entry.get("checkpoint") if snap == "final"
                                   else entry.get("mid_skill", {}).get("file")}}
                zoo.save_entry(name, actor_params(params), meta, zoo_dir, dtype, budget=budget,
                               overwrite=overwrite)
                names.append(name)
                written[role + tail.replace("-", "_")] = name
        member_index.append({"member": m, "entries": written, **_member_meta(entry)})
    names.append(export_selection(run_dir, prefix, zoo_dir, members=member_index,
                                  overwrite=overwrite, budget=budget))
    return names


def export_selection(run_dir: str | Path, zoo_name_prefix: str, zoo_dir=None,
                     members: list[dict] | None = None, overwrite: bool = False,
                     budget: int | None = None) -> str:
    """The JSON entry ``<prefix>/population``: the run's ``selection.json`` (null when it has
    none), the population summary and ``members`` (each member's entry names; default: the
    names :func:`export_population` gives them). Returns the entry's name."""
    run_dir = Path(run_dir)
    prefix = zoo.check_name(zoo_name_prefix.rstrip("/"))
    cfg, _, raw, man = _population(run_dir)
    if members is None:
        hsp = raw["experiment"] == "hsp-population"
        members = [{"member": m, "entries": (
            {"biased": f"{prefix}/member{m:02d}-biased", "br": f"{prefix}/member{m:02d}-br"}
            if hsp else {"member": f"{prefix}/member{m:02d}"}), **_member_meta(e)}
            for m, e in enumerate(man["members"])]
    sel_file = run_dir / "selection.json"
    doc = {"kind": raw["experiment"], "layout": cfg.layout,
           "num_members": len(man["members"]), "seats": man.get("seats"),
           "event_names": man.get("event_names"), "summary": man.get("summary"),
           "selection": read_json(sel_file) if sel_file.is_file() else None,
           "members": members}
    name = f"{prefix}/{zoo.POPULATION_ENTRY}"
    zoo.save_json(name, doc, {"kind": raw["experiment"], "layout": cfg.layout,
                              "role": zoo.POPULATION_ENTRY, "source": str(run_dir)},
                  zoo_dir, budget=budget, overwrite=overwrite)
    return name


# --- single run folders of the CooT stack ---------------------------------------------------
def _run_kind(run_dir: Path) -> dict:
    config = run_dir / RunDir.CONFIG
    if not config.is_file():
        raise RunError(f"{run_dir} is not a run folder: no {RunDir.CONFIG}")
    raw = read_json(config)
    kind = raw.get("experiment") if isinstance(raw, dict) else None
    if kind not in RUN_KINDS:
        hint = ("; export a population with export_population (coplay zoo export --pop)"
                if kind in KINDS else "")
        raise RunError(f"{config}: experiment {kind!r}; coplay zoo export --run takes "
                       f"{', '.join(RUN_KINDS)} folders{hint}")
    return raw


def run_kind(run_dir: str | Path) -> str:
    """The experiment of the run folder ``run_dir`` (one of RUN_KINDS), else RunError."""
    return _run_kind(Path(run_dir))["experiment"]


def _need_file(run_dir: Path, file: str, kind: str) -> Path:
    path = run_dir / file
    if not path.is_file():
        raise RunError(f"{run_dir}: the {kind} run has not finished: {path} is missing "
                       "(resume the run, then export it)")
    return path


def _read_tree(path: Path) -> dict:
    try:
        tree = serialization.msgpack_restore(path.read_bytes())
    except Exception as e:  # msgpack raises many kinds on corrupt input
        raise RunError(f"{path} is corrupt: it cannot be read as flax msgpack ({e})") from None
    if not isinstance(tree, dict):
        raise RunError(f"{path} is not a flax msgpack parameter tree")
    return tree


def _coot_summary(run_dir: Path) -> dict:
    rows = []
    metrics = run_dir / RunDir.METRICS
    if metrics.is_file():
        rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
    out: dict = {"epochs": len(rows)}
    if rows:
        best = min(rows, key=lambda r: r.get("val_loss", float("inf")))
        out.update(best_epoch=best.get("epoch"), val_loss=best.get("val_loss"),
                   val_accuracy=best.get("val_accuracy"), train_loss=best.get("train_loss"),
                   time_s=rows[-1].get("time_s"))
    return out


def _coot_entry(run_dir: Path, raw: dict) -> tuple[dict, dict]:

    cfg, raw = load_coot_config(run_dir)
    params = _read_tree(_need_file(run_dir, RUN_MODEL, "coot"))
    _need_file(run_dir, "report.md", "coot")
    meta = {"agent": "coot", "kind": "coot", "role": "coot", "layout": raw.get("layout"),
            "obs_shape": list(raw["obs_shape"]), "seed": cfg.seed, "preset": cfg.preset,
            "gpt": dataclasses.asdict(cfg.coot.gpt),
            "context": dataclasses.asdict(cfg.coot.context),
            "source": {"run": str(run_dir), "experiment": "coot", "dataset": cfg.dataset,
                       "val_pairs": cfg.val_pairs, **_coot_summary(run_dir)},
            "config": raw}
    return params, meta


def _bc_entry(run_dir: Path, raw: dict) -> tuple[dict, dict]:

    fields = {f.name for f in dataclasses.fields(BCRunConfig)}
    cfg = config_from_json(BCRunConfig, {k: v for k, v in raw.items() if k in fields},
                           str(run_dir / RunDir.CONFIG))
    params = _read_tree(_need_file(run_dir, RUN_MODEL, "coot-bc"))
    _need_file(run_dir, "report.md", "coot-bc")
    hist_file = run_dir / "history.json"
    history = read_json(hist_file) if hist_file.is_file() else []
    summary: dict = {"epochs": len(history)}
    scored = [h for h in history if isinstance(h, dict) and h.get("val_loss") is not None]
    if scored:
        best = min(scored, key=lambda h: h["val_loss"])
        summary.update(best_epoch=best.get("epoch"), val_loss=best.get("val_loss"),
                       val_accuracy=best.get("val_accuracy"))
    meta = {"agent": "bc", "kind": "coot-bc", "role": "bc", "layout": raw.get("layout"),
            "obs_shape": list(raw["obs_shape"]), "seed": cfg.seed, "preset": cfg.preset,
            "bc": dataclasses.asdict(cfg.bc),
            "source": {"run": str(run_dir), "experiment": "coot-bc", "dataset": cfg.dataset,
                       "val_pairs": cfg.val_pairs, **summary},
            "config": raw}
    return params, meta


def _actor_critic_entry(run_dir: Path, raw: dict, member: int | None = None
                        ) -> tuple[dict, dict]:
    """An adaptive learner (``agent.msgpack``; ``member``: learner k of a best-response run)
    or a self-play pair's seat-0 policy (``checkpoint.msgpack`` of a finished run: its
    ``report.md`` written)."""
    kind = raw["experiment"]
    if kind == "overcooked-ppo":
        _need_file(run_dir, "report.md", kind)
        role, source = "self-play seat 0", {}
    else:
        _need_file(run_dir, ADAPTIVE_AGENT, kind)
        role = "learner"
        source = {k: raw.get(k) for k in ("population", "partner_members", "sampling_alpha")}
    agent = resolve(AgentRef(str(run_dir), member))  # checks them against the run's network
    try:
        algo = config_from_json(PPOConfig, raw["resolved"], f"{run_dir}/config.json resolved")
    except (ConfigError, KeyError, TypeError) as e:
        raise RunError(f"{run_dir}/config.json does not match this version of coplay: {e}") \
            from None
    env = Overcooked(raw["layout"])
    summary = {}
    ev = run_dir / "eval.json"
    if ev.is_file():
        doc = read_json(ev)
        if isinstance(doc, dict):
            summary = {k: doc[k] for k in ("mean_return", "return", "summary") if k in doc}
    meta = {"agent": "actor-critic", "kind": kind, "role": role, "layout": raw["layout"],
            "seat": None, "network": _network_meta(algo, env), "seed": raw.get("seed"),
            "preset": raw.get("preset"),
            "source": {"run": str(run_dir), "experiment": kind, **source,
                       "centralised_value": bool(algo.centralised_value), **summary}}
    return actor_params(jax.tree.map(np.asarray, agent.params)), meta


def export_ipd_run(run_dir: str | Path, prefix: str, zoo_dir=None, dtype: str = "float16",
                   overwrite: bool = False, budget: int | None = None) -> list[str]:
    """Write every learner of the finished A2C IPD run ``run_dir`` as zoo entry
    ``<prefix>/learnerNN``; returns the names. RunError for a PPI run or an unfinished one."""
    run_dir = Path(run_dir)
    raw, algo = load_ipd_config(run_dir)
    if not isinstance(algo, A2CConfig):
        raise RunError(f"{run_dir}: a PPI run; the zoo stores A2C IPD learners only so far")
    _need_file(run_dir, "report.md", "ipd")
    names = [f"{prefix}/learner{i:02d}" for i in range(algo.num_learners)]
    for name in names:
        zoo.check_name(name)
    for i, name in enumerate(names):
        # resolving checks the parameters against the config
        agent = resolve(AgentRef(str(run_dir), member=i))
        meta = {"agent": "ipd-gru", "kind": "ipd-a2c", "role": f"learner {i}", "learner": i,
                "seed": raw.get("seed"), "preset": raw.get("preset"),
                "a2c": dataclasses.asdict(algo),
                "source": {"run": str(run_dir), "experiment": "ipd"}}
        zoo.save_entry(name, jax.tree.map(np.asarray, agent.params), meta, zoo_dir, dtype,
                       budget=budget, overwrite=overwrite)
    return names


def export_responses(run_dir: str | Path, prefix: str, zoo_dir=None, dtype: str = "float16",
                     overwrite: bool = False, budget: int | None = None) -> list[str]:
    """Write the best responses of a finished ``*-responses`` run as ``<prefix>/responseNN``
    (learner k: the best response to partner k) and the JSON index ``<prefix>/responses``
    (the population, its partner members, each one's entry and evaluated return); returns
    the names (the index last)."""
    run_dir = Path(run_dir)
    raw = _run_kind(run_dir)
    if raw["experiment"] not in RESPONSE_KINDS:
        raise RunError(f"{run_dir}: a {raw['experiment']} run, not a best-response run")
    ev = read_json(_need_file(run_dir, "eval.json", raw["experiment"]))
    members = [int(m) for m in raw["partner_members"]]
    names = [zoo.check_name(f"{prefix}/response{k:02d}") for k in range(len(members))]
    pairs = []
    for k, (m, name) in enumerate(zip(members, names, strict=True)):
        params, meta = _actor_critic_entry(run_dir, raw, member=k)
        meta.update(role=f"best response to member {m}", partner_member=m,
                    **{"return": ev["partners"][k]["return"]})
        zoo.save_entry(name, params, meta, zoo_dir, dtype, budget=budget, overwrite=overwrite)
        pairs.append({"partner": k, "member": m, "entry": name,
                      "return": ev["partners"][k]["return"]})
    index = f"{prefix}/{RESPONSES_ENTRY}"
    zoo.save_json(index, {"kind": raw["experiment"], "layout": raw["layout"],
                          "population": raw["population"], "partner_members": members,
                          "responses": pairs, "summary": ev.get("summary")},
                  {"kind": raw["experiment"], "layout": raw["layout"], "role": RESPONSES_ENTRY,
                   "source": str(run_dir)}, zoo_dir, budget=budget, overwrite=overwrite)
    return [*names, index]


def export_run(run_dir: str | Path, name: str, zoo_dir=None, dtype: str = "float16",
               overwrite: bool = False, budget: int | None = None) -> str:
    """Write the trained agent of the finished run folder ``run_dir`` (``coot``, ``coot-bc``,
    ``mep-adaptive``, ``hsp-adaptive`` or ``overcooked-ppo``; see the module docstring) as zoo
    entry ``name``; returns the name. RunError for another kind of folder or an unfinished run
    (naming the missing file)."""
    run_dir = Path(run_dir)
    zoo.check_name(name)
    raw = _run_kind(run_dir)
    kind = raw["experiment"]
    if kind == "ipd" or kind in RESPONSE_KINDS:
        raise RunError(f"{run_dir} is a {kind} run: its agents are exported by "
                       f"{'export_ipd_run' if kind == 'ipd' else 'export_responses'} (several "
                       "entries)")
    make = {"coot": _coot_entry, "coot-bc": _bc_entry}.get(kind, _actor_critic_entry)
    params, meta = make(run_dir, raw)
    zoo.save_entry(name, params, meta, zoo_dir, dtype, budget=budget, overwrite=overwrite)
    return name
