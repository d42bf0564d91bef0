"""What a participant's page may send, and its checks: size, JSON type, fields, rate.

Client -> server messages (JSON objects, text frames, at most ``MAX_BYTES``):

- ``{"type": "hello", "token": str}`` first, once;
- ``{"type": "consent", "agree": true}``;
- ``{"type": "pre", "answers": {...}}`` (the fields of ``PRE_QUESTIONS``);
- ``{"type": "start"}`` begins the next episode;
- ``{"type": "key", "action": 0..5}`` the latest key (N, S, E, W, stay, interact);
- ``{"type": "rating", "competence": 1..5, "collaboration": 1..5, "adaptivity": 1..5,
  "comment": str}`` after each agent.

Anything else is a :class:`ProtocolError` with a message for the page; nothing a participant
sends is used as a file path or as SQL text (values are bound parameters or JSON).
"""

from __future__ import annotations

import json
import time

MAX_BYTES = 4096
MAX_COMMENT = 2000
RATING_FIELDS = ("competence", "collaboration", "adaptivity")
# field -> allowed values (a tuple) or (low, high) integer range given as a range object
PRE_QUESTIONS: dict[str, tuple | range] = {
    "age": range(18, 100),
    "gender": ("female", "male", "other", "no answer"),
    "overcooked": ("never", "a few times", "often"),
    "gaming": range(1, 6),
}
TYPES = ("hello", "consent", "pre", "start", "key", "rating")


class ProtocolError(ValueError):
    """A client message that is rejected; the message says why (sent back to the page)."""


def _int(v, lo: int, hi: int, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ProtocolError(f"{what}: an integer in [{lo}, {hi}]")
    return v


def _only(msg: dict, keys: set[str]) -> None:
    extra = set(msg) - keys - {"type"}
    if extra:
        raise ProtocolError(f"{msg['type']}: unexpected field(s) {sorted(extra)[:5]}")


def parse(raw: str | bytes | None) -> dict:
    """The checked message, or ProtocolError."""
    if not isinstance(raw, str):
        raise ProtocolError("messages must be JSON text frames")
    if len(raw.encode("utf-8", "replace")) > MAX_BYTES:
        raise ProtocolError(f"message too large (limit {MAX_BYTES} bytes)")
    try:
        msg = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError("malformed JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a message must be a JSON object")
    kind = msg.get("type")
    if kind not in TYPES:
        raise ProtocolError(f"unknown message type {str(kind)[:40]!r} (expected one of "
                            f"{', '.join(TYPES)})")
    if kind == "hello":
        _only(msg, {"token"})
        tok = msg.get("token")
        if not isinstance(tok, str) or not 1 <= len(tok) <= 100:
            raise ProtocolError("hello: token must be a string")
    elif kind == "consent":
        _only(msg, {"agree"})
        if msg.get("agree") is not True:
            raise ProtocolError("consent: agree must be true")
    elif kind == "pre":
        _only(msg, {"answers"})
        msg["answers"] = check_pre(msg.get("answers"))
    elif kind == "start":
        _only(msg, set())
    elif kind == "key":
        _only(msg, {"action"})
        _int(msg.get("action"), 0, 5, "key.action")
    elif kind == "rating":
        _only(msg, {*RATING_FIELDS, "comment"})
        for f in RATING_FIELDS:
            _int(msg.get(f), 1, 5, f"rating.{f}")
        comment = msg.get("comment", "")
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise ProtocolError(f"rating.comment: text of at most {MAX_COMMENT} characters")
    return msg


def check_pre(answers) -> dict:
    if not isinstance(answers, dict) or set(answers) != set(PRE_QUESTIONS):
        raise ProtocolError(f"pre.answers: an object with exactly {', '.join(PRE_QUESTIONS)}")
    for k, allowed in PRE_QUESTIONS.items():
        v = answers[k]
        if isinstance(allowed, range):
            _int(v, allowed.start, allowed.stop - 1, f"pre.{k}")
        elif v not in allowed:
            raise ProtocolError(f"pre.{k}: one of {', '.join(allowed)}")
    return dict(answers)


class RateLimit:
    """A token bucket: ``rate`` messages per second, bursts of ``burst``."""

    def __init__(self, rate: float = 60.0, burst: float = 120.0, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.last = burst, clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
