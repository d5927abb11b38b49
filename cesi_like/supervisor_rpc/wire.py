"""XML-RPC bodies parsed as untrusted input, in either direction.

expat refuses any document type declaration outright: without a DTD no entity can be defined,
so billion-laughs, quadratic-blowup and external-entity attacks have nothing to work with. A
nesting limit stops recursion bombs (`<array>` in `<array>` ten thousand deep) before the
unmarshaller's stack grows. Size limits are the transport's job: it never hands us more.
"""

from __future__ import annotations

import re
import xmlrpc.client
from typing import Any
from xml.parsers import expat

# getAllProcessInfo nests methodResponse/params/param/value/array/data/value/struct/member/value:
# ten levels. Sixty-four leaves room for any honest answer and none for a bomb.
MAX_DEPTH = 64


class ForbiddenXML(ValueError):
    """The body carried a DTD or an entity declaration, or nested deeper than MAX_DEPTH."""


def _forbid(*_: object) -> int:
    raise ForbiddenXML("DTDs and entity declarations are not accepted")


# Only <array> and <struct> can nest in XML-RPC (each adds three elements: data/member/value),
# so counting them bounds the depth without a Python call per element in the parser.
_CONTAINER = re.compile(rb"<(/?)(?:array|struct)(?:\s[^>]*)?>")


def _check_depth(body: bytes, max_depth: int) -> None:
    depth = 0
    limit = max_depth // 3
    for match in _CONTAINER.finditer(body):
        depth += -1 if match.group(1) else 1
        if depth > limit:
            raise ForbiddenXML(f"nested deeper than {max_depth} elements")


def _unmarshal(body: bytes, max_depth: int) -> xmlrpc.client.Unmarshaller:
    """Feed `body` through a hardened expat parser into an Unmarshaller (not yet closed)."""
    _check_depth(body, max_depth)
    unmarshaller = xmlrpc.client.Unmarshaller()
    unmarshaller.xml("", None)  # no encoding: expat already hands us str, not bytes
    parser = expat.ParserCreate()
    parser.StartElementHandler = unmarshaller.start
    parser.EndElementHandler = unmarshaller.end
    parser.CharacterDataHandler = unmarshaller.data
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    parser.UnparsedEntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid
    parser.buffer_text = True
    parser.Parse(body, True)
    return unmarshaller


def parse_request(body: bytes, max_depth: int = MAX_DEPTH) -> tuple[str, tuple[Any, ...]]:
    """Method name and params of a methodCall; ValueError for anything malformed or hostile."""
    try:
        unmarshaller = _unmarshal(body, max_depth)
        params = unmarshaller.close()
    except Exception as exc:  # expat and Unmarshaller raise many kinds
        raise ValueError(f"malformed XML-RPC request: {type(exc).__name__}: {exc}") from None
    name = unmarshaller.getmethodname()
    if not isinstance(name, str):
        raise ValueError("malformed XML-RPC request: no methodName")
    return name, tuple(params)


def parse_response(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The single value of a methodResponse. Raises xmlrpc.client.Fault for a fault answer and
    ValueError (with the reason) for anything malformed or hostile."""
    try:
        unmarshaller = _unmarshal(body, max_depth)
        values = unmarshaller.close()
    except xmlrpc.client.Fault:
        raise
    except Exception as exc:  # expat and Unmarshaller raise many kinds
        raise ValueError(f"malformed XML-RPC answer: {type(exc).__name__}: {exc}") from None
    if unmarshaller.getmethodname() is not None or len(values) != 1:
        raise ValueError("malformed XML-RPC answer: not a methodResponse with one value")
    return values[0]


def dumps_call(method: str, params: tuple[Any, ...]) -> bytes:
    """A methodCall body, UTF-8."""
    return xmlrpc.client.dumps(params, method, encoding="utf-8", allow_none=False).encode()
