"""Envelope debugging (POST /sandbox/tools/encrypt and /decrypt).

Encrypt a payload or decrypt an `encode_data` exactly as a partner or the lender does
(docs/protocol.md §2), with a partner's key/IV or an explicit pair, and say plainly why a
ciphertext does not decrypt — a wrong key or IV is the most common integration bug.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.control_models import CodecChoice, Decrypt, Encrypt
from ..core.control_parsing import ensure
from ..core.crypto import Codec, DecryptError, NotJsonError, loads_json, php_json_encode
from ..core.errors import ControlError
from .lender import Lender


def codec_for(lender: Lender, req: CodecChoice) -> tuple[Codec, str]:
    """(codec, partner_token): an explicit aes_key + aes_iv win over the partner's pair."""
    if req.aes_key is not None or req.aes_iv is not None:
        if req.aes_key is None or req.aes_iv is None:
            raise ControlError("missing_field", "give both aes_key and aes_iv")
        return Codec(req.aes_key, req.aes_iv), req.partner_token or ""
    if req.partner_token is None:
        raise ControlError("missing_field", "give partner_token, or aes_key and aes_iv")
    with lender.store.transaction() as s:
        p = lender.partner_or_404(s, req.partner_token)
        return Codec(p.aes_key, p.aes_iv), req.partner_token


def _plaintext(data: Any, escape: bool) -> str:
    if isinstance(data, str):
        return data  # already the JSON text (or any text) to encrypt as is
    try:
        return php_json_encode(data, escape=escape)
    except (ValueError, TypeError) as e:
        raise ControlError("invalid_field", f"data cannot be JSON-encoded like PHP: {e}") from None


def encrypt(lender: Lender, body: Encrypt | Mapping[str, Any]) -> dict[str, Any]:
    """{"data": object or text, partner_token | aes_key + aes_iv, "escape"?: true}."""
    req = ensure(Encrypt, body)
    plaintext = _plaintext(req.data, req.escape)
    codec, token = codec_for(lender, req)
    encode_data = codec.encrypt_text(plaintext)
    return {
        "encode_data": encode_data,
        "plaintext": plaintext,
        "envelope": {"partner_token": token or "<your partner_token>", "encode_data": encode_data},
    }


def decrypt(lender: Lender, body: Decrypt | Mapping[str, Any]) -> dict[str, Any]:
    """{"encode_data": ..., partner_token | aes_key + aes_iv} (a whole envelope works too)."""
    req = ensure(Decrypt, body)
    codec, _ = codec_for(lender, req)
    try:
        raw = codec.decrypt_bytes(req.encode_data)
        data = loads_json(raw)
    except NotJsonError as e:  # its message says the key or IV is probably wrong, with a preview
        raise ControlError("not_json", str(e)) from None
    except DecryptError as e:
        raise ControlError("undecryptable", str(e)) from None
    except RecursionError:
        raise ControlError("not_json", "the decrypted JSON is nested too deeply to read") from None
    return {"data": data, "plaintext": raw.decode("utf-8")}
