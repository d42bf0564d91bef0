"""The ASGI app through starlette's test client: a whole study over the websocket with the
database checked against what the client sent, tokens, bad input, reload mid-episode, admin."""

from __future__ import annotations

import json
import warnings

import pytest
from starlette.websockets import WebSocketDisconnect

from coplay.envs.overcooked.state import STAY
from coplay.web.server import create_app

with warnings.catch_warnings():  # starlette 1.x: "use httpx2" (httpx still works)
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from .conftest import PRE, SECRET, db_steps, is_subsequence, msg, play_episode

RATINGS = [dict(competence=4, collaboration=2, adaptivity=5, comment="kept the pot busy"),
           dict(competence=1, collaboration=3, adaptivity=1, comment="")]


@pytest.fixture
def client(study):
    with TestClient(create_app(study, SECRET)) as c:
        yield c


def join(client) -> str:
    r = client.post("/api/join", content=b'{"external_id": "prolific-7"}')
    assert r.status_code == 200, r.text
    return r.json()["token"]


def hello(ws, token: str) -> dict:
    ws.send_text(msg(type="hello", token=token))
    layout = ws.receive_json()
    assert layout["type"] == "layout" and layout["episode_length"] == 12
    return ws.receive_json()


def test_a_whole_study_and_its_rows(client, study):
    token = join(client)
    store, L = study.store, study.cfg.episode_length
    with client.websocket_connect("/ws") as ws:
        assert hello(ws, token)["phase"] == "consent"
        ws.send_text(msg(type="consent", agree=True))
        assert ws.receive_json()["phase"] == "pre"
        ws.send_text(msg(type="pre", answers=PRE))
        ph = ws.receive_json()
        played = []
        for slot in range(2):
            assert (ph["phase"], ph["agent"], ph["episode"]) == ("ready", slot + 1, 1)
            shown = ph["colour"]
            run = play_episode(ws)
            assert run["frames"] == list(range(L + 1))
            played.append((shown, run["sent"]))
            assert run["phase"]["phase"] == "rate"
            ws.send_text(msg(type="rating", **RATINGS[slot]))
            ph = ws.receive_json()
        assert ph["phase"] == "done" and len(ph["code"]) == 10
    p = store.participant_by_token(token)
    assert p["external_id"] == "prolific-7" and p["completion_code"] == ph["code"]
    order = json.loads(p["agent_order"])
    assert sorted(order) == ["alpha", "beta"]
    colours = {a.name: a.hex for a in study.cfg.agents}
    assert [c for c, _ in played] == [colours[n] for n in order]
    rows = db_steps(store)
    assert len(rows) == 2 * L
    for slot, (_, sent) in enumerate(played):
        mine = [r for r in rows if r["slot"] == slot]
        assert [r["t"] for r in mine] == list(range(L))
        assert {r["agent"] for r in mine} == {order[slot]} and {r["status"] for r in mine} == {
            "done"}
        pressed = [r["human_action"] for r in mine if r["human_action"] != STAY]
        assert is_subsequence(pressed, sent) and len(pressed) >= len(sent) - 1, (pressed, sent)
    answers = store.answers(p["id"])
    assert json.loads(answers[0]["data"]) == PRE and answers[0]["kind"] == "pre"
    for slot in range(2):
        a = answers[1 + slot]
        assert (a["kind"], a["slot"], a["agent"]) == ("rating", slot, order[slot])
        assert json.loads(a["data"]) == RATINGS[slot]
    assert store.db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0] == 2


def test_unknown_token_is_refused(client, study):
    with client.websocket_connect("/ws") as ws:
        ws.send_text(msg(type="hello", token="not-a-token"))
        assert ws.receive_json() == {"type": "error", "message": "unknown token"}
        with pytest.raises(WebSocketDisconnect) as e:
            ws.receive_json()
        assert e.value.code == 4401
    with client.websocket_connect("/ws") as ws:  # anything before hello
        ws.send_text(msg(type="consent", agree=True))
        assert ws.receive_json()["message"] == "the first message must be hello"
    assert study.store.count_participants() == 0


def test_a_token_reaches_only_its_own_participant(client, study):
    a, b = join(client), join(client)
    with client.websocket_connect("/ws") as ws:
        assert hello(ws, b)["phase"] == "consent"
        ws.send_text(msg(type="consent", agree=True))
        assert ws.receive_json()["phase"] == "pre"
        ws.send_text(msg(type="hello", token=a))  # switching to another participant
        assert ws.receive_json()["message"] == "hello: already greeted"
        ws.send_text(msg(type="pre", answers=PRE))
        assert ws.receive_json()["phase"] == "ready"
    pa, pb = study.store.participant_by_token(a), study.store.participant_by_token(b)
    assert pa["consent_at"] is None and pb["consent_at"] is not None
    assert study.store.answers(pa["id"]) == [] and len(study.store.answers(pb["id"])) == 1
    with client.websocket_connect("/ws") as ws:
        assert hello(ws, a)["phase"] == "consent"


@pytest.mark.parametrize("raw, says", [
    ("{oops", "malformed JSON"),
    ('{"type": "key", "action": 9}', "key.action"),
    ('{"type": "start"}', "start: not expected now (phase consent)"),
    ('{"type": "key", "action": 1}', "key: no episode is running (phase consent)"),
    ('{"type": "rating", "competence": 1, "collaboration": 1, "adaptivity": 1}',
     "rating: not expected now"),
    ('{"type": "pre", "answers": ' + json.dumps(PRE) + '}', "pre: not expected now"),
    (json.dumps({"type": "hello", "token": "x" * 5000}), "too large"),
    ('{"type": "drop table"}', "unknown message type"),
])
def test_bad_messages_are_rejected_and_the_session_goes_on(client, study, raw, says):
    token = join(client)
    with client.websocket_connect("/ws") as ws:
        hello(ws, token)
        ws.send_text(raw)
        m = ws.receive_json()
        assert m["type"] == "error" and says in m["message"], m
        ws.send_bytes(b"\x00\x01")
        assert "JSON text" in ws.receive_json()["message"]
        ws.send_text(msg(type="consent", agree=True))  # the session still works
        assert ws.receive_json()["phase"] == "pre"
    assert study.store.participant_by_token(token)["consent_at"] is not None
    assert study.store.answers() == []


def test_a_flood_is_closed(client):
    token = join(client)
    with client.websocket_connect("/ws") as ws:
        hello(ws, token)
        for _ in range(60):
            ws.send_text("{bad")
        errors = [ws.receive_json() for _ in range(52)]
        assert errors[-1]["message"] == "too many rejected messages: closing"
        with pytest.raises(WebSocketDisconnect) as e:
            ws.receive_json()
        assert e.value.code == 4400
    with client.websocket_connect("/ws") as ws:  # the participant may come back
        assert hello(ws, token)["phase"] == "consent"


def test_reload_mid_episode_continues_from_the_last_step(client, study):
    token = join(client)
    L = study.cfg.episode_length
    with client.websocket_connect("/ws") as ws:
        hello(ws, token)
        ws.send_text(msg(type="consent", agree=True))
        ws.receive_json()
        ws.send_text(msg(type="pre", answers=PRE))
        ws.receive_json()
        ws.send_text(msg(type="start"))
        assert ws.receive_json()["phase"] == "play"
        seen = 0
        while seen < 5:
            m = ws.receive_json()
            if m["type"] == "frame":
                seen = m["t"]
                if seen == 2:
                    ws.send_text(msg(type="key", action=3))
    with client.websocket_connect("/ws") as ws:  # the page reloads
        ph = hello(ws, token)
        k = ph["resume"]
        assert ph["phase"] == "ready" and ph["episode"] == 1 and k in (5, 6), ph
        run = play_episode(ws, every=100)
        assert run["frames"] == list(range(k, L + 1))
    rows = db_steps(study.store)
    assert [r["t"] for r in rows] == list(range(L))  # one episode row, no step twice or lost
    assert {r["status"] for r in rows} == {"done"}
    assert 3 in [r["human_action"] for r in rows[:k]]


def test_join_and_admin_are_checked(client, study):
    assert client.post("/api/join", content=b'{"external_id": "../../x"}').status_code == 400
    assert client.post("/api/join", content=b"{oops").status_code == 400
    assert client.post("/api/join", content=b"x" * 2000).status_code == 413
    assert client.get("/admin/status").status_code == 401
    h = {"authorization": "Bearer wrong"}
    assert client.get("/admin/status", headers=h).status_code == 401
    join(client)
    r = client.get("/admin/status", headers={"authorization": f"Bearer {SECRET}"})
    assert r.status_code == 200 and r.json()["participants"] == 1
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../store.py").status_code == 404
