"""A real headless Chromium (Debian's, driven by Playwright) through a short study: consent,
questionnaire, arrow keys and space in two episodes, ratings, the thank-you page; the database
is checked against what the page sent. Takes a screenshot of the game page (kept as
docs/results/web/game.png when COPLAY_SAVE_SCREENSHOT=1). Skipped only when no chromium
executable is found."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from coplay.envs.overcooked.state import STAY
from coplay.web.server import create_app
from coplay.web.session import Study

from .conftest import PRE, SECRET, Server, db_steps, is_subsequence

SHOT = Path(__file__).resolve().parents[2] / "docs" / "results" / "web" / "game.png"
KEYS = {"ArrowUp": 0, "ArrowDown": 1, "ArrowRight": 2, "ArrowLeft": 3, "Space": 5}


def chromium() -> str | None:
    for c in (os.environ.get("COPLAY_CHROMIUM"), shutil.which("chromium"),
              shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if c and Path(c).is_file():
            return c
    return None


@pytest.fixture
def slow_study(study):
    """The tiny study at 12 steps/s (about a second per episode: time to press keys)."""
    rt = copy.copy(study.rt)
    rt.cfg = dataclasses.replace(rt.cfg, tick_hz=12.0)
    return Study(rt, study.store)


@pytest.mark.skipif(chromium() is None, reason="no chromium executable found (Debian: "
                    "apt-get install chromium; or set COPLAY_CHROMIUM)")
def test_a_study_in_a_real_browser(slow_study, tmp_path):
    shot = SHOT if os.environ.get("COPLAY_SAVE_SCREENSHOT") == "1" else tmp_path / "game.png"
    store, L = slow_study.store, slow_study.cfg.episode_length
    pressed: list[list[int]] = []
    with Server(create_app(slow_study, SECRET)) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 700, "height": 560})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/?pid=browser-1")
        page.wait_for_selector("#consent:not([hidden])")
        assert page.is_disabled("#consent-go")
        page.check("#consent-box")
        page.click("#consent-go")
        page.wait_for_selector("#pre:not([hidden])")
        page.fill("input[name=age]", str(PRE["age"]))
        page.select_option("select[name=gender]", PRE["gender"])
        page.select_option("select[name=overcooked]", PRE["overcooked"])
        page.fill("input[name=gaming]", str(PRE["gaming"]))
        page.click("#pre-go")
        for slot in range(2):
            page.wait_for_selector("#ready:not([hidden])")
            assert page.text_content("#ready .agent-n") == str(slot + 1)
            page.click("#start-go")
            page.wait_for_selector("#play:not([hidden])")
            keys = []
            for i in range(40):
                if page.is_visible("#rate"):
                    break
                name = list(KEYS)[i % len(KEYS)]
                page.keyboard.press(name)
                keys.append(KEYS[name])
                if slot == 0 and i == 6:
                    page.screenshot(path=str(shot))
                page.wait_for_timeout(110)
            pressed.append(keys)
            page.wait_for_selector("#rate:not([hidden])")
            for f, v in (("competence", 4), ("collaboration", 3 - slot), ("adaptivity", 5)):
                page.check(f"#rate-form input[name={f}][value='{v}']")
            page.fill("#rate-form textarea", f"browser comment {slot}")
            page.click("#rate-go")
        page.wait_for_selector("#done:not([hidden])")
        code = page.text_content("#code")
        log = page.evaluate("window.coplayLog")
        assert int(page.text_content("#time-left")) == 0
        browser.close()
    assert not errors, errors
    p = store.participants()
    assert len(p) == 1 and p[0]["completion_code"] == code and p[0]["external_id"] == "browser-1"
    # The page saw every press; each met in play became a message. A press can race the
    # episode's end (the test looks at the page, then presses): the page drops it, and only
    # the last press of an episode may be so dropped.
    seen = [KEYS["Space" if k["key"] == " " else k["key"]] for k in log["keys"]]
    assert seen == [k for ks in pressed for k in ks]
    sent_keys = [m["action"] for m in log["sent"] if m["type"] == "key"]
    assert sent_keys == [KEYS["Space" if k["key"] == " " else k["key"]]
                         for k in log["keys"] if k["phase"] == "play"]
    phases = [k["phase"] for k in log["keys"]]
    for slot in range(2):
        mine = phases[sum(map(len, pressed[:slot])):][:len(pressed[slot])]
        assert mine[:-1] == ["play"] * (len(mine) - 1), mine
    rows = db_steps(store)
    assert len(rows) == 2 * L and log["frames"] == 2 * (L + 1)
    order = json.loads(p[0]["agent_order"])
    for slot in range(2):
        mine = [r for r in rows if r["slot"] == slot]
        assert [r["t"] for r in mine] == list(range(L)) and mine[0]["agent"] == order[slot]
        got = [r["human_action"] for r in mine if r["human_action"] != STAY]
        assert got and is_subsequence(got, pressed[slot]), (got, pressed[slot])
    answers = store.answers()
    assert json.loads(answers[0]["data"]) == PRE
    assert [json.loads(a["data"]) for a in answers[1:]] == [
        {"competence": 4, "collaboration": 3 - s, "adaptivity": 5,
         "comment": f"browser comment {s}"} for s in range(2)]
    assert shot.is_file() and 1000 < shot.stat().st_size < 200_000
