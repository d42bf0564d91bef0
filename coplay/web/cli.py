"""``coplay study serve | export | report``.

    coplay study serve STUDY.toml --db study.sqlite [--port 8000] [--host 127.0.0.1]
    coplay study export --db study.sqlite --out DIR     # trajectories (.npz) + answers.csv
    coplay study report --db study.sqlite --out DIR     # report.md

These need the ``web`` extra (starlette, uvicorn, websockets); ``coplay --help`` does not
import this module (coplay/cli.py dispatches lazily).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path

import tyro
import uvicorn

from coplay.config import ConfigError
from coplay.web.export import export_study, write_report
from coplay.web.runtime import make_runtime
from coplay.web.server import create_app
from coplay.web.session import Study
from coplay.web.store import Store
from coplay.web.study import load_agents, load_study


@dataclasses.dataclass(frozen=True)
class ServeArgs:
    """Serve a study: the page, one websocket per participant, the game on the server."""

    study: tyro.conf.Positional[str]
    """the study file (TOML)"""
    db: str = "study.sqlite"
    """SQLite database (created if missing; a restarted server resumes its participants)"""
    host: str = "127.0.0.1"
    port: int = 8000
    admin_secret: str | None = None
    """secret of /admin/status (default: $COPLAY_STUDY_SECRET, else a random one printed)"""


def prepare(study_file: str, db: str):
    """(Study, store): study file checked, agents loaded and compiled, database opened (and
    bound to this study: a database of another study is refused)."""
    cfg = load_study(study_file)
    agents = load_agents(cfg)
    store = Store(db)
    held = store.get_meta("study")
    if held is None:
        store.set_meta("study", cfg.to_json())
    elif held != cfg.to_json():
        raise ConfigError(f"{db} holds another study's data ({held[:80]}...): use a new --db")
    runtime = make_runtime(cfg, agents)
    runtime.warm_up()  # every jitted function compiled here, before the first participant
    store.abort_running()
    return Study(runtime, store), store


def serve(argv: list[str], prog: str) -> int:
    args = tyro.cli(ServeArgs, args=argv, prog=prog)
    study, _ = prepare(args.study, args.db)
    secret = args.admin_secret or os.environ.get("COPLAY_STUDY_SECRET")
    if not secret:
        secret = secrets.token_urlsafe(24)
        print(f"admin secret (for /admin/status): {secret}", flush=True)
    print(f"serving study {study.cfg.name!r} on http://{args.host}:{args.port}/  db {args.db}",
          flush=True)
    uvicorn.run(create_app(study, secret), host=args.host, port=args.port, log_level="warning",
                ws_max_size=16384)
    return 0


@dataclasses.dataclass(frozen=True)
class DbArgs:
    db: str
    """the study's SQLite database"""
    out: str
    """output folder"""


def export(argv: list[str], prog: str) -> int:
    args = tyro.cli(DbArgs, args=argv, prog=prog, description="trajectories (.npz per agent, "
                    "the rollout-dataset shard format) and answers.csv")
    _need_db(args.db)
    for path in export_study(args.db, Path(args.out)):
        print(path)
    return 0


def report(argv: list[str], prog: str) -> int:
    args = tyro.cli(DbArgs, args=argv, prog=prog, description="report.md: per-agent return, "
                    "pairwise preferences, ratings")
    _need_db(args.db)
    print(write_report(args.db, Path(args.out)))
    return 0


def _need_db(db: str) -> None:
    if not Path(db).is_file():
        raise ConfigError(f"--db {db}: no such database")
