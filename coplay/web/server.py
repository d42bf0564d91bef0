"""The ASGI app (Starlette) of a study: the page, joining, one websocket per participant, and
an admin view behind a secret.

    GET  /                 the page (plain HTML/JS/CSS from coplay/web/static, no build step)
    POST /api/join         a new participant: {"token"} (random agent order recorded)
    WS   /ws               first message {"type": "hello", "token"}; then see protocol.py
    GET  /admin/status     progress counts; header ``Authorization: Bearer <secret>``
"""

from __future__ import annotations

import hmac
import json
import logging
import random
import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from coplay.web.protocol import ProtocolError, RateLimit, parse
from coplay.web.session import Study

STATIC = Path(__file__).parent / "static"
EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_BAD = 50  # rejected messages before a connection is closed
HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}
log = logging.getLogger("coplay.web")


def create_app(study: Study, admin_secret: str) -> Starlette:
    store, cfg = study.store, study.cfg

    async def index(request: Request):
        return FileResponse(STATIC / "index.html", headers=HEADERS)

    async def join(request: Request):
        body = await request.body()
        if len(body) > 1024:
            return JSONResponse({"error": "request too large"}, 413)
        external = None
        if body:
            try:
                data = json.loads(body)
            except json.JSONDecodeError:
                return JSONResponse({"error": "malformed JSON"}, 400)
            external = data.get("external_id") if isinstance(data, dict) else None
            if external is not None and not (isinstance(external, str)
                                             and EXTERNAL_ID.match(external)):
                return JSONResponse({"error": "external_id: letters, digits, - and _"}, 400)
        if store.count_participants() >= cfg.max_participants:
            return JSONResponse({"error": "this study is full"}, 403)
        order = [a.name for a in cfg.agents]
        random.SystemRandom().shuffle(order)
        _, token = store.add_participant(order, external)
        return JSONResponse({"token": token, "study": cfg.name}, headers=HEADERS)

    async def admin_status(request: Request):
        auth = request.headers.get("authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {admin_secret}".encode()):
            return JSONResponse({"error": "admin secret required"}, 401)
        ps = store.participants()
        return JSONResponse({"study": cfg.name, "participants": len(ps),
                             "finished": sum(p["completion_code"] is not None for p in ps),
                             "episodes_done": len(store.episodes("done")),
                             "playing": sum(1 for live in study.live.values()
                                            if live.task is not None and not live.task.done())})

    async def ws(websocket: WebSocket):
        await websocket.accept()

        async def send(msg: dict):
            await websocket.send_text(json.dumps(msg))

        async def error(text: str):
            await send({"type": "error", "message": text})

        limit, bad, live = RateLimit(), 0, None
        try:
            while True:
                event = await websocket.receive()
                if event["type"] == "websocket.disconnect":
                    break
                if not limit.allow():
                    bad += 1
                    await error("too many messages: slow down")
                else:
                    try:
                        msg = parse(event.get("text"))
                        if live is None:
                            if msg["type"] != "hello":
                                raise ProtocolError("the first message must be hello")
                            p = store.participant_by_token(msg["token"])
                            if p is None:
                                await error("unknown token")
                                await websocket.close(4401)
                                return
                            live = await study.attach(p["id"], send)
                        elif msg["type"] == "hello":
                            raise ProtocolError("hello: already greeted")
                        else:
                            await study.handle(live, msg)
                    except ProtocolError as e:
                        bad += 1
                        await error(str(e))
                if bad > MAX_BAD:
                    await error("too many rejected messages: closing")
                    await websocket.close(4400)
                    break
        except WebSocketDisconnect:
            pass
        finally:
            if live is not None:
                await study.detach(live, send)

    routes = [Route("/", index), Route("/api/join", join, methods=["POST"]),
              Route("/admin/status", admin_status), WebSocketRoute("/ws", ws),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    return Starlette(routes=routes)
