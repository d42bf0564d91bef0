"""Every client message is checked: JSON text, size, type, fields, values, rate."""

from __future__ import annotations

import json

import pytest

from coplay.web.protocol import MAX_BYTES, PRE_QUESTIONS, ProtocolError, RateLimit, parse

from .conftest import PRE


def test_good_messages_pass():
    assert parse('{"type": "hello", "token": "abc"}')["token"] == "abc"
    assert parse('{"type": "key", "action": 5}')["action"] == 5
    assert parse(json.dumps({"type": "pre", "answers": PRE}))["answers"] == PRE
    r = parse(json.dumps({"type": "rating", "competence": 1, "collaboration": 5,
                          "adaptivity": 3, "comment": "ok"}))
    assert r["collaboration"] == 5
    assert parse('{"type": "start"}') == {"type": "start"}


@pytest.mark.parametrize("raw, says", [
    (None, "JSON text"),
    (b'{"type": "start"}', "JSON text"),
    ("{not json", "malformed JSON"),
    ("[1, 2]", "JSON object"),
    ('{"type": "teleport"}', "unknown message type"),
    ('{"action": 1}', "unknown message type"),
    ('{"type": "key", "action": 6}', "key.action"),
    ('{"type": "key", "action": -1}', "key.action"),
    ('{"type": "key", "action": true}', "key.action"),
    ('{"type": "key", "action": "1"}', "key.action"),
    ('{"type": "key", "action": 1.0}', "key.action"),
    ('{"type": "key", "action": 1, "x": 2}', "unexpected field"),
    ('{"type": "consent", "agree": false}', "agree must be true"),
    ('{"type": "hello", "token": 5}', "token"),
    ('{"type": "hello", "token": ""}', "token"),
    ('{"type": "start", "slot": 3}', "unexpected field"),
    ('{"type": "pre", "answers": {"age": 30}}', "exactly"),
    ('{"type": "rating", "competence": 0, "collaboration": 1, "adaptivity": 1}',
     "rating.competence"),
    ('{"type": "rating", "competence": 1, "collaboration": 1}', "rating.adaptivity"),
])
def test_bad_messages_say_why(raw, says):
    with pytest.raises(ProtocolError, match=says):
        parse(raw)


def test_size_limits():
    with pytest.raises(ProtocolError, match="too large"):
        parse(json.dumps({"type": "hello", "token": "x" * MAX_BYTES}))
    long_comment = json.dumps({"type": "rating", "competence": 1, "collaboration": 1,
                               "adaptivity": 1, "comment": "x" * 2001})
    with pytest.raises(ProtocolError, match="at most 2000"):
        parse(long_comment)
    with pytest.raises(ProtocolError, match="malformed JSON|a JSON object"):  # deep nesting
        parse("[" * 2000 + "]" * 2000)


@pytest.mark.parametrize("field, value", [("age", 17), ("age", "30"), ("gender", "robot"),
                                          ("overcooked", 1), ("gaming", 6)])
def test_pre_answers_checked(field, value):
    assert field in PRE_QUESTIONS
    with pytest.raises(ProtocolError, match=f"pre.{field}"):
        parse(json.dumps({"type": "pre", "answers": {**PRE, field: value}}))


def test_rate_limit_is_a_token_bucket():
    now = [0.0]
    limit = RateLimit(rate=10, burst=5, clock=lambda: now[0])
    assert [limit.allow() for _ in range(7)] == [True] * 5 + [False] * 2
    now[0] += 0.2  # two tokens back
    assert [limit.allow() for _ in range(3)] == [True, True, False]
