"""sandbox.crypto against the PHP 8.2 openssl golden vectors (tests/data/php_openssl_aes.json)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.core import crypto
from sandbox.core.crypto import Codec, DecryptError, NotJsonError

VECTORS = json.loads(
    (Path(__file__).parents[1] / "data" / "php_openssl_aes.json").read_text("utf-8")
)
SPEC_KEY, SPEC_IV = VECTORS["spec_key"], VECTORS["spec_iv"]
ENCRYPT = VECTORS["encrypt_vectors"]
DECRYPT = VECTORS["decrypt_vectors"]
ENVELOPE = VECTORS["envelope_vectors"]
JSON_BODIES = [v for v in ENCRYPT if "source" in v]


def by_name(vectors):
    return pytest.mark.parametrize("v", vectors, ids=[v["name"] for v in vectors])


def is_default_flags(v) -> bool:
    # json_flags_int is 0 or 320 (UNESCAPED_UNICODE|UNESCAPED_SLASHES); envelopes carry the text.
    return v.get("json_flags_int", 0) == 0 and v["json_flags"].startswith("0")


def test_vector_file_is_complete():
    counts = VECTORS["counts"]
    assert (len(ENCRYPT), len(DECRYPT), len(ENVELOPE)) == (
        counts["encrypt_vectors"],
        counts["decrypt_vectors"],
        counts["envelope_vectors"],
    )
    assert JSON_BODIES, "the JSON body vectors carry a source value"


# --- PHP's own outputs ------------------------------------------------------------------


@by_name(ENCRYPT)
def test_encrypt_matches_php(v):
    assert crypto.encrypt(v["plaintext"], v["key"], v["iv"]) == v["ciphertext_b64"]


@by_name(ENCRYPT)
def test_effective_key_and_iv(v):
    assert crypto.effective_key(v["key"]).hex() == v["effective_key_hex"]
    assert crypto.effective_iv(v["iv"]).hex() == v["effective_iv_hex"]


@by_name(ENCRYPT)
def test_encrypt_accepts_bytes(v):
    args = (bytes.fromhex(v["key_hex"]), bytes.fromhex(v["iv_hex"]))
    assert crypto.encrypt(v["plaintext"].encode(), *args) == v["ciphertext_b64"]


@by_name(DECRYPT)
def test_php_base64_decode(v):
    assert crypto.php_base64_decode(v["input"]).hex() == v["php_base64_decode_hex"]


@by_name(DECRYPT)
def test_decrypt_matches_php(v):
    got = crypto.decrypt(v["input"], v["key"], v["iv"])
    if v["returns"] == "false":
        assert got is None
    else:
        assert got == bytes.fromhex(v["result_hex"])


@by_name(JSON_BODIES)
def test_json_encode_matches_php(v):
    assert crypto.php_json_encode(v["source"], escape=is_default_flags(v)) == v["plaintext"]


@by_name(JSON_BODIES)
def test_codec_encrypt_json_matches_php(v):
    codec = Codec(v["key"], v["iv"])
    assert codec.encrypt_json(v["source"], escape=is_default_flags(v)) == v["ciphertext_b64"]
    assert codec.decrypt_json(v["ciphertext_b64"]) == json.loads(v["plaintext"])


@by_name(ENVELOPE)
def test_envelope(v):
    envelope = {"partner_token": v["partner_token"], "encode_data": v["encode_data"]}
    assert crypto.php_json_encode(envelope, escape=is_default_flags(v)) == v["envelope_json"]
    assert json.loads(v["envelope_json"]) == envelope
    plain = crypto.decrypt(v["encode_data"], SPEC_KEY, SPEC_IV)
    assert plain is not None and crypto.encrypt(plain, SPEC_KEY, SPEC_IV) == v["encode_data"]
    assert isinstance(Codec(SPEC_KEY, SPEC_IV).decrypt_json(v["encode_data"]), dict)


@by_name(ENVELOPE)
def test_envelope_raw_escaped_slashes_still_decrypt(v):
    # A partner that cuts encode_data out of the JSON text keeps "\/": PHP skips the backslash.
    raw_field = re.search(r'"encode_data":"([^"]*)"', v["envelope_json"]).group(1)
    assert crypto.decrypt(raw_field, SPEC_KEY, SPEC_IV) == crypto.decrypt(
        v["encode_data"], SPEC_KEY, SPEC_IV
    )


# --- rules from the vectors, spelled out ---------------------------------------------------


@pytest.mark.parametrize(
    "key, expected",
    [
        ("", b"\x00" * 16),
        ("abc", b"abc" + b"\x00" * 13),
        ("Loan@apis#123456@", b"Loan@apis#123456"),
        (
            "贷款接口密钥123456",
            "贷款接口密钥123456".encode()[:16],
        ),  # cut mid-character: bytes, not chars
        (b"\xff" * 20, b"\xff" * 16),
    ],
    ids=["empty", "short", "spec17", "multibyte_cut", "bytes_long"],
)
def test_effective_key_rule(key, expected):
    assert crypto.effective_key(key) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", b""),
        ("QQ", b"A"),
        ("QUI", b"AB"),
        ("QUJD", b"ABC"),
        ("QUJDR", b"ABC"),  # lone trailing char dropped
        ("Q=U=J=D", b"ABC"),  # '=' ignored anywhere
        ("QU\nJD\r\n", b"ABC"),
        ("QUJD\u00e9", b"ABC"),  # non-ASCII skipped
        (b"Q-U_JD", b"ABC"),  # url-safe characters dropped, not translated
    ],
    ids=[
        "empty",
        "1byte",
        "2bytes",
        "3bytes",
        "lone_char",
        "eq_everywhere",
        "newlines",
        "non_ascii",
        "urlsafe_dropped",
    ],
)
def test_php_base64_decode_rules(text, expected):
    assert crypto.php_base64_decode(text) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (3000000.0, "3000000"),
        (1e25, "1.0e+25"),
        (1.5e-7, "1.5e-7"),
        (0.1, "0.1"),
        (-6.2251, "-6.2251"),
        (1e16, "10000000000000000"),
        (1e17, "1.0e+17"),
        (0.0001, "0.0001"),
        (0.00001, "1.0e-5"),
        (0.5, "0.5"),
        (0.0, "0"),
        (-0.0, "-0"),
        (123456789012345678.0, "1.2345678901234568e+17"),
    ],
    ids=lambda x: repr(x) if isinstance(x, float) else None,
)
def test_php_float_format(value, expected):
    assert crypto.php_json_encode(value) == expected


@pytest.mark.parametrize(
    "value, default, unescaped",
    [
        ("a/b", r'"a\/b"', '"a/b"'),
        ("é", r'"\u00e9"', '"é"'),
        ("😀", r'"\ud83d\ude00"', '"😀"'),
        ("\u2028\u2029", r'"\u2028\u2029"', r'"\u2028\u2029"'),
        (
            '\x01\x7f\b\f\n\r\t"\\',
            r'"\u0001' + "\x7f" + r'\b\f\n\r\t\"\\"',
            r'"\u0001' + "\x7f" + r'\b\f\n\r\t\"\\"',
        ),
        ("<a href='x'>&", "\"<a href='x'>&\"", "\"<a href='x'>&\""),
        ({}, "{}", "{}"),
        ([], "[]", "[]"),
        ((1, True, None), "[1,true,null]", "[1,true,null]"),
        ({1: "x"}, '{"1":"x"}', '{"1":"x"}'),
    ],
    ids=[
        "slash",
        "latin1",
        "astral",
        "line_separators",
        "controls_and_del",
        "html",
        "empty_dict",
        "empty_list",
        "tuple",
        "int_key",
    ],
)
def test_php_json_encode_escapes(value, default, unescaped):
    assert crypto.php_json_encode(value) == default
    assert crypto.php_json_encode(value, escape=False) == unescaped


@pytest.mark.parametrize(
    "value, error",
    [
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("\ud800", ValueError),
        ({"a": {1, 2}}, TypeError),
        ({(1, 2): 1}, TypeError),
    ],
    ids=["nan", "inf", "lone_surrogate", "set", "tuple_key"],
)
def test_php_json_encode_refuses_what_php_refuses(value, error):
    with pytest.raises(error):
        crypto.php_json_encode(value)


# --- round trips ------------------------------------------------------------------------

ROUND_TRIP_KEYS = [
    (SPEC_KEY, SPEC_IV),
    ("", ""),
    ("k", "i"),
    ("密钥" * 5, "向量" * 5),
    (b"\x00" * 16, b"\xff" * 16),
]


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 31, 32, 33, 100, 4096])
@pytest.mark.parametrize(
    "key, iv", ROUND_TRIP_KEYS, ids=["spec", "empty", "short", "multibyte", "raw_bytes"]
)
def test_round_trip_lengths(key, iv, length):
    plain = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    out = crypto.encrypt(plain, key, iv)
    assert len(crypto.php_base64_decode(out)) == 16 * (length // 16 + 1)
    assert crypto.decrypt(out, key, iv) == plain


@pytest.mark.parametrize(
    "obj",
    [
        {},
        [],
        {"order_no": "LN1", "amount": 3000000, "rate": 0.1, "ok": True, "none": None},
        {
            "name": "Siti Nurhaliza ✓",
            "emoji": "😀",
            "url": "https://x.example/a?b=c&d=e",
            "sep": "\u2028",
        },
        [[[[1]]]],
        "just a string",
        42,
    ],
    ids=["empty_obj", "empty_list", "scalars", "unicode", "nested", "string", "int"],
)
@pytest.mark.parametrize("escape", [True, False], ids=["default", "unescaped"])
def test_codec_json_round_trip(obj, escape):
    codec = Codec(SPEC_KEY, SPEC_IV)
    assert codec.decrypt_json(codec.encrypt_json(obj, escape=escape)) == obj


def test_codec_text_round_trip():
    codec = Codec(SPEC_KEY, SPEC_IV)
    assert codec.decrypt_text(codec.encrypt_text("Halo, dunia 👋")) == "Halo, dunia 👋"


# --- Codec errors -----------------------------------------------------------------------


def dvec(name):
    return next(v for v in DECRYPT if v["name"] == name)


@pytest.mark.parametrize("name", [v["name"] for v in DECRYPT if v["returns"] == "false"])
def test_codec_decrypt_error_where_php_returns_false(name):
    v = dvec(name)
    with pytest.raises(DecryptError, match="could not be decrypted") as err:
        Codec(v["key"], v["iv"]).decrypt_json(v["input"])
    assert "wrong key/IV" in str(err.value) and "base64 of AES-128-CBC" in str(err.value)
    assert isinstance(err.value, crypto.CryptoError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    "name, iv_suspect",
    [
        ("dec_wrong_key_garbage_string", False),
        ("dec_wrong_iv_first_block_garbled", True),
        ("dec_drop_first_block", True),
        ("dec_flipped_char", True),
        ("dec_padding_0x01_raw", False),
    ],
)
def test_codec_not_json_error(name, iv_suspect):
    v = dvec(name)
    with pytest.raises(NotJsonError, match="the key or IV is probably wrong") as err:
        Codec(v["key"], v["iv"]).decrypt_json(v["input"])
    raw = bytes.fromhex(v["result_hex"])
    assert err.value.raw == raw and raw[:16].hex() in str(err.value)
    assert err.value.iv_suspect is iv_suspect
    assert isinstance(err.value, crypto.CryptoError)


def test_decrypt_text_not_utf8_is_not_json_error():
    v = dvec("dec_wrong_key_garbage_string")
    with pytest.raises(NotJsonError):
        Codec(v["key"], v["iv"]).decrypt_text(v["input"])


@pytest.mark.parametrize(
    "text",
    ["NaN", "[Infinity]", "", "\ufeff{}", '{"a":1'],
    ids=["nan", "infinity", "empty", "bom", "truncated"],
)
def test_not_json_that_python_might_accept(text):
    codec = Codec(SPEC_KEY, SPEC_IV)
    with pytest.raises(NotJsonError):
        codec.decrypt_json(codec.encrypt_text(text))


def test_codec_repr_hides_secrets():
    assert SPEC_KEY not in repr(Codec(SPEC_KEY, SPEC_IV))


# --- onboarding -------------------------------------------------------------------------


@pytest.mark.parametrize("make", [crypto.generate_key, crypto.generate_iv], ids=["key", "iv"])
def test_generated_secrets(make):
    values = {make() for _ in range(20)}
    assert len(values) == 20
    for value in values:
        assert re.fullmatch(r"[A-Za-z0-9]{16}", value)
        assert crypto.effective_key(value) == value.encode()


@given(st.binary(max_size=300), st.lists(st.sampled_from(" \n=*é"), max_size=4))
def test_php_base64_decode_strict_and_lenient_agree(data, junk):
    # Strict base64 takes the fast path; junk anywhere sends it through PHP's rules. Both
    # must give the bytes the text encodes.
    text = base64.b64encode(data).decode()
    assert crypto.php_base64_decode(text) == data
    cut = len(text) // 2
    assert crypto.php_base64_decode(text[:cut] + "".join(junk) + text[cut:]) == data
