"""The Coordination Transformer's partners and dataset: pools of (partner, best response)
pairs, rollouts of every training pair in both seats as shards, and their loading.

A pair's policies are named by :class:`~coplay.experiments.refs.AgentRef` — a population run
folder with member and seat, or a zoo entry (``zoo:<name>``) — so a dataset or an
evaluation can be rebuilt from the zoo on a fresh clone. Pools (spec §2):

- training pool: the HSP pairs of one population that ``coplay populations select`` put in
  its ``train`` set (greedy max-L1, sparse return <= 0.1 dropped), plus every MEP stage-1
  member with itself as partner (a self-play agent is its own best response);
- evaluation partners: the ``eval`` set (k-DPP) of a *separate* HSP population, each with its
  own best response for the BR-Prox denominator.

The dataset folder (:func:`collect`): one shard per training pair (``pairNNN.npz``: the best
response's observations (2n, T, H, W, C) uint8, its actions, the partner's actions, the team's
sparse rewards, returns, the cook it steered; n episodes per seat) and ``manifest.json``
(config, the pairs with their refs and checkpoints, each shard's name once written). Shards
are written atomically one pair at a time, so a killed collection resumes with the next pair.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from coplay import zoo
from coplay.agents.base import Agent, with_action_noise
from coplay.config import checker, need_positive_ints
from coplay.data.context import Episodes
from coplay.data.shards import ShardStore
from coplay.envs.overcooked import Overcooked
from coplay.eval.in_context import play_episodes
from coplay.experiments.refs import AgentRef, check_obs
from coplay.runs import RunError, progress_bar, read_json, to_jsonable, write_json

MANIFEST = "manifest.json"


class Pair(NamedTuple):
    """A partner and its best response (``mid``: the same pair at mid skill, whose episodes
    join the pair's own, :attr:`CollectConfig.mid_episodes_per_seat`)."""

    name: str
    partner: AgentRef
    br: AgentRef
    info: dict  # kind, source, member, checkpoint, pair return on record
    mid: tuple[AgentRef, AgentRef] | None = None


def pair_from_json(d: dict) -> Pair:
    mid = d.get("mid")
    return Pair(d["name"], AgentRef.from_json(d["partner"]), AgentRef.from_json(d["br"]),
                dict(d["info"]),
                None if mid is None else tuple(AgentRef.from_json(x) for x in mid))


# --- pools ------------------------------------------------------------------------------------
def _population(source: str) -> tuple[dict, str]:
    """(summary, layout) of a population run folder or zoo prefix: ``selection`` (or None),
    ``kind`` (hsp-population / mep-population) and the member entries."""
    if zoo.is_ref(source):
        doc, _ = zoo.load_population_entry(zoo.ref_name(source))
        return doc, doc["layout"]
    path = Path(source)
    raw = read_json(path / "config.json")
    man = read_json(path / "manifest.json")
    sel = path / "selection.json"
    doc = {"kind": raw.get("experiment"), "selection": read_json(sel) if sel.is_file() else None,
           "members": [{"member": i, **m} for i, m in enumerate(man["members"])]}
    return doc, raw["layout"]


def hsp_pairs(source: str, subset: str, layout: str, which: str = "final",
              with_mid: bool = False) -> list[Pair]:
    """The pairs of HSP population ``source`` in its selection's ``subset`` (train / eval);
    ``with_mid``: each also at its mid-skill snapshot (run folders only)."""
    doc, pop_layout = _population(source)
    if doc["kind"] != "hsp-population":
        raise RunError(f"{source}: a {doc['kind']} population, expected an HSP population")
    if pop_layout != layout:
        raise RunError(f"{source} was trained on layout {pop_layout!r}, not {layout!r}")
    if doc.get("selection") is None:
        raise RunError(f"{source} has no selection: run `coplay populations select --pop "
                       f"{source}` first")
    members = doc["selection"][subset]
    if which != "final" and zoo.is_ref(source):
        raise RunError(f"{source}: the zoo holds final policies (and mid-skill ones beside "
                       f"them, with_mid), not which = {which!r}")
    pairs = []
    for m in members:
        entry = doc["members"][m]
        info = {"kind": "hsp", "source": source, "member": int(m), "checkpoint": which,
                "return": entry.get("return")}
        mid = None
        if zoo.is_ref(source):
            e = entry["entries"]
            partner, br = AgentRef(zoo.ref_of(e["biased"])), AgentRef(zoo.ref_of(e["br"]))
            if with_mid:
                if "biased_mid" not in e:
                    raise RunError(f"{source}: member {m} was exported without its mid-skill "
                                   "snapshot (coplay zoo export --pop FOLDER --mid train)")
                mid = (AgentRef(zoo.ref_of(e["biased_mid"])), AgentRef(zoo.ref_of(e["br_mid"])))
        else:
            partner, br = (AgentRef(source, int(m), 0, which), AgentRef(source, int(m), 1, which))
            if with_mid:
                mid = (AgentRef(source, int(m), 0, "mid"), AgentRef(source, int(m), 1, "mid"))
        pairs.append(Pair(f"hsp{int(m):02d}-{which}", partner, br, info, mid))
    return pairs


def mep_pairs(source: str, layout: str, responses: str | None = None) -> list[Pair]:
    """Every MEP stage-1 member of ``source`` with itself as partner and best response, or
    (``responses``: a ``--kind mep-responses`` run over ``source``) each member that run
    holds a best response to, with that best response."""
    if responses is not None:
        return _mep_response_pairs(source, layout, responses)
    doc, pop_layout = _population(source)
    if doc["kind"] != "mep-population":
        raise RunError(f"{source}: a {doc['kind']} population, expected a MEP population")
    if pop_layout != layout:
        raise RunError(f"{source} was trained on layout {pop_layout!r}, not {layout!r}")
    pairs = []
    for i, entry in enumerate(doc["members"]):
        ref = (AgentRef(zoo.ref_of(entry["entries"]["member"])) if zoo.is_ref(source)
               else AgentRef(source, i))
        pairs.append(Pair(f"mep{i:02d}", ref, ref, {"kind": "mep", "source": source,
                                                     "member": i, "checkpoint": "final",
                                                     "return": entry.get("return")}))
    return pairs


def _responses(responses: str) -> dict:
    """The index of a ``*-responses`` run folder or of its zoo export (``zoo:<prefix>``):
    kind, layout, population, and per partner its member, best-response ref and return."""
    if zoo.is_ref(responses):
        doc, _ = zoo.load_json(f"{zoo.ref_name(responses).rstrip('/')}/responses")
        return doc | {"refs": [AgentRef(zoo.ref_of(r["entry"])) for r in doc["responses"]]}
    path = Path(responses)
    raw = read_json(path / "config.json")
    ev = read_json(path / "eval.json")["partners"]
    return {"kind": raw.get("experiment"), "layout": raw.get("layout"),
            "population": raw.get("population"), "partner_members": raw.get("partner_members"),
            "responses": [{"member": p["member"], "return": p["return"]} for p in ev],
            "refs": [AgentRef(responses, k) for k in range(len(ev))]}


def _mep_response_pairs(source: str, layout: str, responses: str) -> list[Pair]:
    doc = _responses(responses)
    if doc["kind"] != "mep-responses":
        raise RunError(f"mep_responses = {responses!r}: a {doc['kind']!r} run, not a "
                       "--kind mep-responses run")
    if doc["population"] != source:
        raise RunError(f"mep_responses = {responses!r} answers the members of "
                       f"{doc['population']!r}, not of mep = {source!r}")
    if doc["layout"] != layout:
        raise RunError(f"{responses} was trained on layout {doc['layout']!r}, not {layout!r}")
    members = _population(source)[0]["members"]
    pairs = []
    for r, br in zip(doc["responses"], doc["refs"], strict=True):
        m = int(r["member"])
        partner = (AgentRef(zoo.ref_of(members[m]["entries"]["member"])) if zoo.is_ref(source)
                   else AgentRef(source, m))
        pairs.append(Pair(f"mep{m:02d}-br", partner, br,
                          {"kind": "mep", "source": source, "member": m,
                           "checkpoint": "final", "best_response": "trained against it",
                           "return": r["return"]}))
    return pairs


# --- collection -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CollectConfig:
    """Rollouts of the training pool (the CooT dataset)."""

    hsp: str = "zoo:random1/hsp-s0"
    """HSP population of the training pool (run folder or zoo:<prefix>); its `train` set."""
    mep: str | None = "zoo:random1/mep-s0"
    """MEP stage-1 population whose members join the pool (None: HSP pairs only)."""
    mep_responses: str | None = None
    """A ``coplay populations train --kind mep-responses --pop MEP`` run: each MEP member it
    answers pairs with that best response, trained against it (the paper; only those
    members join). None: every member with itself (its self-play partner) as best response."""
    layout: str = "random1"
    """Layout (must be the populations')."""
    checkpoints: tuple[str, ...] = ("final",)
    """HSP checkpoints per pair: final and / or mid (mid-skill snapshot; run folders only)."""
    episode_len: int = 200
    """Steps per episode (the CooT paper's 200)."""
    episodes_per_seat: int = 32
    """Episodes of each pair with the best response in each seat."""
    mid_episodes_per_seat: int = 0
    """Of those, per HSP pair, the episodes of the pair at its mid-skill snapshot (biased
    policy and best response both at mid skill; HSP run folders only), in the same pair (the
    paper: 30 of 250, here 15 of 125 per seat). MEP pairs play all at final skill."""
    seed: int = 0
    """Seed of the rollouts."""
    context_noise: tuple[float, ...] = ()
    """Not in the paper (() = the paper's data): for each epsilon here, extra episodes of
    every pair with the best response taking a uniformly random action with probability
    epsilon. They enter contexts only, never queries or BC labels, so that the model learns
    to act as the best response after contexts in which the ego played worse than one (as its
    own first episodes with a new partner are)."""
    noisy_episodes_per_seat: int = 16
    """Episodes per seat for each context_noise level."""

    def validate(self) -> CollectConfig:
        need = checker(self, "collect")
        need_positive_ints(self, "collect", ("episode_len", "episodes_per_seat",
                                             "noisy_episodes_per_seat"))
        need(all(0.0 < e <= 1.0 for e in self.context_noise), "context_noise",
             "each level must be in (0, 1]")
        need(len(self.checkpoints) >= 1 and set(self.checkpoints) <= {"final", "mid"},
             "checkpoints", "choose from final, mid")
        need(isinstance(self.mid_episodes_per_seat, int)
             and 0 <= self.mid_episodes_per_seat < self.episodes_per_seat,
             "mid_episodes_per_seat", "must be an integer in [0, episodes_per_seat)")
        need(self.mid_episodes_per_seat == 0 or self.checkpoints == ("final",),
             "mid_episodes_per_seat", "mixes mid-skill episodes into the final pairs: "
             "checkpoints must be (final,)")
        need(self.mep_responses is None or self.mep is not None, "mep_responses",
             "needs mep, the population it answers")
        return self


def training_pool(cfg: CollectConfig) -> list[Pair]:
    mid = cfg.mid_episodes_per_seat > 0
    pairs = [p for which in cfg.checkpoints
             for p in hsp_pairs(cfg.hsp, "train", cfg.layout, which, with_mid=mid)]
    if cfg.mep is not None:
        pairs += mep_pairs(cfg.mep, cfg.layout, cfg.mep_responses)
    if not pairs:
        raise RunError(f"the training pool of {cfg.hsp} is empty")
    return pairs


def play_pair(env: Overcooked, pair_agents: tuple[Agent, Agent], key: jax.Array,
              episodes_per_seat: int, episode_len: int, noise: float = 0.0):
    """Rollouts of (partner, best response): the BR is the ego, n episodes with it steering
    cook 0, then n steering cook 1 (with probability ``noise`` a random action instead of
    its own at each step). Returns the arrays of a shard (numpy)."""
    partner, br = pair_agents
    if noise > 0:
        br = with_action_noise(br, noise)
    n = episodes_per_seat
    env_params = env.default_params(horizon=episode_len)
    partner = partner.replace(params=jax.tree.map(lambda x: jnp.asarray(x)[None], partner.params))
    out = play_episodes(env, env_params, br, partner, jnp.zeros((2 * n,), jnp.int32),
                        jnp.repeat(jnp.arange(2, dtype=jnp.int32), n), key, episodes=1,
                        steps=episode_len, record=True)
    tr = jax.tree.map(lambda x: np.asarray(x[0]), out["trajectories"])
    return {"obs": tr.obs, "action": tr.action, "partner_action": tr.partner_action,
            "reward": tr.reward.astype(np.float32), "ret": np.asarray(out["returns"][0]),
            "ego_cook": np.repeat(np.arange(2, dtype=np.int8), n),
            "noise": np.full((2 * n,), noise, np.float32)}


def play_pair_with_noise(env: Overcooked, pair_agents: tuple[Agent, Agent], key: jax.Array,
                         cfg: CollectConfig, mid_agents: tuple[Agent, Agent] | None = None):
    """The clean episodes of :func:`play_pair` (``mid_agents``: the last
    ``cfg.mid_episodes_per_seat`` per seat played by the pair at mid skill, marked ``mid``),
    then those of every ``cfg.context_noise`` level, concatenated on the episode axis."""
    n_mid = cfg.mid_episodes_per_seat if mid_agents is not None else 0
    parts = [play_pair(env, pair_agents, key, cfg.episodes_per_seat - n_mid, cfg.episode_len)]
    if n_mid:
        parts.append(play_pair(env, mid_agents, jax.random.fold_in(key, 10_000), n_mid,
                               cfg.episode_len))
    for part, is_mid in zip(parts, (False, True), strict=False):
        part["mid"] = np.full(part["ret"].shape, is_mid)
    for level, eps in enumerate(cfg.context_noise):
        parts.append(play_pair(env, pair_agents, jax.random.fold_in(key, 1 + level),
                               cfg.noisy_episodes_per_seat, cfg.episode_len, eps))
        parts[-1]["mid"] = np.zeros(parts[-1]["ret"].shape, bool)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def collect(cfg: CollectConfig, out: str | Path, progress: bool = True) -> Path:
    """Write (or continue) the dataset folder ``out``; returns it."""
    cfg.validate()
    out = Path(out)
    store = ShardStore(out)
    man_path = out / MANIFEST
    pairs = training_pool(cfg)
    manifest = {"config": to_jsonable(cfg), "layout": cfg.layout,
                "pairs": [to_jsonable(p._asdict()) | {"shard": None} for p in pairs]}
    if man_path.exists():
        stored = read_json(man_path)
        # a dataset written before a config field existed holds that field's default
        if {**manifest["config"], **stored.get("config", {})} != manifest["config"]:
            raise RunError(f"{out} holds a dataset of another config; choose another --out")
        manifest = stored
    out.mkdir(parents=True, exist_ok=True)
    env = Overcooked(cfg.layout)
    manifest["obs_shape"] = list(env.obs_shape)
    write_json(man_path, manifest)
    todo = [i for i, p in enumerate(manifest["pairs"])
            if p["shard"] is None or not store.exists(p["shard"])]
    with progress_bar("collect", total=len(pairs), completed=len(pairs) - len(todo),
                      enabled=progress) as bar:
        for i in todo:
            pair = pair_from_json(manifest["pairs"][i])
            refs = (pair.partner, pair.br) + (pair.mid or ())
            agents = [r.load() for r in refs]
            for a, r in zip(agents, refs, strict=True):
                check_obs(a, env, r)
            arrays = play_pair_with_noise(
                env, tuple(agents[:2]), jax.random.fold_in(jax.random.PRNGKey(cfg.seed), i), cfg,
                tuple(agents[2:]) if pair.mid else None)
            name = f"pair{i:03d}"
            store.write(name, arrays)
            clean = arrays["noise"] == 0
            manifest["pairs"][i].update(shard=name, return_mean=float(arrays["ret"][clean].mean()))
            write_json(man_path, manifest)
            bar.update(f"{pair.name}: return {arrays['ret'][clean].mean():.1f}")
    return out


# --- loading ----------------------------------------------------------------------------------
class Dataset(NamedTuple):
    """A loaded dataset: groups = (pair, seat), oldest axis first."""

    episodes: Episodes  # (G, n, T, D) per group; query_ok False at context-only episodes
    returns: np.ndarray  # (G, n)
    group_pair: np.ndarray  # (G,) index into pairs
    group_cook: np.ndarray  # (G,) the cook the best response steered
    pairs: list[Pair]
    layout: str
    obs_shape: tuple[int, ...]
    relabelled: np.ndarray | None = None  # (G, n) bool: the ego was a CooT, labels a BR's


def _read_pair(store: ShardStore, names: list[str]) -> dict[str, np.ndarray]:
    """One pair's episodes: its collected shard then its relabelled ones (``extra_shards``,
    written by :mod:`coplay.experiments.coot.dagger`) on the episode axis, each checked, with
    ``noise`` / ``label`` / ``relabelled`` filled in where a shard has none."""
    keys = {"obs", "action", "reward", "ret", "ego_cook"}
    parts = []
    for name in names:
        s = store.read(name)
        where = f"dataset shard {store.path / name}.npz"
        if not keys <= set(s):
            raise RunError(f"{where} lacks {sorted(keys - set(s))}")
        n2 = s["ret"].shape[0]
        if any(s[k].shape[0] != n2 for k in keys) or n2 % 2:
            raise RunError(f"{where} is cut short or malformed (arrays of lengths "
                           f"{[s[k].shape[0] for k in keys]})")
        noise = s["noise"] if "noise" in s else np.zeros((n2,), np.float32)
        if noise.shape != (n2,):
            raise RunError(f"{where}: noise of shape {noise.shape}, expected ({n2},)")
        label = s["label"] if "label" in s else s["action"]
        if label.shape != s["action"].shape:
            raise RunError(f"{where}: label of shape {label.shape}, expected "
                           f"{s['action'].shape}")
        parts.append({**{k: s[k] for k in keys}, "noise": noise, "label": label,
                      "relabelled": np.full((n2,), "label" in s)})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def load_dataset(path: str | Path) -> Dataset:
    """Read a finished dataset folder; a missing / unfinished / damaged shard is an error
    naming it."""
    path = Path(path)
    man = read_json(path / MANIFEST)
    store = ShardStore(path)
    missing = [p["name"] for p in man["pairs"] if p.get("shard") is None]
    if missing:
        raise RunError(f"{path}: dataset unfinished ({len(missing)} of {len(man['pairs'])} "
                       f"pairs not collected: {', '.join(missing[:4])}...); rerun collect "
                       "with the same --out to continue")
    cols = {k: [] for k in ("obs", "action", "reward", "ret", "ok", "label", "relabelled")}
    gp, gc = [], []
    for i, p in enumerate(man["pairs"]):
        s = _read_pair(store, [p["shard"], *p.get("extra_shards", [])])
        for cook in (0, 1):
            sel = s["ego_cook"] == cook
            cols["obs"].append(s["obs"][sel].reshape(sel.sum(), s["obs"].shape[1], -1))
            for k in ("action", "reward", "ret", "label", "relabelled"):
                cols[k].append(s[k][sel])
            cols["ok"].append(s["noise"][sel] == 0)
            gp.append(i)
            gc.append(cook)
    try:
        stacked = {k: np.stack(v) for k, v in cols.items()}
    except ValueError as e:
        raise RunError(f"{path}: shards of different shapes ({e})") from None
    relabelled = stacked["relabelled"]
    episodes = Episodes(stacked["obs"], stacked["action"], stacked["reward"], stacked["ok"],
                        stacked["label"] if relabelled.any() else None)
    return Dataset(episodes, stacked["ret"], np.array(gp), np.array(gc),
                   [pair_from_json(p) for p in man["pairs"]], man["layout"],
                   tuple(man["obs_shape"]), relabelled)
