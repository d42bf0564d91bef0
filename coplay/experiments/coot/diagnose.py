"""`coplay coot diagnose`: why a CooT does (not) coordinate, in minutes (issue 38's
diagnosis as a command).

For one CooT and the held-out partners of ``coot eval`` (each with its own best response), the
same games (partners x seats, ``episodes`` consecutive episodes, one key for every variant)
are played with the CooT's context set in five ways:

- ``own``: as deployed — empty at first, then its own episodes, FIFO;
- ``empty``: emptied before every episode (the empty-context policy alone);
- ``oracle``: ``k`` episodes of the partner's own best response with it (in the CooT's
  seat), frozen — what the training contexts look like;
- ``oracle-then-own``: the same at first, then its own episodes pushed in (FIFO);
- ``mismatched``: ``k`` episodes of *another* held-out partner's best response, frozen;
- ``own-keep-best`` (a deployment option): as ``own``, but the context keeps the k best-return
  episodes so far instead of the last k;
- ``pool``: ``k`` best-response episodes of the training pool (one from each of the first k
  training pairs, in the CooT's seat), frozen — a context deployment can give without
  knowing the partner;
- ``pool-then-own`` (a deployment option): the same at first, then its own episodes (FIFO).

BR-Prox of each (the paper's, as ``coot eval`` reports it: per partner, the return over the
partner's best response's, seats pooled; then the mean over partners) and its first / last
episode; the CooT's agreement with the partner's best response on
the CooT's own states (``own``: the share of its actions equal to the best response's most
likely one, beside the best response's own sampling ceiling, the mean probability of its
argmax); and the closed-loop return with training partners (a collect preset's pool or a
dataset folder's pairs), each over its pair's best response — the check of ``coot train
--select-by closed-loop`` (:mod:`coplay.experiments.coot.closed_loop`), with ``episodes``
consecutive episodes. Writes ``diagnose.json`` and ``report.md``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.base import Agent
from coplay.agents.coot_agent import CootSpec, empty_context, with_context, with_keep
from coplay.config import checker, need_positive_ints
from coplay.envs.overcooked import Overcooked
from coplay.eval.brprox import br_prox_paper
from coplay.eval.in_context import play_episodes
from coplay.experiments.coot.closed_loop import prepare
from coplay.experiments.coot.data import (
    CollectConfig,
    Pair,
    hsp_pairs,
    pair_from_json,
    training_pool,
)
from coplay.experiments.refs import check_obs, locate, resolve
from coplay.runs import (
    RunError,
    atomic_write_text,
    progress_bar,
    read_json,
    to_jsonable,
    write_json,
)

MODES = ("own", "empty", "oracle", "oracle-then-own", "mismatched", "own-keep-best", "pool",
         "pool-then-own")
POOL_MODES = ("pool", "pool-then-own")  # need training pairs


@dataclasses.dataclass(frozen=True)
class DiagnoseConfig:
    """What to diagnose and on which games."""

    coot: str = "zoo:random1/coot-s0"
    """The CooT (run folder, DAgger folder or zoo:<name>)."""
    partners: str = "zoo:random1/hsp-s1-k10"
    """HSP population whose `eval` selection are the held-out partners (as coot eval)."""
    layout: str = "random1"
    """Layout of the games."""
    episodes: int = 10
    """Consecutive episodes per partner, seat and context variant."""
    episode_len: int = 200
    """Steps per episode (must be the CooT's context slot length)."""
    br_episodes: int = 10
    """Episodes per seat of each partner with its best response: the BR-Prox denominator and
    the oracle contexts (the first k of them); at least the CooT's k."""
    train_pool: str = "default"
    """Training partners for the closed-loop check: a `coot collect` preset's pool (default,
    paper) or a dataset folder (its pairs); "none" skips the check."""
    train_pairs: int = 8
    """Training pairs played (the pool's first ones)."""
    seed: int = 0
    """Seed of the games (the same for every variant)."""

    def validate(self) -> DiagnoseConfig:
        need_positive_ints(self, "diagnose", ("episodes", "episode_len", "br_episodes",
                                              "train_pairs"))
        checker(self, "diagnose")(bool(self.coot), "coot", "name the CooT to diagnose")
        return self


def _coot(cfg: DiagnoseConfig, env: Overcooked) -> Agent:
    src = locate(cfg.coot)
    agent = resolve(src, layout=cfg.layout, name="coot")
    check_obs(agent, env, src.ref)
    if not isinstance(agent.spec, CootSpec):
        raise RunError(f"coot = {cfg.coot!r} is not a Coordination Transformer ({agent.name})")
    if agent.spec.episode_len != cfg.episode_len:
        raise RunError(f"episode_len = {cfg.episode_len}: the CooT's context slots hold "
                       f"{agent.spec.episode_len} steps (--diagnose.episode-len)")
    return agent


def _one(agent: Agent) -> Agent:
    return agent.replace(params=jax.tree.map(lambda x: jnp.asarray(x)[None], agent.params))


def _play(env, cfg: DiagnoseConfig, ego: Agent, partner: Agent, cooks: np.ndarray, key,
          episodes: int, record: bool = False) -> dict:
    """Games of ``ego`` with one ``partner`` (one game per entry of ``cooks``)."""
    return play_episodes(env, env.default_params(horizon=cfg.episode_len), ego, _one(partner),
                         jnp.zeros(len(cooks), jnp.int32), jnp.asarray(cooks, jnp.int32), key,
                         episodes=episodes, steps=cfg.episode_len, record=record)


def best_response_play(env, cfg: DiagnoseConfig, pair: Pair, key) -> tuple[np.ndarray, dict]:
    """The pair's best response with its partner, ``br_episodes`` per seat: (mean return per
    seat (2,), the recorded episodes per seat {seat: (obs (n, T, D), action, reward)})."""
    n = cfg.br_episodes
    out = _play(env, cfg, pair.br.load(), pair.partner.load(), np.repeat([0, 1], n), key, 1,
                record=True)
    tr = jax.tree.map(lambda x: np.asarray(x[0]), out["trajectories"])  # (2n, T, ...)
    ret = np.asarray(out["returns"][0]).reshape(2, n)
    obs = tr.obs.reshape(2 * n, cfg.episode_len, -1)
    per_seat = {s: (obs[s * n:(s + 1) * n], tr.action[s * n:(s + 1) * n].astype(np.int32),
                    tr.reward[s * n:(s + 1) * n]) for s in (0, 1)}
    return ret.mean(1), per_seat


def _context(episodes, k: int):
    obs, action, reward = episodes
    return jnp.asarray(obs[:k]), jnp.asarray(action[:k]), jnp.asarray(reward[:k])


def agreement(br: Agent, obs: np.ndarray, actions: np.ndarray) -> tuple[float, float]:
    """(share of ``actions`` equal to the best response's most likely action at ``obs``
    (N, H, W, C), the best response's mean probability of that action: its own ceiling)."""
    logits = jax.vmap(lambda o: br.policy(jax.random.PRNGKey(0), br.reset(None), o)[0])(
        jnp.asarray(obs))
    p = jax.nn.softmax(logits)
    top = np.asarray(jnp.argmax(p, -1))
    return (float((top == np.asarray(actions).reshape(-1)).mean()),
            float(np.asarray(p.max(-1)).mean()))


def pool_context(train_br: list, seat: int, k: int):
    """``k`` best-response episodes of the training pool in ``seat``: episode ``j // n`` of
    training pair ``j % n`` for j < k (n pairs; each pair's first episode first)."""
    n = len(train_br)
    picks = [(train_br[j % n][1][seat], j // n) for j in range(k)]
    return tuple(np.stack([ep[x][i] for ep, i in picks]) for x in range(3))


def _variants(coot: Agent, oracle, other, pool) -> dict[str, Agent]:
    """The CooT with each context (``other`` None: one partner only, no mismatched one;
    ``pool`` None: no training pairs)."""
    k = coot.spec.num_episodes
    out = {"own": coot,
           "empty": with_context(coot, *empty_context(coot), "frozen"),
           "oracle": with_context(coot, *_context(oracle, k), "frozen"),
           "oracle-then-own": with_context(coot, *_context(oracle, k), "fifo")}
    if other is not None:
        out["mismatched"] = with_context(coot, *_context(other, k), "frozen")
    out["own-keep-best"] = with_keep(coot, "keep-best")
    if pool is not None:
        out["pool"] = with_context(coot, *_context(pool, k), "frozen")
        out["pool-then-own"] = with_context(coot, *_context(pool, k), "fifo")
    return out


def _train_pairs(cfg: DiagnoseConfig, pools: dict[str, CollectConfig]) -> list[Pair]:
    if cfg.train_pool == "none":
        return []
    if cfg.train_pool in pools:
        pairs = training_pool(pools[cfg.train_pool])
    else:
        man = Path(cfg.train_pool) / "manifest.json"
        if not man.is_file():
            raise RunError(f"train_pool = {cfg.train_pool!r}: neither a collect preset "
                           f"({', '.join(pools)}) nor a dataset folder")
        pairs = [pair_from_json(p) for p in read_json(man)["pairs"]]
    return pairs[:cfg.train_pairs]


def diagnose(cfg: DiagnoseConfig, out: str | Path, progress: bool = True,
             pools: dict[str, CollectConfig] | None = None) -> Path:
    """Play every variant; write ``out/diagnose.json`` and ``out/report.md``. ``pools``:
    the collect presets ``train_pool`` may name (the CLI passes the wing's)."""
    cfg.validate()
    env = Overcooked(cfg.layout)
    coot = _coot(cfg, env)
    k = coot.spec.num_episodes
    if cfg.br_episodes < k:
        raise RunError(f"br_episodes = {cfg.br_episodes}: the oracle contexts need the "
                       f"CooT's k = {k} episodes per seat")
    pairs = hsp_pairs(cfg.partners, "eval", cfg.layout)
    train = _train_pairs(cfg, pools or {})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.PRNGKey(cfg.seed)
    n_p = len(pairs)
    modes = [m for m in MODES if (m != "mismatched" or n_p > 1)  # needs a second partner
             and (m not in POOL_MODES or train)]
    ret = {m: np.zeros((n_p, 2, cfg.episodes)) for m in modes}
    br = np.zeros((n_p, 2))
    agree, ceiling = np.zeros((n_p, 2)), np.zeros((n_p, 2))
    with progress_bar("diagnose", total=2 * n_p + 2 * len(train), enabled=progress) as bar:
        train_br = []  # per training pair: (its BR's return per seat, its episodes per seat)
        for j, pair in enumerate(train):
            train_br.append(best_response_play(env, cfg, pair,
                                               jax.random.fold_in(key, 20_000 + j)))
            bar.update(f"training pair {pair.name}: BR {train_br[-1][0].mean():.1f}")
        oracles = []
        for i, pair in enumerate(pairs):
            br[i], episodes = best_response_play(env, cfg, pair,
                                                 jax.random.fold_in(key, 10_000 + i))
            oracles.append(episodes)
        for i, pair in enumerate(pairs):
            partner, own_br = pair.partner.load(), pair.br.load()
            for seat in (0, 1):
                other = oracles[(i + 1) % n_p][seat] if n_p > 1 else None
                pool = pool_context(train_br, seat, k) if train else None
                for mode, ego in _variants(coot, oracles[i][seat], other, pool).items():
                    r = _play(env, cfg, ego, partner, np.array([seat]), key, cfg.episodes,
                              record=mode == "own")
                    ret[mode][i, seat] = np.asarray(r["returns"])[:, 0]
                    if mode == "own":
                        tr = r["trajectories"]
                        agree[i, seat], ceiling[i, seat] = agreement(
                            own_br, np.asarray(tr.obs[:, 0]).reshape(
                                (-1,) + env.obs_shape), np.asarray(tr.action[:, 0]))
                bar.update(f"{pair.name} seat {seat}: own "
                           f"{ret['own'][i, seat].mean():.1f}, oracle "
                           f"{ret['oracle'][i, seat].mean():.1f} (BR {br[i, seat]:.1f})")
        training = []
        if train:  # the closed-loop check of coot train --select-by closed-loop
            b = np.stack([t[0] for t in train_br])
            check = prepare(train, cfg.layout, cfg.episodes, cfg.episode_len, cfg.br_episodes,
                            cfg.seed, br=b)
            got = check.score(coot)
            for j, pair in enumerate(train):
                mine = got["returns"][j].mean(-1)  # (2,) per seat
                training.append({"pair": pair.name, "coot": mine.tolist(), "br": b[j].tolist(),
                                 "ratio": got["per_pair"][j]})
            bar.update(f"{len(train)} training pairs: {got['ratio']:.3f} of their BRs",
                       len(train))
    doc = summarise(cfg, [p.name for p in pairs], br, ret, agree, ceiling, training)
    write_json(out / "diagnose.json", doc)
    atomic_write_text(out / "report.md", report(doc))
    return out


def _prox(returns: np.ndarray, br: np.ndarray):
    """The paper's BR-Prox (as coot eval reports it) of (P, 2, E) returns against (P, 2)
    best-response returns: per partner, the mean over seats and episodes over the best
    response's mean over seats; then the mean over partners."""
    return br_prox_paper(returns[:, :, None, :], br)


def summarise(cfg, pairs, br, ret, agree, ceiling, training) -> dict:
    """diagnose.json's document from the games' returns (re-derivable from it alone)."""
    modes = {}
    for m, r in ret.items():
        r = np.asarray(r, float)
        modes[m] = {"br_prox": _prox(r, br).value, "first": _prox(r[..., :1], br).value,
                    "last": _prox(r[..., -1:], br).value,
                    "per_episode": [round(_prox(r[..., e:e + 1], br).value, 4)
                                    for e in range(r.shape[-1])],
                    "per_partner": np.round(_prox(r, br).per_partner, 4).tolist(),
                    "returns": r}
    ratios = [t["ratio"] for t in training]
    return {"config": to_jsonable(cfg), "partners": list(pairs),
            "br_returns": br, "modes": modes,
            "agreement": {"coot_vs_br": float(agree.mean()), "br_ceiling": float(ceiling.mean()),
                          "per_partner": agree.mean(1).round(4).tolist()},
            "training": {"pairs": training,
                         "mean_ratio": float(np.mean(ratios)) if ratios else None,
                         "min_ratio": float(np.min(ratios)) if ratios else None}}


EXPLAIN = {"own": "its own episodes, FIFO from empty (deployment)",
           "empty": "emptied before every episode",
           "oracle": "k episodes of the partner's own best response, frozen",
           "oracle-then-own": "the same, then its own episodes pushed in",
           "mismatched": "k episodes of another held-out partner's best response, frozen",
           "own-keep-best": "its own episodes, the k best-return ones kept (deployment option)",
           "pool": "k best-response episodes of training pairs, frozen",
           "pool-then-own": "the same, then its own episodes pushed in (deployment option)"}


def report(doc: dict) -> str:
    cfg = doc["config"]
    lines = [f"# CooT diagnosis — `{cfg['coot']}`", "",
             f"{len(doc['partners'])} held-out partners of `{cfg['partners']}` x 2 seats, "
             f"{cfg['episodes']} consecutive episodes of {cfg['episode_len']} steps, sampled "
             f"actions, one key for every variant; BR-Prox = return / the partner's own best "
             f"response's ({cfg['br_episodes']} episodes per seat).", "",
             "| context the CooT plays with | BR-Prox | episode 1 | last episode |",
             "|---|---|---|---|"]
    for m, v in doc["modes"].items():
        lines.append(f"| {EXPLAIN[m]} | {v['br_prox']:.3f} | {v['first']:.3f} | "
                     f"{v['last']:.3f} |")
    a = doc["agreement"]
    lines += ["", f"- on its own states (deployment), the CooT takes the partner's best "
              f"response's most likely action at {a['coot_vs_br']:.3f} of the steps (the best "
              f"response itself, sampling: {a['br_ceiling']:.3f})"]
    t = doc["training"]
    if t["pairs"]:
        lines += [f"- closed loop with {len(t['pairs'])} training partners ({cfg['train_pool']}"
                  f"): CooT / their best response = {t['mean_ratio']:.3f} on average, "
                  f"{t['min_ratio']:.3f} at worst", "", "| training pair | CooT | BR | ratio |",
                  "|---|---|---|---|"]
        for p in t["pairs"]:
            lines.append(f"| {p['pair']} | {np.mean(p['coot']):.1f} | {np.mean(p['br']):.1f} "
                         f"| {p['ratio']:.3f} |")
    return "\n".join(lines) + "\n"
