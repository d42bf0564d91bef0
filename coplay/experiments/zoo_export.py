"""Population members into the model zoo, and zoo entries back into agents.

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

:func:`zoo_agent` rebuilds an entry as an :class:`~coplay.agents.base.Agent`
(``load_agent("zoo:<name>")`` calls it).
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp

from coplay import zoo
from coplay.agents.actor_critic import ActorOnly, make_network
from coplay.agents.base import Agent, actor_critic_agent
from coplay.envs.overcooked import Overcooked
from coplay.experiments.populations import load_run as load_population_run
from coplay.populations.members import member_policies
from coplay.runs import RunDir, RunError, read_json

ACTOR_KEYS = ("actor", "policy")
CRITIC_KEYS = ("critic", "value")
KINDS = ("hsp-population", "mep-population")
POPULATION_ENTRY = "population"


def actor_params(params: dict) -> dict:
    """The actor half ``{"params": {"actor", "policy"}}`` of an ActorCritic's parameters."""
    inner = params.get("params") if isinstance(params, dict) else None
    if not isinstance(inner, dict) or not all(k in inner for k in ACTOR_KEYS):
        found = ", ".join(map(str, inner)) if isinstance(inner, dict) else type(params).__name__
        raise RunError(f"not an actor-critic parameter tree: expected params/actor and "
                       f"params/policy, found {found}")
    return {"params": {k: inner[k] for k in ACTOR_KEYS}}


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
            "training_return", "features")
    return {k: entry[k] for k in keep if k in entry}


def export_population(run_dir: str | Path, zoo_name_prefix: str, zoo_dir=None,
                      which: str = "final", dtype: str = "float16",
                      overwrite: bool = False, budget: int | None = None) -> list[str]:
    """Write every member's actor parameters (see the module docstring) and the
    ``<prefix>/population`` entry; returns the names written (the population entry last)."""
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
    names: list[str] = []
    member_index = []
    for m, entry in enumerate(man["members"]):
        try:
            pair = member_policies(run_dir, m, which)
        except KeyError as e:
            raise RunError(f"{run_dir}/manifest.json: member {m} has no {e} entry "
                           f"(which = {which!r})") from None
        written = {}
        for (role, seat), params in zip(roles, pair, strict=False):
            name = f"{prefix}/member{m:02d}" + (f"-{role}" if hsp else "")
            meta = {"layout": cfg.layout, "kind": raw["experiment"], "member": m,
                    "role": role, "seat": seat, "network": _network_meta(algo, env),
                    **_member_meta(entry), "source": {**source,
                                                      "checkpoint": entry.get("checkpoint")}}
            zoo.save_entry(name, actor_params(params), meta, zoo_dir, dtype, budget=budget,
                           overwrite=overwrite)
            names.append(name)
            written[role] = name
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
    name = f"{prefix}/{POPULATION_ENTRY}"
    zoo.save_json(name, doc, {"kind": raw["experiment"], "layout": cfg.layout,
                              "role": POPULATION_ENTRY, "source": str(run_dir)},
                  zoo_dir, budget=budget, overwrite=overwrite)
    return name


def zoo_agent(name: str, zoo_dir=None) -> Agent:
    """The Overcooked policy stored as zoo entry ``name``: its actor tower rebuilt from the
    entry's meta, acting exactly as the member's full network's actor (up to the float16
    rounding of the stored weights)."""
    params, meta = zoo.load_entry(name, zoo_dir)
    try:
        net_meta = meta["network"]
        net = make_network(net_meta["kind"], tuple(net_meta["hidden_sizes"]),
                           net_meta["activation"], tuple(net_meta["cnn_filters"]),
                           int(net_meta["num_actions"]))
        channels = int(net_meta["obs_shape"][-1])
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise zoo.ZooError(f"zoo entry {name!r}: its meta does not describe an actor-critic "
                           f"network ({type(e).__name__}: {e})") from None
    actor = ActorOnly(net.num_actions, net.conv_filters, net.hidden_sizes, net.activation,
                      net.kernel_size)
    try:
        params = actor_params(params)
    except RunError as e:
        raise zoo.ZooError(f"zoo entry {name!r}: {e}") from None
    params = {"params": {k: _as_jnp(v) for k, v in params["params"].items()}}
    role = meta.get("role", "policy")
    label = f"zoo:{name} ({meta.get('layout', '?')} {meta.get('kind', '?')} member " \
            f"{meta.get('member', '?')} {role})"
    return actor_critic_agent(actor, params, channels, False, label)


def _as_jnp(tree):
    if isinstance(tree, dict):
        return {k: _as_jnp(v) for k, v in tree.items()}
    return jnp.asarray(tree, jnp.float32)
