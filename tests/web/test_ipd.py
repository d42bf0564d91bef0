"""The IPD study page: 100 rounds of the prisoner's dilemma against IPD agents, one round per
move, the history in every frame; rows checked against the moves sent and the agents' rules;
a reload mid-game continues from the last round; a real Chromium clicks through it."""

from __future__ import annotations

import json
import os
import time
import warnings

import pytest
from playwright.sync_api import sync_playwright

from coplay.config import ConfigError
from coplay.web.runtime import make_runtime
from coplay.web.server import create_app
from coplay.web.session import Study
from coplay.web.store import Store
from coplay.web.study import load_agents, parse_study

from .conftest import PRE, SECRET, Server, db_steps, msg
from .test_browser import SHOT, chromium

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ROUNDS = 100
PAYOFF = [[1.0, -1.0], [2.0, 0.0]]  # own points [own][other]: the spec's IPD
IPD_TOML = f"""
[study]
name = "ipd-tiny"
game = "ipd"
episode_length = {ROUNDS}
episodes_per_agent = 1

[[agents]]
name = "tft"
ref = "classic:TFT"
colour = "purple"

[[agents]]
name = "alld"
ref = "classic:AllD"
colour = "teal"
"""


def moves(n: int) -> list[int]:
    return [(t * 7 // 3 + t // 5) % 2 for t in range(n)]  # a fixed mix of C (0) and D (1)


@pytest.fixture(scope="module")
def ipd_runtime():
    cfg = parse_study(IPD_TOML)
    rt = make_runtime(cfg, load_agents(cfg))
    rt.warm_up()
    return rt


@pytest.fixture
def ipd_study(ipd_runtime, tmp_path):
    store = Store(tmp_path / "ipd.sqlite")
    store.set_meta("study", ipd_runtime.cfg.to_json())
    yield Study(ipd_runtime, store)
    store.close()


def test_ipd_study_files():
    with pytest.raises(ConfigError, match=r"agents\[0\].*unknown IPD strategy 'TTF'"):
        load_agents(parse_study(IPD_TOML.replace("classic:TFT", "classic:TTF")))
    with pytest.raises(ConfigError, match=r"study.game"):
        parse_study(IPD_TOML.replace('game = "ipd"', 'game = "chess"'))
    with pytest.raises(ConfigError, match=r"agents\[0\] \(tft\).ref = 'scripted'"):
        load_agents(parse_study(IPD_TOML.replace("classic:TFT", "scripted")))


def expected_agent(name: str, human: list[int]) -> list[int]:
    return [0] + human[:-1] if name == "tft" else [1] * len(human)


def start_playing(ws, token):
    ws.send_text(msg(type="hello", token=token))
    layout = ws.receive_json()
    assert layout["game"] == "ipd" and layout["payoff"] == PAYOFF
    assert ws.receive_json()["phase"] == "consent"
    ws.send_text(msg(type="consent", agree=True))
    ws.receive_json()
    ws.send_text(msg(type="pre", answers=PRE))
    return ws.receive_json()


def play_rounds(ws, sent: list[int], upto: int) -> dict:
    """Move until round ``upto`` (or the game's end); the last frame."""
    while True:
        m = ws.receive_json()
        if m["type"] == "frame":
            last = m
            if m["t"] >= upto:
                return last
            if m["t"] == ROUNDS:  # the last round's result: the phase follows
                continue
            sent.append(moves(ROUNDS)[m["t"]])
            time.sleep(0.02)  # a participant's pace: under the 60 messages/s rate limit
            ws.send_text(msg(type="key", action=sent[-1]))
        elif m["type"] == "phase" and m["phase"] != "play":
            return {**last, "phase": m}
        elif m["type"] == "error":
            raise AssertionError(m)


def test_a_hundred_rounds_against_each_agent(ipd_study):
    with TestClient(create_app(ipd_study, SECRET)) as client:
        token = client.post("/api/join").json()["token"]
        with client.websocket_connect("/ws") as ws:
            ph = start_playing(ws, token)
            for slot in range(2):
                assert ph["phase"] == "ready"
                ws.send_text(msg(type="start"))
                assert ws.receive_json()["phase"] == "play"
                sent: list[int] = []
                last = play_rounds(ws, sent, ROUNDS + 1)
                assert sent == moves(ROUNDS) and last["t"] == ROUNDS
                ph = last["phase"]
                assert ph["phase"] == "rate"
                ws.send_text(msg(type="key", action=0))  # no game running now
                assert "no episode is running" in ws.receive_json()["message"]
                ws.send_text(msg(type="rating", competence=3, collaboration=3, adaptivity=3))
                ph = ws.receive_json()
                name = json.loads(ipd_study.store.participant_by_token(token)["agent_order"])[
                    slot]
                want = expected_agent(name, sent)
                assert [h[1] for h in last["history"]] == want
                assert [h[2] for h in last["history"]] == [PAYOFF[a][b] for a, b in
                                                           zip(sent, want, strict=True)]
                assert last["score"] == sum(PAYOFF[a][b] for a, b in zip(sent, want,
                                                                          strict=True))
            assert ph["phase"] == "done"
    rows = db_steps(ipd_study.store)
    assert len(rows) == 2 * ROUNDS
    for slot in range(2):
        mine = [r for r in rows if r["slot"] == slot]
        assert [r["human_action"] for r in mine] == moves(ROUNDS)  # exactly the moves sent
        assert [r["agent_action"] for r in mine] == expected_agent(mine[0]["agent"],
                                                                   moves(ROUNDS))


def test_ipd_rejects_non_moves_and_resumes_after_a_reload(ipd_study):
    with TestClient(create_app(ipd_study, SECRET)) as client:
        token = client.post("/api/join").json()["token"]
        with client.websocket_connect("/ws") as ws:
            start_playing(ws, token)
            ws.send_text(msg(type="start"))
            ws.receive_json()
            assert ws.receive_json()["t"] == 0
            ws.send_text(msg(type="key", action=4))
            assert "0 (cooperate) or 1 (defect)" in ws.receive_json()["message"]
            sent: list[int] = []
            ws.send_text(msg(type="key", action=moves(1)[0]))
            sent.append(moves(1)[0])
            play_rounds(ws, sent, 30)
        with client.websocket_connect("/ws") as ws:
            ws.send_text(msg(type="hello", token=token))
            ws.receive_json()
            ph = ws.receive_json()
            assert ph["phase"] == "ready" and ph["resume"] == 30
            ws.send_text(msg(type="start"))
            ws.receive_json()
            first = ws.receive_json()
            assert first["t"] == 30 and len(first["history"]) == 30
            ws.send_text(msg(type="key", action=moves(31)[30]))
            sent.append(moves(31)[30])
            last = play_rounds(ws, sent, ROUNDS + 1)
            assert last["t"] == ROUNDS and sent == moves(ROUNDS)
    rows = [r for r in db_steps(ipd_study.store) if r["slot"] == 0]
    assert [r["t"] for r in rows] == list(range(ROUNDS)) and {r["status"] for r in rows} == {
        "done"}
    assert [r["human_action"] for r in rows] == moves(ROUNDS)


@pytest.mark.skipif(chromium() is None, reason="no chromium executable found (Debian: "
                    "apt-get install chromium; or set COPLAY_CHROMIUM)")
def test_the_ipd_page_in_a_real_browser(ipd_study, tmp_path):
    shot = (SHOT.with_name("ipd.png") if os.environ.get("COPLAY_SAVE_SCREENSHOT") == "1"
            else tmp_path / "ipd.png")
    with Server(create_app(ipd_study, SECRET)) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 700, "height": 700})
        page.goto(server.url)
        page.check("#consent-box")
        page.click("#consent-go")
        for name, value in (("age", "40"), ("gaming", "2")):
            page.fill(f"input[name={name}]", value)
        page.select_option("select[name=gender]", "female")
        page.select_option("select[name=overcooked]", "never")
        page.click("#pre-go")
        for slot in range(2):
            page.wait_for_selector("#ready:not([hidden])")
            page.click("#start-go")
            page.wait_for_selector("#ipd:not([hidden])")
            for t, a in enumerate(moves(ROUNDS)):
                if t:  # the previous round's result is on the page (rows: one per round)
                    page.wait_for_selector(f"#ipd-history tbody tr:nth-child({t})",
                                           state="attached")
                if t % 2:
                    page.keyboard.press("c" if a == 0 else "d")
                else:
                    page.click("#ipd-c" if a == 0 else "#ipd-d")
                if slot == 0 and t == 12:
                    page.wait_for_selector("#ipd-history tbody tr:nth-child(13)",
                                           state="attached")
                    page.screenshot(path=str(shot))
            page.wait_for_selector("#rate:not([hidden])")
            for f in ("competence", "collaboration", "adaptivity"):
                page.check(f"#rate-form input[name={f}][value='{2 + slot}']")
            page.click("#rate-go")
        page.wait_for_selector("#done:not([hidden])")
        code = page.text_content("#code")
        browser.close()
    p0 = ipd_study.store.participants()[0]
    assert p0["completion_code"] == code
    rows = db_steps(ipd_study.store)
    for slot in range(2):
        mine = [r for r in rows if r["slot"] == slot]
        assert [r["human_action"] for r in mine] == moves(ROUNDS)
    ratings = [json.loads(a["data"]) for a in ipd_study.store.answers() if a["kind"] == "rating"]
    assert [r["competence"] for r in ratings] == [2, 3]
    assert shot.is_file() and shot.stat().st_size < 200_000
