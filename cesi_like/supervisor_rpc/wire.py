"""XML-RPC bodies parsed as untrusted input, in either direction.

expat refuses any document type declaration outright: without a DTD no entity can be defined,
so billion-laughs, quadratic-blowup and external-entity attacks have nothing to work with. A
nesting limit stops recursion bombs (`<array>` in `<array>` ten thousand deep) before the
unmarshaller's stack grows. Size limits are the transport's job: it never hands us more.
"""

from __future__ import annotations

import base64
import re
import xmlrpc.client
from typing import Any
from xml.etree import ElementTree
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
    ValueError (with the reason) for anything malformed or hostile.

    The console parses thousands of these a second, so this side uses ElementTree's C parser
    (several times faster than the Unmarshaller's Python callbacks) with the same guards: no
    DTD or entity declaration (checked on the bytes; a NUL byte, as UTF-16 would have, is
    refused so the check cannot be dodged), and the nesting limit."""
    try:
        if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
            raise ForbiddenXML("DTDs and entity declarations are not accepted")
        if b"\0" in body:
            raise ForbiddenXML("only 8-bit encodings are accepted")
        _check_depth(body, max_depth)
        root = ElementTree.fromstring(body)
        if root.tag != "methodResponse" or len(root) != 1:
            raise ValueError("not a methodResponse")
        if root[0].tag == "fault":
            fault = _value(root[0].find("value"))
            if not isinstance(fault, dict) or not isinstance(fault.get("faultCode"), int):
                raise ValueError("a fault without a faultCode")
            raise xmlrpc.client.Fault(fault["faultCode"], str(fault.get("faultString", "")))
        params = root[0].findall("param")
        if root[0].tag != "params" or len(params) != 1:
            raise ValueError("not one param")
        return _value(params[0].find("value"))
    except xmlrpc.client.Fault:
        raise
    except Exception as exc:  # ParseError, ValueError from our checks and conversions
        raise ValueError(f"malformed XML-RPC answer: {type(exc).__name__}: {exc}") from None


def _value(element: ElementTree.Element | None) -> Any:
    if element is None:
        raise ValueError("a param or member without a value")
    if len(element) == 0:
        return element.text or ""  # a bare <value> is a string
    typed = element[0]
    convert = _SCALARS.get(typed.tag)
    if convert is not None:
        return convert(typed.text or "")
    if typed.tag == "array":
        data = typed.find("data")
        return [_value(item) for item in (data.findall("value") if data is not None else [])]
    if typed.tag == "struct":
        result = {}
        for member in typed.findall("member"):
            name = member.find("name")
            if name is None:
                raise ValueError("a struct member without a name")
            result[name.text or ""] = _value(member.find("value"))
        return result
    if typed.tag == "nil":
        return None
    raise ValueError(f"unknown type <{typed.tag[:20]}>")


def _boolean(text: str) -> bool:
    if text.strip() not in ("0", "1"):
        raise ValueError(f"bad boolean {text[:20]!r}")
    return text.strip() == "1"


_SCALARS: dict[str, Any] = {
    "string": str, "int": int, "i4": int, "i8": int, "boolean": _boolean, "double": float,
    "dateTime.iso8601": str.strip, "base64": lambda text: base64.b64decode(text),
}


def dumps_call(method: str, params: tuple[Any, ...]) -> bytes:
    """A methodCall body, UTF-8."""
    return xmlrpc.client.dumps(params, method, encoding="utf-8", allow_none=False).encode()
