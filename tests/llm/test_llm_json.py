"""JsonReplyParser: valid, repaired and rejected replies are told apart and counted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmlearn.errors import BadResponse
from swarmlearn.llm import JsonReplyParser, schema_problems

ACTION = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["restart", "inspect"]},
        "target": {"type": "string", "minLength": 1},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["action"],
    "additionalProperties": False,
}


def test_valid_reply_is_counted_valid() -> None:
    parser = JsonReplyParser(ACTION)
    reply = parser.parse('{"action": "restart", "target": "db"}')
    assert reply.value == {"action": "restart", "target": "db"} and not reply.repaired
    assert parser.stats.valid == 1 and parser.stats.total == 1


@pytest.mark.parametrize(
    "text",
    [
        '{"action": "restart", "target": "db"',  # cut short by max_tokens
        '```json\n{"action": "inspect"}\n```',  # fenced
        "{'action': 'inspect'}",  # single quotes
        '{"action": "inspect",}',  # trailing comma
    ],
)
def test_broken_but_repairable_reply_is_counted_repaired(text: str) -> None:
    parser = JsonReplyParser(ACTION)
    reply = parser.parse(text)
    assert reply.repaired and reply.value["action"] in ("restart", "inspect")
    assert parser.stats.repaired == 1 and parser.stats.valid == 0


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("I would restart the database.", "could not be repaired"),
        ("", "empty"),
        ('{"action": "reboot"}', "not one of"),
        ('{"target": "db"}', "missing required 'action'"),
        ('{"action": "restart", "extra": 1}', "unexpected property 'extra'"),
        ('{"action": "restart", "confidence": 2}', "maximum"),
        ('["restart"]', "expected object"),
    ],
)
def test_unusable_reply_is_rejected_and_counted(text: str, why: str) -> None:
    parser = JsonReplyParser(ACTION)
    with pytest.raises(BadResponse, match=why):
        parser.parse(text)
    assert parser.stats.rejected == 1 and parser.stats.accepted_rate == 0.0


def test_without_schema_any_json_value_is_accepted() -> None:
    parser = JsonReplyParser()
    assert parser.parse("[1, 2]").value == [1, 2]
    assert parser.parse("42").value == 42
    assert parser.stats.valid == 2 and parser.stats.accepted_rate == 1.0


def test_schema_subset_checks_types_strictly() -> None:
    assert schema_problems(True, {"type": "integer"}) == ["$: expected integer, got bool"]
    assert schema_problems(3.0, {"type": "integer"}) == []
    assert schema_problems(None, {"type": ["string", "null"]}) == []
    assert schema_problems([1, "x"], {"type": "array", "items": {"type": "integer"}}) == [
        "$[1]: expected integer, got str"
    ]
    assert schema_problems("a", {"const": "b"}) == ["$: 'a' is not 'b'"]


@given(st.sampled_from(["restart", "inspect"]), st.text(min_size=1, max_size=20))
def test_every_valid_action_round_trips(action: str, target: str) -> None:
    import json

    parser = JsonReplyParser(ACTION)
    text = json.dumps({"action": action, "target": target})
    assert parser.parse(text).value == {"action": action, "target": target}
