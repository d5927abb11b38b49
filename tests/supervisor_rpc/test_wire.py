"""The console's fast response parser gives what the stdlib's gives, and refuses what is
hostile the same way whatever the encoding tricks."""

from __future__ import annotations

import xmlrpc.client

import pytest

from cesi_like.supervisor_rpc.wire import parse_request, parse_response
from tests.support.hostile import BILLION_LAUGHS, DEEP

VALUES = [
    {"name": "web", "pid": 12, "ok": True, "ratio": 2.5, "nothing": None, "text": "a<&>\"'é",
     "list": [1, [2, [3, {}]], ""], "blob": b"\x00\xff", "empty": {}},
    [], "", 0, -(2**31), "  spaced  ",
]


@pytest.mark.parametrize("value", VALUES)
def test_same_values_as_the_stdlib(value: object) -> None:
    body = xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True).encode()
    assert parse_response(body) == xmlrpc.client.loads(body, use_builtin_types=True)[0][0]


def test_bare_value_is_a_string_and_faults_are_raised() -> None:
    body = (b"<?xml version='1.0'?><methodResponse><params><param><value>plain</value>"
            b"</param></params></methodResponse>")
    assert parse_response(body) == "plain"
    fault = xmlrpc.client.dumps(xmlrpc.client.Fault(60, "ALREADY_STARTED: x"),
                                methodresponse=True).encode()
    with pytest.raises(xmlrpc.client.Fault) as raised:
        parse_response(fault)
    assert (raised.value.faultCode, raised.value.faultString) == (60, "ALREADY_STARTED: x")


@pytest.mark.parametrize("body,why", [
    (BILLION_LAUGHS, "DTD"),
    (BILLION_LAUGHS.decode().encode("utf-16"), "8-bit"),
    (DEEP, "nested deeper"),
    (b"<methodResponse><params><param><value><int>x</int></value></param></params>"
     b"</methodResponse>", "malformed"),
    (b"<methodResponse><params></params></methodResponse>", "not one param"),
    (b"<methodCall><methodName>x</methodName></methodCall>", "not a methodResponse"),
    (b"<methodResponse><params><param><value><weird/></value></param></params>"
     b"</methodResponse>", "unknown type"),
    (b"<methodResponse><params><param><value><struct><member><value>1</value></member>"
     b"</struct></value></param></params></methodResponse>", "without a name"),
])
def test_hostile_or_malformed_answers(body: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_response(body)


def test_requests_refuse_dtds_and_depth() -> None:
    with pytest.raises(ValueError, match="DTD"):
        parse_request(BILLION_LAUGHS.replace(b"methodResponse", b"methodCall"))
    assert parse_request(xmlrpc.client.dumps((1, "a"), "supervisor.x").encode()) == (
        "supervisor.x", (1, "a"))
