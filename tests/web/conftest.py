"""Shared pieces of the web tests: a tiny study (cramped_room, 12-step episodes, two scripted
cooks, a fast tick), its runtime compiled once per test session, a fresh database per test, and
a real uvicorn server in a thread (bound to a free port)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from coplay.web.runtime import GameRuntime
from coplay.web.server import create_app
from coplay.web.session import Study
from coplay.web.store import Store
from coplay.web.study import load_agents, parse_study

SECRET = "test-secret"
PRE = {"age": 31, "gender": "other", "overcooked": "a few times", "gaming": 4}


def study_toml(episode_length: int = 12, episodes: int = 1, tick_hz: float = 40.0,
               layout: str = "cramped_room", ref_b: str = "scripted:0.1") -> str:
    return f"""
[study]
name = "tiny"
layout = "{layout}"
episode_length = {episode_length}
episodes_per_agent = {episodes}
tick_hz = {tick_hz}

[[agents]]
name = "alpha"
ref = "scripted"
colour = "red"

[[agents]]
name = "beta"
ref = "{ref_b}"
colour = "green"
"""


@pytest.fixture(scope="session")
def runtime() -> GameRuntime:
    cfg = parse_study(study_toml())
    rt = GameRuntime(cfg, load_agents(cfg))
    rt.warm_up()
    return rt


@pytest.fixture
def study(runtime, tmp_path) -> Study:
    store = Store(tmp_path / "study.sqlite")
    store.set_meta("study", runtime.cfg.to_json())
    yield Study(runtime, store)
    store.close()


class Server:
    """uvicorn serving ``app`` on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                                    ws_max_size=16384))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def served(study):
    with Server(create_app(study, SECRET)) as s:
        s.study = study
        yield s


def msg(**kw) -> str:
    return json.dumps(kw)


def db_steps(store: Store) -> list:
    return store.db.execute("SELECT e.slot, e.agent, e.episode, e.status, s.t, s.human_action, "
                            "s.agent_action FROM steps s JOIN episodes e ON e.id = s.episode_id "
                            "ORDER BY e.id, s.t").fetchall()


@pytest.fixture
def study_file(tmp_path) -> Path:
    p = tmp_path / "study.toml"
    p.write_text(study_toml())
    return p


def play_episode(ws, every: int = 3, keys=(2, 3, 5, 0, 1)) -> dict:
    """Send start, then a key after every ``every``-th frame; read until the next phase.
    ``ws``: a starlette test websocket. Returns the keys sent, frames seen, the phase after."""
    ws.send_text(msg(type="start"))
    sent, frames, i = [], [], 0
    while True:
        m = ws.receive_json()
        if m["type"] == "frame":
            frames.append(m["t"])
            if len(frames) % every == 0:
                sent.append(keys[i % len(keys)])
                i += 1
                ws.send_text(msg(type="key", action=sent[-1]))
        elif m["type"] == "phase" and m["phase"] != "play":
            return {"sent": sent, "frames": frames, "phase": m}
        elif m["type"] == "error":
            raise AssertionError(m)


def is_subsequence(small: list, big: list) -> bool:
    it = iter(big)
    return all(x in it for x in small)
