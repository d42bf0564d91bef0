"""Export (trajectory shards + answers.csv) and report.md from a played study database."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np

from coplay.data.shards import ShardStore
from coplay.web.export import export_study, write_report
from coplay.web.server import create_app

from .conftest import PRE, SECRET, msg, play_episode

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def complete(client, store, ratings: dict[str, int], comment: str) -> tuple[int, dict]:
    """One participant through the whole study; ``ratings``: agent name -> score (all three
    fields). Returns (participant id, agent -> keys sent)."""
    token = client.post("/api/join").json()["token"]
    sent = {}
    with client.websocket_connect("/ws") as ws:
        ws.send_text(msg(type="hello", token=token))
        ws.receive_json()
        ws.receive_json()
        ws.send_text(msg(type="consent", agree=True))
        ws.receive_json()
        ws.send_text(msg(type="pre", answers=PRE))
        ws.receive_json()
        for _ in range(2):
            run = play_episode(ws)
            p = store.participant_by_token(token)
            name = json.loads(p["agent_order"])[run["phase"]["agent"] - 1]
            sent[name] = run["sent"]
            v = ratings[name]
            ws.send_text(msg(type="rating", competence=v, collaboration=v, adaptivity=v,
                             comment=f"{comment} {name}"))
            ws.receive_json()
    return p["id"], sent


def test_export_and_report(study, tmp_path):
    app = create_app(study, SECRET)
    with TestClient(app) as client:
        p1, _ = complete(client, study.store, {"alpha": 5, "beta": 2}, "first,")
        p2, _ = complete(client, study.store, {"alpha": 4, "beta": 4}, 'second "quoted"')
    db, L = study.store.path, study.cfg.episode_length
    paths = export_study(db, tmp_path / "out")
    names = {p.name for p in paths}
    assert {"alpha.npz", "beta.npz", "answers.csv", "manifest.json"} <= names
    shards = ShardStore(tmp_path / "out" / "trajectories")
    for agent in ("alpha", "beta"):
        s = shards.read(agent)
        assert s["obs"].shape[:2] == (2, L) and s["obs"].dtype == np.uint8
        assert s["action"].shape == (2, L) and s["partner_action"].shape == (2, L)
        assert sorted(s["participant"].tolist()) == [p1, p2]
        steps = study.store.db.execute(
            "SELECT s.human_action FROM steps s JOIN episodes e ON e.id = s.episode_id "
            "WHERE e.agent = ? AND e.participant_id = ? ORDER BY s.t", (agent, p1)).fetchall()
        row = s["participant"].tolist().index(p1)
        assert s["action"][row].tolist() == [r[0] for r in steps]
        np.testing.assert_allclose(s["ret"], s["reward"].sum(1))
    with open(tmp_path / "out" / "answers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    comments = {(r["participant"], r["agent"]): r["answer"] for r in rows
                if r["question"] == "comment"}
    assert comments[(str(p2), "beta")] == 'second "quoted" beta'
    assert sum(r["kind"] == "pre" for r in rows) == 2 * len(PRE)
    report = write_report(db, tmp_path / "out").read_text()
    assert "| alpha | 4.50 ± 0.50 (n=2)" in report  # competence: 5 and 4
    # alpha over beta: p1 prefers alpha (1), p2 ties (1/2) -> 0.75; beta over alpha 0.25
    assert "| alpha | – | 0.75 (n=2) |" in report and "| beta | 0.25 (n=2) | – |" in report
    assert "first, alpha" in report
