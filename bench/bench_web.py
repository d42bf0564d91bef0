"""Study server under load: N simulated participants at once against one server process.

Starts ``coplay study serve`` (a subprocess, scripted partner cooks on random1, the default tick
of 6 steps/s unless --tick) on a fresh database, then N websocket clients join, consent, answer
the questionnaire and play one episode each at the same time, pressing a random key every frame.
Prints, from the database: tick lateness p50 / p99 / max (ms after the step was due), steps
expected vs recorded (and frames the clients received), and the achieved tick rate as a ratio
of the nominal one (per episode, first to last step).

Usage: python bench/bench_web.py [--participants 20] [--steps 200] [--tick 6] [--quick]
Machines here are shared and noisy (a training job may hold the CPU): read lateness against
the tick period (167 ms at 6 steps/s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import websockets

STUDY = """
[study]
name = "bench"
layout = "{layout}"
episode_length = {steps}
episodes_per_agent = 1
tick_hz = {tick}

[[agents]]
name = "a"
ref = "{ref}"
colour = "red"
"""
PRE = {"age": 30, "gender": "no answer", "overcooked": "never", "gaming": 3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{proc.stdout.read()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("server did not come up") from None
            time.sleep(0.2)


def join(port: int) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/join", data=b"{}",
                                 method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["token"]


async def participant(port: int, token: str, rng: random.Random) -> int:
    """One simulated page through consent, questionnaire and one episode; frames received."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.send(json.dumps({"type": "hello", "token": token}))
        await ws.recv()
        await ws.recv()
        await ws.send(json.dumps({"type": "consent", "agree": True}))
        await ws.recv()
        await ws.send(json.dumps({"type": "pre", "answers": PRE}))
        await ws.recv()
        await ws.send(json.dumps({"type": "start"}))
        frames = 0
        while True:
            m = json.loads(await ws.recv())
            if m["type"] == "frame":
                frames += 1
                await ws.send(json.dumps({"type": "key", "action": rng.randrange(6)}))
            elif m["type"] == "phase" and m["phase"] != "play":
                return frames
            elif m["type"] == "error":
                raise RuntimeError(m["message"])


async def crowd(port: int, n: int) -> list[int]:
    tokens = [join(port) for _ in range(n)]
    return await asyncio.gather(*(participant(port, t, random.Random(i))
                                  for i, t in enumerate(tokens)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--participants", type=int, default=20)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--tick", type=float, default=6.0)
    ap.add_argument("--layout", default="random1")
    ap.add_argument("--ref", default="scripted", help="the partner agent (agent reference)")
    ap.add_argument("--quick", action="store_true", help="30 steps")
    args = ap.parse_args()
    steps = 30 if args.quick else args.steps
    with tempfile.TemporaryDirectory() as tmp:
        study, db, port = Path(tmp) / "bench.toml", Path(tmp) / "bench.sqlite", free_port()
        study.write_text(STUDY.format(layout=args.layout, steps=steps, tick=args.tick,
                                      ref=args.ref))
        proc = subprocess.Popen([sys.executable, "-m", "coplay.cli", "study", "serve",
                                 str(study), "--db", str(db), "--port", str(port),
                                 "--admin-secret", "bench"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_up(proc, port)
            t0 = time.perf_counter()
            frames = asyncio.run(crowd(port, args.participants))
            wall = time.perf_counter() - t0
        finally:
            proc.kill()
            proc.wait()
        con = sqlite3.connect(db)
        late = np.array([r[0] for r in con.execute("SELECT lateness FROM steps")]) * 1e3
        rates = [(n - 1) / (hi - lo) for n, lo, hi in con.execute(
            "SELECT COUNT(*), MIN(tick_time), MAX(tick_time) FROM steps GROUP BY episode_id")]
        done = con.execute("SELECT COUNT(*) FROM episodes WHERE status = 'done'").fetchone()[0]
    expected = args.participants * steps
    print(f"{args.participants} participants x {steps} steps at {args.tick:g} steps/s "
          f"({args.layout}, partner {args.ref}), one server process; wall {wall:.1f} s")
    print(f"tick lateness ms: p50 {np.percentile(late, 50):.1f}  p99 "
          f"{np.percentile(late, 99):.1f}  max {late.max():.1f}  (period "
          f"{1e3 / args.tick:.0f} ms)")
    print(f"steps expected {expected}, recorded {late.size}, lost {expected - late.size}; "
          f"episodes done {done}/{args.participants}; frames received {sum(frames)} "
          f"(expected {args.participants * (steps + 1)})")
    print(f"achieved / nominal tick rate: mean {np.mean(rates) / args.tick:.3f}, "
          f"worst {np.min(rates) / args.tick:.3f}")


if __name__ == "__main__":
    main()
