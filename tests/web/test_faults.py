"""Faults against a real server process (``python -m coplay.cli study serve``): SIGKILL in
the middle of an episode loses no step the page saw (at most the one in flight) and, restarted
on the same database, the participant continues from there; a study file naming an unknown
agent or layout is refused with a clear message; an oversized frame closes only its own
connection."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from coplay.envs.overcooked.state import STAY
from coplay.web.store import Store

from .conftest import PRE, is_subsequence, msg, study_toml

L = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(study_file, db, port) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "coplay.cli", "study", "serve", str(study_file), "--db", str(db),
         "--port", str(port), "--admin-secret", "s3cret"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
            return proc
        except OSError:
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)


def join(port) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/join", data=b"{}",
                                 method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())["token"]


def greet(ws, token) -> dict:
    ws.send(msg(type="hello", token=token))
    assert json.loads(ws.recv(timeout=10))["type"] == "layout"
    return json.loads(ws.recv(timeout=10))


@pytest.fixture
def server_files(tmp_path):
    f = tmp_path / "study.toml"
    f.write_text(study_toml(episode_length=L, episodes=1, tick_hz=10))
    return f, tmp_path / "study.sqlite"


def test_sigkill_mid_episode_and_resume(server_files):
    study_file, db = server_files
    port = free_port()
    proc = start(study_file, db, port)
    sent, seen = [], 0
    try:
        token = join(port)
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            greet(ws, token)
            ws.send(msg(type="consent", agree=True))
            ws.recv(timeout=10)
            ws.send(msg(type="pre", answers=PRE))
            ws.recv(timeout=10)
            ws.send(msg(type="start"))
            while seen < 7:
                m = json.loads(ws.recv(timeout=10))
                if m["type"] == "frame":
                    seen = m["t"]
                    if seen % 2 == 1:
                        sent.append((2, 3, 5)[len(sent) % 3])
                        ws.send(msg(type="key", action=sent[-1]))
            os.kill(proc.pid, signal.SIGKILL)  # mid-episode: frame `seen` was on the page
            proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proc = start(study_file, db, port)  # same database, same port: the page reconnects
    try:
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            ph = greet(ws, token)
            k = ph["resume"]
            assert ph["phase"] == "ready" and ph["episode"] == 1
            assert seen <= k <= seen + 1, (seen, k)  # at most the step in flight is lost
            ws.send(msg(type="start"))
            frames = []
            while True:
                m = json.loads(ws.recv(timeout=10))
                if m["type"] == "frame":
                    frames.append(m["t"])
                    if len(frames) == 3:
                        sent.append(1)
                        ws.send(msg(type="key", action=1))
                elif m["type"] == "phase" and m["phase"] == "rate":
                    break
            assert frames == list(range(k, L + 1))
    finally:
        proc.kill()
        proc.wait()
    store = Store(db)
    eps = store.db.execute("SELECT id, status FROM episodes").fetchall()
    assert [e["status"] for e in eps] == ["done"]  # one episode row, continued, not replayed
    steps = store.steps(eps[0]["id"])
    assert [s["t"] for s in steps] == list(range(L))
    pressed = [s["human_action"] for s in steps if s["human_action"] != STAY]
    assert is_subsequence(pressed, sent) and len(pressed) >= len(sent) - 2, (pressed, sent)
    assert 1 in pressed[-2:]  # the key sent after the restart was played


@pytest.mark.parametrize("edit, says", [
    (lambda t: t.replace('"scripted:0.1"', '"zoo:cramped_room/nobody-s0"'),
     "agents[1] (beta).ref = 'zoo:cramped_room/nobody-s0': cannot load this agent"),
    (lambda t: t.replace('"cramped_room"', '"narnia"'), "study.layout = 'narnia': not a layout"),
])
def test_a_bad_study_file_is_refused(tmp_path, edit, says):
    f = tmp_path / "bad.toml"
    f.write_text(edit(study_toml()))
    r = subprocess.run([sys.executable, "-m", "coplay.cli", "study", "serve", str(f), "--db",
                        str(tmp_path / "x.sqlite"), "--port", str(free_port())],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_oversized_and_binary_frames_close_only_their_connection(server_files):
    study_file, db = server_files
    port = free_port()
    proc = start(study_file, db, port)
    try:
        a, b = join(port), join(port)
        with connect(f"ws://127.0.0.1:{port}/ws") as good:
            assert greet(good, a)["phase"] == "consent"
            with connect(f"ws://127.0.0.1:{port}/ws") as bad:
                greet(bad, b)
                bad.send(b"\x00" * 10)
                assert "JSON text" in json.loads(bad.recv(timeout=10))["message"]
                bad.send(msg(type="hello", token="x" * 20_000))  # over the 16 KiB frame limit
                with pytest.raises(ConnectionClosed) as e:
                    bad.recv(timeout=10)
                assert e.value.rcvd.code == 1009  # message too big
            good.send(msg(type="consent", agree=True))  # the other session is unharmed
            assert json.loads(good.recv(timeout=10))["phase"] == "pre"
        with connect(f"ws://127.0.0.1:{port}/ws") as again:  # and so is the server
            assert greet(again, b)["phase"] == "consent"
    finally:
        proc.kill()
        proc.wait()
