"""PHP-compatible AES-128-CBC codec for the partner API envelope."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import string
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import jsontext

__all__ = [
    "BLOCK",
    "Codec",
    "CryptoError",
    "DecryptError",
    "NotJsonError",
    "decrypt",
    "effective_iv",
    "effective_key",
    "encrypt",
    "generate_iv",
    "generate_key",
    "loads_json",
    "php_base64_decode",
    "php_json_encode",
]

BLOCK = 16
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_KEY_ALPHABET = string.ascii_letters + string.digits


class CryptoError(ValueError):
    """Base class: the envelope payload could not be turned back into JSON."""


class DecryptError(CryptoError):
    """Where PHP's openssl_decrypt returns false."""


class NotJsonError(CryptoError):
    """Decryption 'worked' but produced bytes that are not UTF-8 JSON: usually a wrong key or IV."""

    def __init__(self, raw: bytes):
        self.raw = raw
        self.iv_suspect = _iv_suspect(raw)
        self.preview = _preview(raw)
        hint = (
            " (most likely the IV: only the first 16 bytes are garbled)" if self.iv_suspect else ""
        )
        super().__init__(
            f"decrypted, but the result is not UTF-8 JSON: the key or IV is probably wrong{hint}; "
            f"{self.preview}"
        )


# --- key / IV ---------------------------------------------------------------------------


def _as_bytes(value: str | bytes) -> bytes:
    # PHP strings are byte strings; the partners' PHP sources are UTF-8.
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def effective_key(key: str | bytes) -> bytes:
    """The 16 bytes PHP really uses: NUL-padded or cut, byte-wise.

    So the spec's 17-character key loses its final '@'."""
    return _as_bytes(key)[:BLOCK].ljust(BLOCK, b"\x00")


effective_iv = effective_key  # PHP applies the same rule to the IV (plus a warning we don't mimic)


def _cipher(key: str | bytes, iv: str | bytes) -> Cipher:
    return Cipher(algorithms.AES(effective_key(key)), modes.CBC(effective_iv(iv)))


# --- base64 -----------------------------------------------------------------------------


def php_base64_decode(s: str | bytes) -> bytes:
    """PHP's non-strict base64_decode: skip every non-alphabet byte ('=' included), never fail."""
    try:  # the common case, strict base64, decodes alike both ways and 20x faster
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):  # junk, a missing pad, non-ASCII text
        pass
    # Non-ASCII characters are never in the alphabet, so dropping them up front is equivalent.
    raw = s.encode("ascii", "ignore") if isinstance(s, str) else bytes(s)
    clean = _B64_JUNK.sub(b"", raw)
    if len(clean) % 4 == 1:  # a lone 6-bit leftover cannot make a byte: PHP drops it
        clean = clean[:-1]
    return base64.b64decode(clean + b"=" * (-len(clean) % 4))


# --- AES-128-CBC ------------------------------------------------------------------------


def encrypt(plaintext: str | bytes, key: str | bytes, iv: str | bytes) -> str:
    """openssl_encrypt($plaintext, 'AES-128-CBC', $key, 0, $iv)."""
    return _encrypt(_cipher(key, iv), plaintext)


def _encrypt(cipher: Cipher, plaintext: str | bytes) -> str:
    data = _as_bytes(plaintext)
    pad = BLOCK - len(data) % BLOCK  # always 1..16 bytes: an exact block gets a whole pad block
    enc = cipher.encryptor()
    body = enc.update(data + bytes([pad]) * pad) + enc.finalize()
    return base64.b64encode(body).decode("ascii")


def decrypt(data: str | bytes, key: str | bytes, iv: str | bytes) -> bytes | None:
    """openssl_decrypt($data, 'AES-128-CBC', $key, 0, $iv): the bytes, or None for PHP's false."""
    return _decrypt(_cipher(key, iv), data)


def _decrypt(cipher: Cipher, data: str | bytes) -> bytes | None:
    body = php_base64_decode(data)
    if not body or len(body) % BLOCK:
        return None  # OpenSSL: "wrong final block length"
    dec = cipher.decryptor()
    out = dec.update(body) + dec.finalize()
    return _unpad(out)


def _unpad(out: bytes) -> bytes | None:
    # Checked by hand rather than with cryptography's unpadder so "false" matches OpenSSL's
    # EVP_DecryptFinal exactly ("bad decrypt"), which is how a wrong key usually shows up.
    n = out[-1]
    if not 1 <= n <= BLOCK or out[-n:] != bytes([n]) * n:
        return None
    return out[:-n]


# --- json_encode ------------------------------------------------------------------------

_SHORT = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
# Default flags escape '/' and all non-ASCII; UNESCAPED_UNICODE|SLASHES still escapes
# U+2028/U+2029. Neither escapes DEL (0x7f), unlike Python's ensure_ascii.
_ESC_DEFAULT = re.compile('[\x00-\x1f"\\\\/\u0080-\U0010ffff]')
_ESC_UNESCAPED = re.compile('[\x00-\x1f"\\\\\u2028\u2029]')
_MAX_DEPTH = 512  # PHP's default json_encode depth; deeper input makes it return false


def _escape_char(m: re.Match) -> str:
    ch = m.group()
    if ch in _SHORT:
        return _SHORT[ch]
    cp = ord(ch)
    if cp > 0xFFFF:  # PHP writes astral characters as a UTF-16 surrogate pair
        cp -= 0x10000
        return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"
    return f"\\u{cp:04x}"


def _php_string(s: str, escape: bool) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: PHP sees malformed UTF-8 and returns false
        raise ValueError("json_encode: string is not valid UTF-8") from None
    if escape:
        return '"' + _ESC_DEFAULT.sub(_escape_char, s) + '"'
    return '"' + _ESC_UNESCAPED.sub(_escape_char, s) + '"'


def _shortest_digits(x: float) -> tuple[str, int]:
    """repr()'s round-trip digits and decimal point (x = 0.DIGITS * 10**decpt): zend_dtoa mode 0."""
    mantissa, _, exp = repr(x).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits, decpt = whole + frac, len(whole) + int(exp or 0)
    stripped = digits.lstrip("0")
    decpt -= len(digits) - len(stripped)
    return stripped.rstrip("0") or "0", decpt


def _php_float(x: float) -> str:
    """php_gcvt(x, 17, '.', 'e') as json_encode uses it with serialize_precision = -1."""
    if not math.isfinite(x):
        raise ValueError("json_encode: Inf and NaN cannot be JSON encoded")
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    sign = "-" if x < 0 else ""
    digits, decpt = _shortest_digits(abs(x))
    if decpt < -3 or decpt > 17:
        exp = decpt - 1
        return f"{sign}{digits[0]}.{digits[1:] or '0'}e{'+' if exp >= 0 else '-'}{abs(exp)}"
    if decpt <= 0:
        return f"{sign}0.{'0' * -decpt}{digits}"
    whole, frac = digits[:decpt].ljust(decpt, "0"), digits[decpt:]
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def _encode(obj: object, escape: bool, depth: int) -> str:
    if obj is None or isinstance(obj, bool):
        return {None: "null", True: "true", False: "false"}[obj]
    if isinstance(obj, int):
        return int.__repr__(obj)  # not str(): IntEnum members would print their names
    if isinstance(obj, float):
        return _php_float(float(obj))
    if isinstance(obj, str):
        return _php_string(obj, escape)
    if depth >= _MAX_DEPTH and isinstance(obj, (dict, list, tuple)):
        raise ValueError(f"json_encode: maximum depth of {_MAX_DEPTH} exceeded")
    if isinstance(obj, dict):
        items = (
            _php_string(_key(k), escape) + ":" + _encode(v, escape, depth + 1)
            for k, v in obj.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(_encode(v, escape, depth + 1) for v in obj) + "]"
    raise TypeError(f"json_encode: cannot encode {type(obj).__name__}")


def _key(k: object) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, int) and not isinstance(k, bool):  # PHP arrays with int keys become objects
        return int.__repr__(k)
    raise TypeError(f"json_encode: object keys must be str or int, not {type(k).__name__}")


def php_json_encode(obj: object, *, escape: bool = True) -> str:
    """PHP json_encode: default flags if escape, else JSON_UNESCAPED_UNICODE|JSON_UNESCAPED_SLASHES.

    Python dicts become objects (an empty dict is `{}`), lists/tuples arrays; integral floats
    lose their `.0` (no JSON_PRESERVE_ZERO_FRACTION), as PHP writes them.
    """
    return _encode(obj, escape, 0)


# --- JSON on the way back ---------------------------------------------------------------


def _reject_constant(name: str) -> object:
    raise ValueError(
        f"{name} is not JSON"
    )  # Python accepts NaN/Infinity; PHP's json_decode does not


def _preview(raw: bytes, n: int = 16) -> str:
    head = raw[:n]
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in head)
    more = "..." if len(raw) > n else ""
    return f"first {len(head)} of {len(raw)} bytes: hex {head.hex()}{more} | text {text!r}{more}"


_LEADING_CONTINUATION = re.compile(rb"^[\x80-\xbf]{1,3}")


def _is_clean_text(raw: bytes) -> bool:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c >= " " or c in "\t\r\n" for c in text)


def _iv_suspect(raw: bytes) -> bool:
    # CBC with a wrong IV garbles only the first block (and a wrong key garbles all of them),
    # so a clean tail after a dirty head points at the IV (or a dropped first block).
    tail = _LEADING_CONTINUATION.sub(b"", raw[BLOCK:])  # the block edge may cut a UTF-8 character
    return len(tail) >= 4 and not _is_clean_text(raw[:BLOCK]) and _is_clean_text(tail)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # json.loads makes one per call


def loads_json(raw: bytes) -> object:
    """Parse decrypted bytes as UTF-8 JSON, or raise NotJsonError with a diagnosis and a preview."""
    try:
        return jsontext.loads(raw.decode("utf-8"), _DECODER.decode)
    except (ValueError, RecursionError):  # Unicode/JSON decode errors; absurdly deep nesting
        raise NotJsonError(raw) from None


# --- the codec a partner's key/IV pair gives ---------------------------------------------


@dataclass(frozen=True)
class Codec:
    key: str | bytes = field(repr=False)  # kept out of repr so a logged codec leaks no secret
    iv: str | bytes = field(repr=False)

    def encrypt_bytes(self, data: str | bytes) -> str:
        return _encrypt(self._cipher, data)

    def encrypt_text(self, text: str) -> str:
        return _encrypt(self._cipher, text)

    def encrypt_json(self, obj: object, escape: bool = True) -> str:
        return _encrypt(self._cipher, php_json_encode(obj, escape=escape))

    @cached_property
    def _cipher(self) -> Cipher:  # made once per codec: its key schedule costs a tenth of a decrypt
        return _cipher(self.key, self.iv)

    def decrypt_bytes(self, data: str | bytes) -> bytes:
        raw = _decrypt(self._cipher, data)
        if raw is None:
            raise DecryptError(
                "the ciphertext could not be decrypted (PHP's openssl_decrypt would return false): "
                "wrong key/IV, or the data is not the base64 of AES-128-CBC output"
            )
        return raw

    def decrypt_text(self, data: str | bytes) -> str:
        raw = self.decrypt_bytes(data)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NotJsonError(raw) from None

    def decrypt_json(self, data: str | bytes) -> object:
        return loads_json(self.decrypt_bytes(data))


# --- onboarding -------------------------------------------------------------------------


def generate_key() -> str:
    """16 random letters/digits: exactly 16 bytes, so PHP neither pads nor cuts it."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(BLOCK))


def generate_iv() -> str:
    return generate_key()
