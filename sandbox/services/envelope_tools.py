"""Envelope debugging (POST /sandbox/tools/encrypt and /decrypt).

Encrypt a payload or decrypt an `encode_data` exactly as a partner or the lender does
(protocol.md §2), with a partner's key/IV or an explicit pair, and say plainly why a
ciphertext does not decrypt — a wrong key or IV is the most common integration bug.
"""

from __future__ import annotations

from typing import Any

from ..core.crypto import Codec, DecryptError, NotJsonError, loads_json, php_json_encode
from ..core.errors import ControlError
from ..store import Partner
from .lender import Lender


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ControlError("invalid_field", f"{name} must be a non-empty string")
    return value


def codec_for(lender: Lender, body: dict[str, Any]) -> tuple[Codec, str]:
    """(codec, partner_token): an explicit aes_key + aes_iv win over the partner's pair."""
    key, iv, token = _text(body, "aes_key"), _text(body, "aes_iv"), _text(body, "partner_token")
    if key is not None or iv is not None:
        if key is None or iv is None:
            raise ControlError("missing_field", "give both aes_key and aes_iv")
        return Codec(key, iv), token or ""
    if token is None:
        raise ControlError("missing_field", "give partner_token, or aes_key and aes_iv")
    with lender.store.transaction() as s:
        p = s.get(Partner, token)
        if p is None:
            raise ControlError("unknown_partner", f"partner_token {token!r}", http_status=404)
        return Codec(p.aes_key, p.aes_iv), token


def _plaintext(data: Any, escape: Any) -> str:
    if not isinstance(escape, bool):
        raise ControlError("invalid_field", "escape must be true (PHP's default json_encode "
                                            "flags) or false (unescaped slashes and unicode)")
    if isinstance(data, str):
        return data  # already the JSON text (or any text) to encrypt as is
    try:
        return php_json_encode(data, escape=escape)
    except (ValueError, TypeError) as e:
        raise ControlError("invalid_field", f"data cannot be JSON-encoded like PHP: {e}") from None


def encrypt(lender: Lender, body: dict[str, Any]) -> dict[str, Any]:
    """{"data": object or text, partner_token | aes_key + aes_iv, "escape"?: true}."""
    if "data" not in body:
        raise ControlError("missing_field", 'data is required: the payload to encrypt (a JSON '
                                            'object, or a string encrypted as is)')
    plaintext = _plaintext(body["data"], body.get("escape", True))
    codec, token = codec_for(lender, body)
    encode_data = codec.encrypt_text(plaintext)
    return {"encode_data": encode_data, "plaintext": plaintext,
            "envelope": {"partner_token": token or "<your partner_token>",
                         "encode_data": encode_data}}


def decrypt(lender: Lender, body: dict[str, Any]) -> dict[str, Any]:
    """{"encode_data": ..., partner_token | aes_key + aes_iv} (a whole envelope works too)."""
    encode_data = _text(body, "encode_data")
    if encode_data is None:
        raise ControlError("missing_field", "encode_data is required")
    codec, _ = codec_for(lender, body)
    try:
        raw = codec.decrypt_bytes(encode_data)
        data = loads_json(raw)
    except NotJsonError as e:  # its message says the key or IV is probably wrong, with a preview
        raise ControlError("not_json", str(e)) from None
    except DecryptError as e:
        raise ControlError("undecryptable", str(e)) from None
    except RecursionError:
        raise ControlError("not_json", "the decrypted JSON is nested too deeply to read") from None
    return {"data": data, "plaintext": raw.decode("utf-8")}
