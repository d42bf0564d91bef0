"""Speed of the Coordination Transformer on this CPU: deployment per step and training per
example, each against anchors measured in the same process.

(a) Per-step inference at batch 1 of the CooT agent (``coot_agent``, the paper's size:
    GPTConfig() = 4 layers x 2 heads x 128, a context of 5 x 200 steps, queries of 6, the
    random1 observation 5x5x20 = 500 values): one jitted ``act`` per step with the state on
    device and the context's keys / values cached. Anchors: BC's per-step inference
    (``bc_agent``, default BCConfig), CooT *without* the cache (one full causal pass of
    ``GPT.__call__`` over the 1006 tokens per step) and an empty jitted call (dispatch floor).
    Also per step inside one jitted ``lax.scan`` over a 200-step episode (the evaluation's
    path: no per-call dispatch), CooT and BC. Target: <= 0.5 ms per step.
(b) 20 partner-seats in one call: ``jax.vmap`` of ``act`` over 20 states.
(c) Training: forward + backward per example of ``shared_context_loss`` (C = 2 contexts x
    Q = 70 queries, 1000-token contexts, each encoded once) vs ``per_example_loss`` (one full
    pass over context + query per example, on fewer examples: ``--per-example-queries``).
    Target: >= 20x.

Per-step times are medians over many calls after a warm-up (each call ``block_until_ready``);
training times the best of a few calls. The machine is shared: read the ratios (measured side
by side) rather than the absolute figures, and the load average printed with them.

    python bench/bench_coot.py [--out docs/results/bench_coot.txt]
    python bench/bench_coot.py --quick       # small sizes: a smoke test of the script
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from timing import best_time  # bench/timing.py (scripts run from bench/)

from coplay.agents import gpt as gpt_mod
from coplay.agents.coot_agent import coot_agent
from coplay.agents.gpt import GPT, GPTConfig, init_gpt, make_gpt
from coplay.algos.bc import BCConfig, bc_agent, init_params, make_model
from coplay.algos.coot import per_example_loss, shared_context_loss
from coplay.data.context import Batch

OBS_SHAPE = (5, 5, 20)  # random1 (Coord. Ring)


# --- the previous attention, for --compare only (not in the package) ------------------------

class _OldAttention(nn.Module):
    """The attention before the deployment speed-up: (B, G, nh, L, hd) einsums, scores of the
    prefix and the group concatenated, one softmax, the weights sliced apart again."""

    cfg: GPTConfig

    @nn.compact
    def __call__(self, x, prefix, deterministic):
        cfg = self.cfg
        b, g, l, c = x.shape  # noqa: E741
        nh, hd = cfg.num_heads, c // cfg.num_heads
        qkv = nn.Dense(3 * c, kernel_init=gpt_mod._init(), name="qkv")(x)  # (B, G, L, 3C)
        q, k, v = (t.reshape(b, g, l, nh, hd).transpose(0, 1, 3, 2, 4)  # (B, G, nh, L, hd)
                   for t in jnp.split(qkv, 3, axis=-1))
        scale = 1.0 / math.sqrt(hd)
        own = jnp.einsum("bghld,bghmd->bghlm", q, k) * scale  # (B, G, nh, L, L)
        own = jnp.where(jnp.tril(jnp.ones((l, l), bool)), own, jnp.finfo(own.dtype).min)
        if prefix is None:
            scores = own
        else:
            pre = jnp.einsum("bghld,bhpd->bghlp", q, prefix.k.astype(q.dtype)) * scale
            scores = jnp.concatenate([pre, own], axis=-1)  # (B, G, nh, L, P + L)
        weights = nn.Dropout(cfg.dropout)(jax.nn.softmax(scores, axis=-1),
                                          deterministic=deterministic)
        if prefix is None:
            y = jnp.einsum("bghlm,bghmd->bghld", weights, v)
        else:
            p = prefix.k.shape[2]
            y = (jnp.einsum("bghlp,bhpd->bghld", weights[..., :p], prefix.v.astype(v.dtype))
                 + jnp.einsum("bghlm,bghmd->bghld", weights[..., p:], v))
        y = y.transpose(0, 1, 3, 2, 4).reshape(b, g, l, c)  # (B, G, L, C)
        y = nn.Dense(c, kernel_init=gpt_mod._init(0.02 / math.sqrt(2 * cfg.num_layers)),
                     name="proj")(y)
        return nn.Dropout(cfg.dropout)(y, deterministic=deterministic), (k, v)


class _OldBlock(nn.Module):
    cfg: GPTConfig

    @nn.compact
    def __call__(self, x, prefix, deterministic, last_only=False):
        del last_only  # the old path computes every token of every block
        a, kv = _OldAttention(self.cfg, name="attn")(nn.LayerNorm(name="ln1")(x), prefix,
                                                     deterministic)
        x = x + a
        kv = tuple(t.transpose(0, 2, 1, 3, 4) for t in kv)  # GPT.encode's (B, nh, G, L, hd)
        return x + gpt_mod.MLP(self.cfg, name="mlp")(nn.LayerNorm(name="ln2")(x),
                                                     deterministic), kv


class _OldGPT(GPT):
    """The same parameters through the previous attention (same names, same cache)."""

    def setup(self):
        cfg = self.cfg
        self.embed = nn.Dense(cfg.width, kernel_init=gpt_mod._init(), name="embed")
        self.positions = self.param("positions", gpt_mod._init(), (cfg.max_positions, cfg.width))
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = [_OldBlock(cfg, name=f"block{i}") for i in range(cfg.num_layers)]
        self.ln_f = nn.LayerNorm(name="ln_f")
        self.head = nn.Dense(cfg.num_actions, kernel_init=gpt_mod._init(), name="head")


def _previous_cache_layout(agent):
    """``agent`` with its keys cached as before, (nh, P, hd): each call hands the current
    functions the (nh, hd, P) view they store, so the scores' matmul copy-transposes them."""
    def flip(state):
        return state._replace(cache=tuple(kv._replace(k=kv.k.swapaxes(-1, -2))
                                          for kv in state.cache))

    def policy(spec, params, key, state, obs):
        logits, state = agent.policy_fn(spec, params, key, flip(state), obs)
        return logits, flip(state)

    def act(spec, params, key, state, obs, greedy):
        action, state = agent.act_fn(spec, params, key, flip(state), obs, greedy)
        return action, flip(state)

    return agent.replace(policy_fn=policy, act_fn=act,
                         init_fn=lambda spec, params, key: flip(agent.init_fn(spec, params, key)),
                         end_fn=lambda spec, params, state, ep: flip(
                             agent.end_fn(spec, params, flip(state), ep)))


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def median_ms(fn, calls: int, warmup: int = 5) -> float:
    """Median wall time (ms) of ``calls`` calls of ``fn`` (which blocks on its result)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


class Stepper:
    """Calls a jitted ``act(agent, key, state, obs)`` step after step, the state staying on
    device (fed back, optionally donated), the observations placed on device beforehand; a
    fresh copy of ``state0`` every ``episode_len`` steps so the episode never overflows."""

    def __init__(self, agent, state0, obs, episode_len: int, donate: bool, batched: bool):
        act = (lambda a, k, s, o: a.act(k, s, o, True))
        if batched:
            act = jax.vmap(act, in_axes=(None, None, 0, 0))
        self.act = jax.jit(act, donate_argnums=(2,) if donate else ())
        self.agent, self.state0, self.obs, self.h = agent, state0, obs, episode_len
        self.key = jax.random.PRNGKey(0)
        self.i, self.state = 0, self._fresh()

    def _fresh(self):
        return jax.tree.map(jnp.copy, self.state0)

    def __call__(self):
        if self.i == self.h:
            self.i, self.state = 0, jax.block_until_ready(self._fresh())
        action, self.state = self.act(self.agent, self.key, self.state,
                                      self.obs[self.i % len(self.obs)])
        self.i += 1
        jax.block_until_ready(action)


def _scanned_episode(agent, state0, obs_ep):
    """A callable timing one jitted ``lax.scan`` of ``len(obs_ep)`` act steps from
    ``state0``."""
    def episode(a, key, state, obs_seq):
        def step(carry, o):
            k, s = carry
            k, sub = jax.random.split(k)
            action, s = a.act(sub, s, o, True)
            return (k, s), action
        return jax.lax.scan(step, (key, state), obs_seq)[1]

    run = jax.jit(episode)
    key = jax.random.PRNGKey(0)

    def call():
        jax.block_until_ready(run(agent, key, state0, obs_ep))
    return call


def _full_context_state(agent, key, episodes: int, h: int, d: int, batch: int | None):
    """A state whose context holds ``episodes`` random finished episodes (as in deployment
    after k episodes with a partner): the cache is then real, not all-zero padding."""
    rng = np.random.default_rng(0)
    end = jax.jit(agent.end_episode)
    act = jax.jit(lambda a, k, s, o: a.act(k, s, o, True))
    state = agent.reset(key)
    for _ in range(episodes):
        state = state._replace(
            ep_obs=jnp.asarray(rng.integers(0, 3, (h, d)), jnp.float32),
            ep_action=jnp.asarray(rng.integers(0, 6, h), jnp.int32), t=jnp.int32(h))
        state = end(state, jnp.asarray(rng.choice([0.0, 20.0], h, p=[0.97, 0.03])))
    _, _ = act(agent, key, state, jnp.zeros(d))  # compile the single-step act once here
    if batch is None:
        return state
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (batch,) + x.shape).copy(), state)


def bench_inference(cfg: GPTConfig, k: int, h: int, lq: int, steps: int, seats: int,
                    out) -> None:
    d = int(np.prod(OBS_SHAPE))
    model = make_gpt(cfg)
    params = init_gpt(cfg, jax.random.PRNGKey(0), d + cfg.num_actions + 1)
    agent = coot_agent(model, params, k, h, lq, d)
    key = jax.random.PRNGKey(1)
    rng = np.random.default_rng(1)
    obs = [jax.device_put(jnp.asarray(rng.integers(0, 3, OBS_SHAPE), jnp.float32))
           for _ in range(min(h, 64))]
    state = _full_context_state(agent, key, k, h, d, None)
    plain = Stepper(agent, state, obs, h, donate=False, batched=False)
    donated = Stepper(agent, state, obs, h, donate=True, batched=False)

    # anchors: BC, a full pass over the whole sequence per step, an empty jitted call
    bc_cfg = BCConfig()
    bc_model = make_model(bc_cfg)
    bc = bc_agent(bc_cfg, init_params(jax.random.PRNGKey(2), bc_model, OBS_SHAPE))
    bc_step = Stepper(bc, (), obs, 10 ** 9, donate=False, batched=False)
    tokens = jnp.asarray(rng.normal(size=(1, k * h + lq, d + cfg.num_actions + 1)), jnp.float32)
    full = jax.jit(lambda p, x: jnp.argmax(model.apply(p, x)[0, -1]))

    def full_step():
        jax.block_until_ready(full(params, tokens))

    noop = jax.jit(lambda x: x + 1)
    scalar = jnp.int32(0)

    def noop_step():
        jax.block_until_ready(noop(scalar))

    # the evaluation path: a whole episode of steps in one jitted lax.scan (no per-step
    # dispatch, the state a loop carry), reported per step
    obs_ep = jnp.stack([obs[i % len(obs)] for i in range(h)])
    scanned_coot, scanned_bc = _scanned_episode(agent, state, obs_ep), _scanned_episode(
        bc, (), obs_ep)

    # interleave rounds, keep each contender's best median: the machine is shared
    names = ["coot", "coot_donated", "bc", "full", "noop", "coot_scan", "bc_scan"]
    fns = [plain, donated, bc_step, full_step, noop_step, scanned_coot, scanned_bc]
    calls = [steps, steps, steps, max(steps // 20, 5), steps, max(steps // h, 3),
             max(steps // h, 3)]
    best = {n: float("inf") for n in names}
    for _ in range(3):
        for n, f, c in zip(names, fns, calls, strict=True):
            best[n] = min(best[n], median_ms(f, c))
    coot = min(best["coot"], best["coot_donated"])
    out(f"(a) per-step inference, batch 1 (median ms/step; context {k} x {h} = {k * h} cached "
        f"tokens, query {lq}, obs {d}):")
    rows = [("CooT act, KV cache (jit)", best["coot"]),
            ("CooT act, KV cache (jit, donated state)", best["coot_donated"]),
            ("BC act (default BCConfig MLP)", best["bc"]),
            (f"CooT without cache (full pass, {k * h + lq} tokens)", best["full"]),
            ("empty jitted call (dispatch floor)", best["noop"]),
            (f"CooT, {h}-step episode in one jitted scan, per step", best["coot_scan"] / h),
            (f"BC, {h}-step episode in one jitted scan, per step", best["bc_scan"] / h)]
    for label, ms in rows:
        out(f"  {label:<48s} {ms:9.3f} ms/step")
    out(f"  ratio CooT cached / BC:            x{coot / best['bc']:.2f}")
    out(f"  ratio CooT uncached / cached:      x{best['full'] / coot:.1f}")
    out(f"  ratio CooT scanned / BC scanned:   x{best['coot_scan'] / best['bc_scan']:.2f}")
    out(f"  target <= 0.5 ms/step, one call per step: {'met' if coot <= 0.5 else 'NOT met'} "
        f"({coot:.3f} ms); inside a scanned episode: {best['coot_scan'] / h:.3f} ms")

    # (b) many partner-seats in one call
    states = _full_context_state(agent, key, k, h, d, seats)
    obs_b = [jnp.broadcast_to(o, (seats,) + o.shape).copy() for o in obs]
    batched = Stepper(agent, states, obs_b, h, donate=True, batched=True)
    ms = min(median_ms(batched, max(steps // 4, 5)) for _ in range(2))
    out(f"(b) {seats} partner-seats in one call (vmap, donated state): {ms:.3f} ms/call, "
        f"{ms / seats:.3f} ms per partner-seat")
    out(f"  ratio per-seat batched / batch-1 cached: x{ms / seats / coot:.2f}")


def bench_compare(cfg: GPTConfig, k: int, h: int, lq: int, steps: int, seats: int, c: int,
                  q: int, rounds: int, out) -> None:
    """The previous deployment path (``_OldGPT``'s attention, keys cached as (nh, P, hd))
    against the package's, same parameters, in alternating rounds: batch-1 act (donated),
    ``seats`` seats in one call, training fwd + bwd per example of ``shared_context_loss``.
    Medians over rounds of each round's median."""
    d = int(np.prod(OBS_SHAPE))
    din = d + cfg.num_actions + 1
    new_model, old_model = make_gpt(cfg), _OldGPT(cfg)
    params = init_gpt(cfg, jax.random.PRNGKey(0), din)
    key = jax.random.PRNGKey(1)
    rng = np.random.default_rng(1)
    obs = [jax.device_put(jnp.asarray(rng.integers(0, 3, OBS_SHAPE), jnp.float32))
           for _ in range(min(h, 64))]
    obs_b = [jnp.broadcast_to(o, (seats,) + o.shape).copy() for o in obs]
    batch = _batch(np.random.default_rng(3), c, q, k * h, lq, din)
    fns, diffs = {}, {}
    for tag, model in (("new", new_model), ("old", old_model)):
        agent = coot_agent(model, params, k, h, lq, d)
        if tag == "old":
            agent = _previous_cache_layout(agent)
        state = _full_context_state(agent, key, k, h, d, None)
        diffs[tag] = jax.jit(agent.policy)(key, state, obs[0])[0]
        fns[f"batch 1, {tag}"] = Stepper(agent, state, obs, h, donate=True, batched=False)
        fns[f"{seats} seats, {tag}"] = Stepper(
            agent, _full_context_state(agent, key, k, h, d, seats), obs_b, h, donate=True,
            batched=True)
        grad = jax.jit(jax.value_and_grad(
            lambda pr, b, m=model: shared_context_loss(m, pr, b)[0]))
        fns[f"training, {tag}"] = (lambda g=grad: jax.block_until_ready(g(params, batch)))
    err = float(jnp.max(jnp.abs(diffs["new"] - diffs["old"])))
    calls = {"batch 1": steps, f"{seats} seats": max(steps // 20, 5), "training": 3}
    times = {n: [] for n in fns}
    for _ in range(rounds):
        for n, f in fns.items():
            times[n].append(median_ms(f, calls[n.split(",")[0]], warmup=2))
    out(f"(compare) previous vs current deployment path, same parameters, {rounds} alternating "
        f"rounds (median of round medians, ms; max |logit diff| {err:.1e}):")
    for part in calls:
        old, new = (statistics.median(times[f"{part}, {t}"]) for t in ("old", "new"))
        per = {"batch 1": "per step", f"{seats} seats": "per call", "training": "per call"}[part]
        extra = f" = {new / (c * q):.3f} ms/example (old {old / (c * q):.3f})" \
            if part == "training" else (f" = {new / seats:.3f} ms/seat (old {old / seats:.3f})"
                                        if part != "batch 1" else "")
        out(f"  {part:<10s} old {old:9.3f}  new {new:9.3f} {per}  x{old / new:.2f}{extra}")


def _batch(rng, c: int, q: int, p: int, lq: int, din: int) -> Batch:
    return Batch(jnp.asarray(rng.integers(0, 3, (c, p, din)), jnp.float32),
                 jnp.asarray(rng.integers(0, 3, (c, q, lq, din)), jnp.float32),
                 jnp.asarray(rng.integers(0, 6, (c, q, lq)), jnp.int32),
                 jnp.ones((c, q, lq), bool))


def bench_training(cfg: GPTConfig, c: int, q: int, p: int, lq: int, per_example: int,
                   repeats: int, out) -> None:
    d = int(np.prod(OBS_SHAPE))
    din = d + cfg.num_actions + 1
    model = make_gpt(cfg)
    params = init_gpt(cfg, jax.random.PRNGKey(0), din)
    rng = np.random.default_rng(3)
    batch = _batch(rng, c, q, p, lq, din)
    # the per-example reference on the first `per_example` queries of the first context
    small = Batch(batch.context[:1], batch.query[:1, :per_example],
                  batch.label[:1, :per_example], batch.label_mask[:1, :per_example])
    shared = jax.jit(jax.value_and_grad(lambda pr, b: shared_context_loss(model, pr, b)[0]))
    single = jax.jit(jax.value_and_grad(lambda pr, b: per_example_loss(model, pr, b)[0]))

    def run_shared():
        jax.block_until_ready(shared(params, batch))

    def run_single():
        jax.block_until_ready(single(params, small))

    t_shared = 1e3 * best_time(run_shared, repeats) / (c * q)
    t_single = 1e3 * best_time(run_single, repeats) / per_example
    out(f"(c) training, forward + backward per example ({p}-token contexts, queries of {lq}):")
    out(f"  shared_context_loss (C = {c} x Q = {q} = {c * q} examples): {t_shared:8.3f} "
        f"ms/example")
    out(f"  per_example_loss    ({per_example} examples, {p + lq} tokens each): {t_single:8.3f} "
        f"ms/example")
    out(f"  ratio per-example / shared: x{t_single / t_shared:.1f} (target >= 20x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    ap.add_argument("--out", help="also write the report to this file")
    ap.add_argument("--steps", type=int, default=400, help="timed act calls per round")
    ap.add_argument("--seats", type=int, default=20)
    ap.add_argument("--per-example-queries", type=int, default=4,
                    help="examples of the per_example_loss anchor (each a full pass)")
    ap.add_argument("--repeats", type=int, default=3, help="timed training calls (best kept)")
    ap.add_argument("--parts", default="inference,training",
                    help="comma-separated: inference ((a) and (b)), training ((c)), compare "
                         "(previous attention and cache layout vs current, alternating)")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds of compare")
    args = ap.parse_args()
    lines = []

    def out(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    if args.quick:
        k, h, lq, c, q = 2, 10, 3, 2, 5
        cfg = GPTConfig(num_layers=1, num_heads=2, width=16, max_positions=k * h + lq)
        steps, per_example, seats, repeats = 20, 2, 3, 1
    else:
        k, h, lq, c, q = 5, 200, 6, 2, 70
        cfg = GPTConfig()
        steps, per_example, seats, repeats = (args.steps, args.per_example_queries, args.seats,
                                              args.repeats)
    out(f"bench_coot: jax {jax.__version__} on {jax.devices()[0].platform} "
        f"({os.cpu_count()} CPUs, {platform.machine()}, XLA_FLAGS="
        f"{os.environ.get('XLA_FLAGS', '')!r}), GPT {cfg.num_layers} layers x "
        f"{cfg.num_heads} heads x {cfg.width}{' [--quick]' if args.quick else ''}; "
        f"load average at start {_loadavg()}")
    t0 = time.perf_counter()
    parts = set(args.parts.split(","))
    if "inference" in parts:
        bench_inference(cfg, k, h, lq, steps, seats, out)
    if "training" in parts:
        bench_training(cfg, c, q, k * h, lq, per_example, repeats, out)
    if "compare" in parts:
        bench_compare(cfg, k, h, lq, steps, seats, c, q, 2 if args.quick else args.rounds, out)
    out(f"load average at end {_loadavg()}; {time.perf_counter() - t0:.0f} s")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
