"""The envelope in and out (docs/protocol.md §1-2): parse a request body, render a response.

Pure: bytes and settings in, dicts out. The `msg`/`message` quirk and the optional
encrypted `data` are decided here, once, for every endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import inputs, jsontext
from .crypto import Codec, DecryptError, NotJsonError, loads_json, php_json_encode
from .errors import SandboxError, invalid
from .protocol import MSG_PATHS


@dataclass(frozen=True)
class Envelope:
    partner_token: str
    encode_data: str


def parse_envelope(body: bytes) -> Envelope:
    try:
        doc = jsontext.loads(body.decode("utf-8"))
    except (
        ValueError,
        RecursionError,
    ):  # UnicodeDecodeError is a ValueError; deep nesting recurses
        raise SandboxError(
            "bad_envelope",
            'the body is not UTF-8 JSON: send {"partner_token": ..., "encode_data": ...}',
        ) from None
    if not isinstance(doc, dict):
        raise SandboxError("bad_envelope", "the body must be a JSON object")
    for field in ("partner_token", "encode_data"):
        if field not in doc:
            raise SandboxError("bad_envelope", f"{field} is missing")
        if not isinstance(doc[field], str) or not doc[field]:
            raise SandboxError("bad_envelope", f"{field} must be a non-empty string")
        if why := inputs.text_problem(doc[field]):
            raise SandboxError("bad_envelope", f"{field} {why}")
    return Envelope(doc["partner_token"], doc["encode_data"])


def decrypt_payload(codec: Codec, encode_data: str) -> dict[str, Any]:
    """The decrypted payload: a JSON object of valid text, nested at most inputs.MAX_DEPTH."""
    try:
        raw = codec.decrypt_bytes(encode_data)
        payload = loads_json(raw)
    except NotJsonError as e:
        raise SandboxError("not_json", str(e)) from None
    except DecryptError as e:
        raise SandboxError("undecryptable", str(e)) from None
    if not isinstance(payload, dict):
        raise SandboxError("not_object", f"got a JSON {type(payload).__name__}")
    found = inputs.problem(payload, raw)
    if found is not None:
        raise invalid(*found)
    return payload


def text_keys(path: str, mode: str) -> tuple[str, ...]:
    if mode == "both":
        return ("message", "msg")
    if mode in ("message", "msg"):
        return (mode,)
    return ("msg",) if path in MSG_PATHS else ("message",)


def render(
    path: str, code: int, message: str, data: Any, *, mode: str = "spec", codec: Codec | None = None
) -> dict[str, Any]:
    """The response envelope. With `codec`, a non-empty `data` is sent encrypted."""
    out: dict[str, Any] = {"code": code}
    for key in text_keys(path, mode):
        out[key] = message
    if codec is not None and data:
        out["data"] = codec.encrypt_json(data)
    else:
        out["data"] = data if data is not None else {}
    return out


def decode_response(doc: dict[str, Any], codec: Codec | None = None) -> Any:
    """Client side: the `data` of a response, decrypting it when it is a string."""
    data = doc.get("data")
    if isinstance(data, str) and codec is not None and data:
        return codec.decrypt_json(data)
    return data


__all__ = [
    "Envelope",
    "decode_response",
    "decrypt_payload",
    "loads_json",
    "parse_envelope",
    "php_json_encode",
    "render",
]
