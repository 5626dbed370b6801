"""Envelope debugging through the app: POST /sandbox/tools/encrypt and /sandbox/tools/decrypt."""

from __future__ import annotations

import pytest
from conftest import CODEC, IV, KEY, TOKEN

from sandbox.core.crypto import Codec, php_json_encode

PAYLOAD = {"product_id": "1001", "user_name": "Budi Santoso", "url": "https://x.id/a"}

JSON = {"content-type": "application/json"}


def tool(sandbox, name: str, body: dict, status: int = 200) -> dict:
    return sandbox.control("POST", f"/sandbox/tools/{name}", body, status)


def test_encrypt_with_a_partners_key_gives_a_ready_envelope(sandbox):
    out = tool(sandbox, "encrypt", {"data": PAYLOAD, "partner_token": TOKEN})
    assert out["plaintext"] == php_json_encode(PAYLOAD)  # PHP escapes "/" by default
    assert "\\/" in out["plaintext"]
    assert CODEC.decrypt_json(out["encode_data"]) == PAYLOAD
    assert out["envelope"] == {"partner_token": TOKEN, "encode_data": out["encode_data"]}
    # the envelope really is what the lender accepts
    r = sandbox.post(
        "/get-bank-list",
        tool(
            sandbox,
            "encrypt",
            {"data": {"product_id": "1001", "action_type": 1}, "partner_token": TOKEN},
        )["envelope"],
    )
    assert r.json()["code"] == 0


def test_encrypt_unescaped_with_an_explicit_key_or_a_raw_string(sandbox):
    data = {"name": "Siti Nurhaliza", "city": "Kota Jakarta/Selatan", "note": "é"}
    out = tool(sandbox, "encrypt", {"data": data, "aes_key": KEY, "aes_iv": IV, "escape": False})
    assert out["plaintext"] == php_json_encode(data, escape=False)
    assert out["envelope"]["partner_token"] == "<your partner_token>"
    raw = tool(sandbox, "encrypt", {"data": "not json at all", "aes_key": "k", "aes_iv": "i"})
    assert Codec("k", "i").decrypt_bytes(raw["encode_data"]) == b"not json at all"


def test_decrypt_a_payload_or_a_whole_envelope(sandbox):
    encode_data = CODEC.encrypt_json(PAYLOAD)
    out = tool(sandbox, "decrypt", {"encode_data": encode_data, "aes_key": KEY, "aes_iv": IV})
    assert out["data"] == PAYLOAD and out["plaintext"] == php_json_encode(PAYLOAD)
    envelope = {"partner_token": TOKEN, "encode_data": encode_data}
    assert tool(sandbox, "decrypt", envelope)["data"] == PAYLOAD


def test_decrypt_with_the_wrong_iv_says_so_with_a_hex_preview(sandbox):
    encode_data = CODEC.encrypt_json({**PAYLOAD, "padding": "x" * 40})
    err = tool(
        sandbox,
        "decrypt",
        {"encode_data": encode_data, "aes_key": KEY, "aes_iv": "wrong-iv-1234567"},
        status=400,
    )
    assert err["code"] == 10004 and err["error"] == "not_json"
    assert "the key or IV is probably wrong" in err["message"]
    assert "most likely the IV" in err["message"] and "hex " in err["message"]


def test_decrypt_with_the_wrong_key_or_garbage_is_undecryptable(sandbox):
    encode_data = CODEC.encrypt_json(PAYLOAD)
    err = tool(
        sandbox,
        "decrypt",
        {"encode_data": encode_data, "aes_key": "wrong-key-123456", "aes_iv": IV},
        status=400,
    )
    assert err["code"] in (10003, 10004)
    assert "key" in err["message"]
    err = tool(sandbox, "decrypt", {"encode_data": "abc", "partner_token": TOKEN}, status=400)
    assert (
        err["error"] == "undecryptable" and "openssl_decrypt would return false" in err["message"]
    )


@pytest.mark.parametrize(
    "name, body, status, fragment",
    [
        ("encrypt", {}, 400, "data is required"),
        ("encrypt", {"data": {"a": 1}}, 400, "give partner_token, or aes_key and aes_iv"),
        ("encrypt", {"data": {"a": 1}, "aes_key": KEY}, 400, "give both aes_key and aes_iv"),
        (
            "encrypt",
            {"data": {"a": 1}, "aes_key": KEY, "aes_iv": 7},
            400,
            "aes_iv must be a string of 1-200 characters",
        ),
        (
            "encrypt",
            {"data": 1, "partner_token": TOKEN, "escape": "no"},
            400,
            "escape must be true",
        ),
        ("encrypt", {"data": {"a": 1}, "partner_token": "ghost"}, 404, "partner_token 'ghost'"),
        ("decrypt", {"partner_token": TOKEN}, 400, "encode_data is required"),
        (
            "decrypt",
            {"encode_data": "", "partner_token": TOKEN},
            400,
            "encode_data must be a string of 1-2000000 characters",
        ),
        ("decrypt", {"encode_data": "abc"}, 400, "give partner_token, or aes_key and aes_iv"),
    ],
)
def test_bad_input_is_a_clear_4xx(sandbox, name, body, status, fragment):
    assert fragment in tool(sandbox, name, body, status)["message"]


def test_values_php_cannot_encode_are_refused(sandbox):
    r = sandbox.client.post(
        "/sandbox/tools/encrypt",
        content=b'{"data": {"x": NaN}, "partner_token": "demo"}',
        headers=JSON,
    )
    assert r.status_code == 400 and "Inf and NaN" in r.json()["message"]
