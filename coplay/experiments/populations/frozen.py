"""The frozen partners of a stage-2 run (:mod:`.adaptive`): a finished MEP stage-1 or HSP
population, from its run folder or from the zoo, the members chosen as partners, and their
actor parameters stacked on a leading partner axis."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp

from coplay import zoo
from coplay.algos.ppo_config import PPOConfig
from coplay.config import ConfigError
from coplay.experiments.overcooked.presets import PPO_DEFAULT
from coplay.experiments.populations.train import load_run
from coplay.experiments.zoo_agents import actor_params
from coplay.populations.members import member_policies
from coplay.runs import RunDir, RunError, read_json


class PartnerChoice(Protocol):
    """What names the partners (an :class:`~.adaptive.AdaptiveConfig`)."""

    population: str
    partners: tuple[int, ...] | None
    pool: str


class Population(NamedTuple):
    """The frozen partners of a stage-2 run, from a population run folder or a zoo prefix."""

    source: str  # the folder or ``zoo:<prefix>``, as given
    kind: str  # mep | hsp
    layout: str
    algo: PPOConfig  # the partners' network (a zoo population: its network fields only)
    members: list[int]  # members used as partners (their policy in seat 0)
    checkpoints: list[str]  # per partner: its parameter file, or its zoo entry zoo:<name>
    returns: list[float]  # per partner: its pair's (HSP) / self-play (MEP) return on record


POPULATION_NAMES = {"mep": "MEP stage-1 population", "hsp": "HSP population"}


class _Source(NamedTuple):
    kind: str
    layout: str
    algo: PPOConfig
    selection: dict | None  # selection.json of an HSP population (None: not chosen yet)
    checkpoints: list[str]  # per member
    returns: list[float]  # per member


def _wrong_kind(where: str, what: str, kind: str | None, want: str) -> ConfigError | None:
    """The error for a population of experiment ``what`` when ``kind`` (mep/hsp/None) is
    wanted, or None when it fits."""
    if what in [f"{k}-population" for k in POPULATION_NAMES] and \
            kind in (None, what.removesuffix("-population")):
        return None
    other = what.removesuffix("-population")
    hint = (f"train its adaptive agent with --kind {other}-adaptive"
            if other in POPULATION_NAMES else
            f"train one with coplay populations train --kind {kind or 'mep'}")
    return ConfigError(f"{where}: a {what} folder, not a {want} ({hint})")


def _folder_source(path: Path, where: str, kind: str | None, want: str) -> _Source:
    if not path.is_dir():
        raise ConfigError(f"{where}: no such folder")
    try:
        raw = read_json(path / RunDir.CONFIG)
    except RunError:
        raise ConfigError(f"{where}: not a population folder (no readable config.json)") from None
    err = _wrong_kind(where, raw.get("experiment", "unknown run"), kind, want)
    if err is not None:
        raise err
    pop_cfg, pop_algo, _ = load_run(path)
    if not (path / "manifest.json").is_file():
        raise ConfigError(f"{where}: the population has not finished (no manifest.json); continue "
                          f"it with coplay populations train --out {path} --resume")
    man = read_json(path / "manifest.json")
    sel = path / "selection.json"
    return _Source(pop_cfg.kind, pop_cfg.layout, pop_algo,
                   read_json(sel) if sel.is_file() else None,
                   [str(path / m["checkpoint"]) for m in man["members"]],
                   [m["return"] for m in man["members"]])


def _zoo_source(name: str, where: str, kind: str | None, want: str) -> _Source:
    """A population the zoo holds (``coplay zoo export`` of a population folder): its
    ``<prefix>/population`` entry and the members' actor weights."""
    prefix = name.rstrip("/")
    try:
        doc, _ = zoo.load_population_entry(prefix)
    except RunError as e:
        raise ConfigError(f"{where}: not a zoo population ({e})") from None
    err = _wrong_kind(where, str(doc.get("kind")), kind, want)
    if err is not None:
        raise err
    role = "biased" if doc["kind"] == "hsp-population" else "member"
    entries = [m["entries"][role] for m in doc["members"]]
    net = zoo.read_manifest()["entries"][entries[0]]["meta"]["source"]
    algo = dataclasses.replace(  # the members' network (the rest: this CPU's PPO default)
        PPO_DEFAULT, network=net["network"], hidden_sizes=tuple(net["hidden_sizes"]),
        cnn_filters=tuple(net["cnn_filters"]), activation=net["activation"],
        centralised_value=bool(net["centralised_value"]))
    return _Source(doc["kind"].removesuffix("-population"), doc["layout"], algo,
                   doc.get("selection"), [zoo.ref_of(e) for e in entries],
                   [m["return"] for m in doc["members"]])


def load_population(cfg: PartnerChoice, kind: str | None = None) -> Population:
    """The finished population of ``cfg`` — a run folder or ``zoo:<prefix>`` (ConfigError
    naming what is wrong); ``kind`` (mep or hsp): refuse the other kind."""
    where = f"population = {cfg.population!r}"
    want = POPULATION_NAMES.get(kind, "MEP stage-1 or HSP population")
    if not cfg.population:
        raise ConfigError(f"population: give a finished {want} folder or zoo:<prefix> (--pop)")
    src = (_zoo_source(zoo.ref_name(cfg.population), where, kind, want)
           if zoo.is_ref(cfg.population)
           else _folder_source(Path(cfg.population), where, kind, want))
    k = len(src.checkpoints)
    if cfg.pool != "train" and (src.kind == "mep" or cfg.partners is not None):
        raise ConfigError(f"pool = {cfg.pool!r}: for HSP populations without partners (a MEP "
                          "population has no selection; partners names the members itself)")
    members = (list(range(k)) if src.kind == "mep" else selected_members(cfg, src.selection))\
        if cfg.partners is None else [int(i) for i in cfg.partners]
    if src.kind == "hsp" and src.selection is not None:
        held_out = set(members) & set(src.selection["eval"])
        if held_out:
            raise ConfigError(f"partners = {cfg.partners!r}: members {sorted(held_out)} are "
                              "evaluation partners (selection.json eval); they never train")
    if not members or len(set(members)) != len(members) or not all(0 <= i < k for i in members):
        raise ConfigError(f"partners = {cfg.partners!r}: distinct members in [0, {k}) needed")
    for i in members:
        if not zoo.is_ref(src.checkpoints[i]) and not Path(src.checkpoints[i]).is_file():
            raise ConfigError(f"{where}: member {i}'s parameters ({src.checkpoints[i]}) are "
                              "missing")
    return Population(cfg.population, src.kind, src.layout, src.algo, members,
                      [src.checkpoints[i] for i in members], [src.returns[i] for i in members])


def selected_members(cfg: PartnerChoice, selection: dict | None) -> list[int]:
    """An HSP population's partners from its selection (``selection.json``; ``cfg.pool``)."""
    if cfg.pool not in ("train", "all-eligible"):
        raise ConfigError(f"pool = {cfg.pool!r}: train or all-eligible")
    if selection is None:
        raise ConfigError(f"population = {cfg.population!r}: no selection.json; choose the "
                          f"training pool first with coplay populations select --pop "
                          f"{cfg.population} (or name the members: partners=0,3,5)")
    key = "train" if cfg.pool == "train" else "train_eligible"
    members = [int(i) for i in selection[key]]
    if not members:
        raise ConfigError(f"{cfg.population}: selection {key} is empty (no pair's return is "
                          "above the selection's train_min_return)")
    return members


def partner_params(pop: Population):
    """(K, ...) actor parameters of the partners: each member's policy in seat 0 — an HSP
    member's biased policy (:data:`~coplay.populations.hsp.BIASED`), a MEP member's only
    policy (it plays both seats); from the zoo, its stored (float16-rounded) actor."""
    if zoo.is_ref(pop.source):
        ps = [zoo.load_entry(zoo.ref_name(c))[0] for c in pop.checkpoints]
    else:
        ps = [actor_params(member_policies(pop.source, i)[0]) for i in pop.members]
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *ps)
