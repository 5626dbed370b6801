"""The lender's envelope: AES-128-CBC of the JSON payload, base64 — PHP openssl_encrypt's bytes."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class EnvelopeError(ValueError):
    """A callback we cannot read: another partner's, or not encrypted with our key."""


def _fit(secret: str) -> bytes:
    # PHP's openssl_encrypt cuts the key and IV to 16 bytes, or pads them with NUL bytes.
    return secret.encode("utf-8")[:16].ljust(16, b"\0")


class Envelope:
    """Seals requests and opens callbacks with the credentials the lender gave us."""

    def __init__(self, partner_token: str, aes_key: str, aes_iv: str):
        self.partner_token = partner_token
        self._cipher = Cipher(algorithms.AES(_fit(aes_key)), modes.CBC(_fit(aes_iv)))

    def seal(self, payload: dict[str, Any]) -> dict[str, str]:
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        padder = padding.PKCS7(128).padder()
        encryptor = self._cipher.encryptor()
        sealed = encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()
        return {
            "partner_token": self.partner_token,
            "encode_data": base64.b64encode(sealed).decode("ascii"),
        }

    def open(self, envelope: Any) -> dict[str, Any]:
        if not isinstance(envelope, dict) or envelope.get("partner_token") != self.partner_token:
            raise EnvelopeError("not an envelope for our partner token")
        try:
            decryptor = self._cipher.decryptor()
            unpadder = padding.PKCS7(128).unpadder()
            raw = decryptor.update(base64.b64decode(envelope["encode_data"])) + decryptor.finalize()
            payload = json.loads(unpadder.update(raw) + unpadder.finalize())
        except (KeyError, TypeError, ValueError) as e:
            raise EnvelopeError(f"cannot decrypt: {e}") from None
        if not isinstance(payload, dict):
            raise EnvelopeError("the payload is not an object")
        return payload
