"""The SQLite store: WAL, every row as written, interrupted episodes found for resume."""

from __future__ import annotations

import json
import sqlite3

from coplay.web.store import Store


def test_wal_and_rows(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    assert store.journal_mode() == "wal"
    pid, token = store.add_participant(["b", "a"], "ext-1")
    pid2, token2 = store.add_participant(["a", "b"])
    assert len(token) >= 32 and token != token2
    assert store.participant_by_token(token)["id"] == pid
    assert store.participant_by_token(token + "x") is None
    assert store.participant_by_token("' OR 1=1 --") is None  # bound parameter, not SQL text
    assert json.loads(store.participant(pid)["agent_order"]) == ["b", "a"]
    sid = store.open_session(pid)
    eid = store.start_episode(pid, sid, 0, "b", 0, 0)
    for t in range(3):
        store.add_step(eid, t, {"pos": [[t, 0], [1, 1]]}, t, 4, float(t == 2), (0.5, 0.0),
                       100.0 + t, 0.001 * t)
    assert store.interrupted(pid, 0, 0) is None
    assert store.abort_running() == 1
    row = store.interrupted(pid, 0, 0)
    assert row["id"] == eid and row["status"] == "aborted"
    store.resume_episode(eid, sid)
    store.end_episode(eid, "done", 1.0)
    assert [e["id"] for e in store.done_episodes(pid, 0)] == [eid]
    assert store.done_episodes(pid2, 0) == []
    store.add_answer(pid, "pre", {"age": 30})
    store.add_answer(pid, "rating", {"competence": 2}, 0, "b")
    assert store.has_answer(pid, "rating", 0) and not store.has_answer(pid, "rating", 1)
    assert not store.has_answer(pid2, "pre")
    code = store.finish(pid)
    assert store.finish(pid) == code
    store.close()
    # another connection (a restarted server) sees every committed row
    db = sqlite3.connect(tmp_path / "s.sqlite")
    rows = db.execute("SELECT t, state, human_action, agent_action, reward, shaped_human, "
                      "lateness FROM steps ORDER BY t").fetchall()
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in rows] == [
        (0, 0, 4, 0.0, 0.5), (1, 1, 4, 0.0, 0.5), (2, 2, 4, 1.0, 0.5)]
    assert json.loads(rows[1][1]) == {"pos": [[1, 0], [1, 1]]}
    assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 2
