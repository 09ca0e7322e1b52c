"""rex.operator_requests: every field an operator sends is bounded and checked."""

from __future__ import annotations

import pytest

from rex.operator_requests import (
    MAX_BODY_BYTES,
    OperatorAnswer,
    OperatorRequest,
    Refusal,
    Verdict,
    decode_answer,
    decode_request,
    encode_answer,
    encode_request,
    split_routing_key,
    usable_request_id,
)
from rex.operators import Action
from rex.protocol import pack


def test_a_request_round_trips() -> None:
    request = OperatorRequest(Action.HALT, "PRND-OX")
    assert decode_request("halt", encode_request(request)) == request


@pytest.mark.parametrize(
    ("action", "body", "refusal", "text"),
    [
        ("delist", pack({"product": "X"}), Refusal.UNKNOWN_ACTION, "no operator action 'delist'"),
        ("halt", b"\xc1", Refusal.BAD_REQUEST, "the body is not msgpack"),
        ("halt", pack(["PRND-OX"]), Refusal.BAD_REQUEST, "the body must be a msgpack map"),
        ("halt", pack({"product": "X", "actor": "li-wei"}), Refusal.BAD_REQUEST, "'actor'"),
        ("halt", pack({}), Refusal.BAD_REQUEST, "'product' must be"),
        ("halt", pack({"product": "P" * 33}), Refusal.BAD_REQUEST, "'product' must be"),
        ("halt", pack({"product": "A.B"}), Refusal.BAD_REQUEST, "'product' must be"),
        ("halt", pack({"product": 7}), Refusal.BAD_REQUEST, "'product' must be"),
        ("halt", b"\x80" * (MAX_BODY_BYTES + 1), Refusal.BAD_REQUEST, "over 1024 bytes"),
    ],
)
def test_a_bad_request_is_refused_with_its_reason(
    action: str, body: bytes, refusal: Refusal, text: str
) -> None:
    refused = decode_request(action, body)
    assert isinstance(refused, tuple) and refused[0] is refusal and text in refused[1]


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        ("li-wei.halt", ("li-wei", "halt")),
        ("li-wei", None),
        ("li-wei.", None),
        ("li-wei.halt.more", None),
        ("Li-Wei.halt", None),
        ("li-wei." + "h" * 33, None),
    ],
)
def test_the_routing_key_is_operator_dot_action(key: str, parts: tuple[str, str] | None) -> None:
    assert split_routing_key(key) == parts


def test_a_request_id_is_bounded() -> None:
    assert usable_request_id("halt-1") == "halt-1"
    assert usable_request_id("x" * 129) is None
    assert usable_request_id("a b") is None
    assert usable_request_id(None) is None


def test_an_answer_round_trips() -> None:
    answer = OperatorAnswer("r-1", "halt", "PRND-OX", Verdict.REFUSED, "role_required", "why")
    assert decode_answer(encode_answer(answer)) == answer
