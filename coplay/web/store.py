"""The study's SQLite database (WAL mode, parameterised SQL only).

Tables: ``meta`` (the study config), ``participants`` (token, seed, agent order, consent,
completion code), ``sessions`` (one row per websocket connection), ``episodes`` (status
running / done / aborted), ``steps`` (every step: the state before it, both actions, rewards,
tick time and lateness; committed as it happens, so a SIGKILL loses at most the step in
flight) and ``answers`` (pre-questionnaire and per-agent ratings, JSON).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
  id INTEGER PRIMARY KEY, token TEXT UNIQUE NOT NULL, external_id TEXT, created REAL NOT NULL,
  seed INTEGER NOT NULL, agent_order TEXT NOT NULL, consent_at REAL, completion_code TEXT,
  finished_at REAL);
CREATE TABLE IF NOT EXISTS sessions (
  id INTEGER PRIMARY KEY, participant_id INTEGER NOT NULL REFERENCES participants(id),
  connected_at REAL NOT NULL, disconnected_at REAL);
CREATE TABLE IF NOT EXISTS episodes (
  id INTEGER PRIMARY KEY, participant_id INTEGER NOT NULL REFERENCES participants(id),
  session_id INTEGER, slot INTEGER NOT NULL, agent TEXT NOT NULL, episode INTEGER NOT NULL,
  human_seat INTEGER NOT NULL, status TEXT NOT NULL, started REAL NOT NULL, ended REAL,
  score REAL);
CREATE TABLE IF NOT EXISTS steps (
  episode_id INTEGER NOT NULL REFERENCES episodes(id), t INTEGER NOT NULL, state TEXT NOT NULL,
  human_action INTEGER NOT NULL, agent_action INTEGER NOT NULL, reward REAL NOT NULL,
  shaped_human REAL NOT NULL, shaped_agent REAL NOT NULL, tick_time REAL NOT NULL,
  lateness REAL NOT NULL, PRIMARY KEY (episode_id, t));
CREATE TABLE IF NOT EXISTS answers (
  id INTEGER PRIMARY KEY, participant_id INTEGER NOT NULL REFERENCES participants(id),
  kind TEXT NOT NULL, slot INTEGER, agent TEXT, data TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS episodes_by_participant ON episodes(participant_id, slot);
"""


class Store:
    """One connection, used by one thread at a time (the server's event loop)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, isolation_level=None,  # autocommit
                                  check_same_thread=False)  # opened before the loop starts
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def journal_mode(self) -> str:
        return self.db.execute("PRAGMA journal_mode").fetchone()[0]

    # --- study --------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def abort_running(self) -> int:
        """Mark the episodes a killed server left running as aborted; how many."""
        cur = self.db.execute("UPDATE episodes SET status = 'aborted', ended = ? "
                              "WHERE status = 'running'", (time.time(),))
        return cur.rowcount

    # --- participants -------------------------------------------------------------------------
    def add_participant(self, order: list[str], external_id: str | None = None) -> tuple[int, str]:
        token = secrets.token_urlsafe(24)
        seed = secrets.randbelow(2**31)
        cur = self.db.execute(
            "INSERT INTO participants (token, external_id, created, seed, agent_order) "
            "VALUES (?, ?, ?, ?, ?)", (token, external_id, time.time(), seed, json.dumps(order)))
        return cur.lastrowid, token

    def participant_by_token(self, token: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM participants WHERE token = ?", (token,)).fetchone()

    def participant(self, pid: int) -> sqlite3.Row:
        return self.db.execute("SELECT * FROM participants WHERE id = ?", (pid,)).fetchone()

    def participants(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM participants ORDER BY id").fetchall()

    def count_participants(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM participants").fetchone()[0]

    def set_consent(self, pid: int) -> None:
        self.db.execute("UPDATE participants SET consent_at = ? WHERE id = ?", (time.time(), pid))

    def finish(self, pid: int) -> str:
        row = self.participant(pid)
        if row["completion_code"]:
            return row["completion_code"]
        code = secrets.token_hex(5).upper()
        self.db.execute("UPDATE participants SET completion_code = ?, finished_at = ? "
                        "WHERE id = ?", (code, time.time(), pid))
        return code

    # --- sessions -----------------------------------------------------------------------------
    def open_session(self, pid: int) -> int:
        return self.db.execute("INSERT INTO sessions (participant_id, connected_at) VALUES (?, ?)",
                               (pid, time.time())).lastrowid

    def close_session(self, sid: int) -> None:
        self.db.execute("UPDATE sessions SET disconnected_at = ? WHERE id = ?", (time.time(), sid))

    # --- episodes and steps -------------------------------------------------------------------
    def start_episode(self, pid: int, sid: int | None, slot: int, agent: str, episode: int,
                      human_seat: int) -> int:
        return self.db.execute(
            "INSERT INTO episodes (participant_id, session_id, slot, agent, episode, human_seat, "
            "status, started) VALUES (?, ?, ?, ?, ?, ?, 'running', ?)",
            (pid, sid, slot, agent, episode, human_seat, time.time())).lastrowid

    def add_step(self, episode_id: int, t: int, state: dict, human: int, agent: int,
                 reward: float, shaped: tuple[float, float], tick_time: float,
                 lateness: float) -> None:
        self.db.execute(
            "INSERT INTO steps (episode_id, t, state, human_action, agent_action, reward, "
            "shaped_human, shaped_agent, tick_time, lateness) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (episode_id, t, json.dumps(state, separators=(",", ":")), human, agent, reward,
             float(shaped[0]), float(shaped[1]), tick_time, lateness))

    def interrupted(self, pid: int, slot: int, episode: int) -> sqlite3.Row | None:
        """The latest aborted row of this episode (a page reload or a killed server), if any."""
        return self.db.execute(
            "SELECT * FROM episodes WHERE participant_id = ? AND slot = ? AND episode = ? "
            "AND status = 'aborted' ORDER BY id DESC LIMIT 1", (pid, slot, episode)).fetchone()

    def resume_episode(self, episode_id: int, sid: int | None) -> None:
        self.db.execute("UPDATE episodes SET status = 'running', ended = NULL, session_id = ? "
                        "WHERE id = ?", (sid, episode_id))

    def end_episode(self, episode_id: int, status: str, score: float | None = None) -> None:
        self.db.execute("UPDATE episodes SET status = ?, ended = ?, score = ? WHERE id = ?",
                        (status, time.time(), score, episode_id))

    def done_episodes(self, pid: int, slot: int) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM episodes WHERE participant_id = ? AND slot = ? "
                               "AND status = 'done' ORDER BY episode", (pid, slot)).fetchall()

    def episodes(self, status: str = "done") -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM episodes WHERE status = ? ORDER BY id",
                               (status,)).fetchall()

    def steps(self, episode_id: int) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM steps WHERE episode_id = ? ORDER BY t",
                               (episode_id,)).fetchall()

    # --- answers ------------------------------------------------------------------------------
    def add_answer(self, pid: int, kind: str, data: dict, slot: int | None = None,
                   agent: str | None = None) -> None:
        self.db.execute("INSERT INTO answers (participant_id, kind, slot, agent, data, created) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (pid, kind, slot, agent, json.dumps(data), time.time()))

    def answers(self, pid: int | None = None) -> list[sqlite3.Row]:
        if pid is None:
            return self.db.execute("SELECT * FROM answers ORDER BY id").fetchall()
        return self.db.execute("SELECT * FROM answers WHERE participant_id = ? ORDER BY id",
                               (pid,)).fetchall()

    def has_answer(self, pid: int, kind: str, slot: int | None = None) -> bool:
        if slot is None:
            q, args = "participant_id = ? AND kind = ?", (pid, kind)
        else:
            q, args = "participant_id = ? AND kind = ? AND slot = ?", (pid, kind, slot)
        return self.db.execute(f"SELECT 1 FROM answers WHERE {q}", args).fetchone() is not None
