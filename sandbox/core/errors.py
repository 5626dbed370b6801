"""The error-code catalog: one error type (code + message) and one entry per business code.

Every failure a client can cause maps to an entry here; `api` and `control` serialize
`SandboxError` once at the edge. The catalog is also rendered into docs/errors.md and the
OpenAPI document, so the codes a user reads are the codes the server sends.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: int
    name: str
    message: str  # Indonesian, borrower-facing (what a real lender sends)
    meaning: str  # English: when it happens


CATALOG: tuple[ErrorCode, ...] = (
    ErrorCode(
        10001,
        "bad_envelope",
        "Format permintaan tidak valid",
        "The body is not a JSON object with string fields `partner_token` and `encode_data`.",
    ),
    ErrorCode(
        10002, "unknown_partner", "Mitra tidak dikenal", "No partner has this `partner_token`."
    ),
    ErrorCode(
        10003,
        "undecryptable",
        "Data tidak dapat didekripsi",
        "`encode_data` does not decrypt (PHP's openssl_decrypt would return false): "
        "wrong key/IV, or not the base64 of AES-128-CBC output.",
    ),
    ErrorCode(
        10004,
        "not_json",
        "Data terenkripsi bukan JSON",
        "`encode_data` decrypted to bytes that are not UTF-8 JSON: the key or IV is probably "
        "wrong.",
    ),
    ErrorCode(
        10005,
        "not_object",
        "Data harus berupa objek JSON",
        "The decrypted payload is JSON but not an object.",
    ),
    ErrorCode(
        10006,
        "missing_field",
        "Parameter wajib tidak ada",
        "A required field is missing; the message names it.",
    ),
    ErrorCode(
        10007,
        "invalid_field",
        "Parameter tidak valid",
        "A field is malformed or out of range; the message names it and the rule.",
    ),
    ErrorCode(
        10008,
        "unknown_product",
        "Produk tidak ditemukan",
        "`product_id` is not one of the lender's products.",
    ),
    ErrorCode(
        10009,
        "amount_not_offered",
        "Jumlah atau tenor pinjaman tidak tersedia",
        "The amount is outside the product's range or step, or the term/unit is not offered.",
    ),
    ErrorCode(
        10010,
        "unknown_bank",
        "Bank tidak didukung",
        "`bank_code` (or `method_code`) is not in the lender's list.",
    ),
    ErrorCode(
        10011,
        "fault_injected",
        "Layanan sedang sibuk, silakan coba lagi",
        "A fault rule (PUT /sandbox/faults) chose this answer.",
    ),
    ErrorCode(
        10013,
        "body_too_large",
        "Permintaan terlalu besar",
        "The request body exceeds the configured limit (also answered with HTTP 413).",
    ),
    ErrorCode(
        10014,
        "not_found",
        "Data tidak ditemukan",
        "Control API: the object named in the path (a callback delivery, a fault rule) does "
        "not exist.",
    ),
    ErrorCode(
        10015,
        "conflict",
        "Permintaan bertabrakan, silakan coba lagi",
        "Control API: the object kept changing under this request (a clock moved by many "
        "requests at once): send it again.",
    ),
    ErrorCode(
        10016,
        "unauthorized",
        "Autentikasi diperlukan",
        "Control API and dashboard: no token, or a token that is neither the admin token nor "
        "a partner's control token (HTTP 401).",
    ),
    ErrorCode(
        10017,
        "forbidden",
        "Akses ditolak",
        "Control API and dashboard: the token may not do this — a partner's control token on "
        "another partner's route or on an admin route, or a write from a web page of another "
        "origin (HTTP 403).",
    ),
    ErrorCode(
        10018,
        "unsupported_media_type",
        "Jenis konten tidak didukung",
        "Control API: a body that is not sent as JSON (`Content-Type: application/json`); "
        "forms and text/plain are refused (HTTP 415).",
    ),
    ErrorCode(
        10019,
        "wrong_host",
        "Host tidak dikenal",
        "A sandbox on a loopback address answers only requests whose Host is a loopback name "
        "or address, or [server] public_url's host (HTTP 421).",
    ),
    ErrorCode(
        10020,
        "callback_refused",
        "Alamat callback tidak diizinkan",
        "A shared sandbox does not send callbacks to loopback, private, link-local or its own "
        "addresses unless `[callbacks] allow` lists them (a callback_url naming one is a 400; "
        "a name resolving to one fails the attempt).",
    ),
    ErrorCode(
        10099,
        "internal",
        "Terjadi kesalahan sistem",
        "An unexpected error inside the sandbox. Please report it: it is a sandbox bug.",
    ),
    ErrorCode(
        11001,
        "order_not_found",
        "Pesanan tidak ditemukan",
        "No order with this `order_no` for this partner.",
    ),
    ErrorCode(
        11002,
        "wrong_state",
        "Status pesanan tidak mengizinkan operasi ini",
        "The order's status does not allow this call; the message says the status and what "
        "is allowed.",
    ),
    ErrorCode(
        11003,
        "duplicate_order",
        "Nomor pesanan sudah digunakan",
        "The `order_no` exists with a different payload (an identical replay is accepted).",
    ),
    ErrorCode(
        11004,
        "unsettled_loan",
        "Anda masih memiliki pinjaman yang belum lunas",
        "The person (NIK or mobile) has an open loan with this lender (an order at 80 or later "
        "that is not rejected, cancelled or settled).",
    ),
    ErrorCode(
        11005,
        "name_mismatch",
        "Nama pemilik rekening tidak sesuai",
        "`user_name` differs from the order's name (08 push-bind-bank).",
    ),
    ErrorCode(
        11006,
        "no_bank_card",
        "Rekening bank belum diikat",
        "The order has no bound bank account (08 must come before 11).",
    ),
    ErrorCode(
        11007,
        "recently_rejected",
        "tidakbisameminjam,telahditolakdalam30hariterakhir",
        "The person was rejected in the last 30 (virtual) days, or a scenario rejects at precheck.",
    ),
    ErrorCode(
        11008,
        "extension_not_allowed",
        "Perpanjangan tidak tersedia",
        "The product offers no extension, the limit is reached, or the `delay_term` is not "
        "offered.",
    ),
    ErrorCode(
        11009,
        "order_mismatch",
        "Data pesanan tidak sesuai",
        "A field repeats the order's data with a different value (product, mobile, amount, term).",
    ),
    ErrorCode(
        11010,
        "payment_rejected",
        "Pembayaran ditolak",
        "The payment code is unknown, expired, already used, for a settled order, or the "
        "amount is wrong.",
    ),
    ErrorCode(
        11011,
        "illegal_trigger",
        "Transisi tidak diizinkan",
        "A control-API transition that the state machine does not allow from the current status.",
    ),
)

BY_NAME = {e.name: e for e in CATALOG}
BY_CODE = {e.code: e for e in CATALOG}


class SandboxError(Exception):
    """A business or protocol error: answered as HTTP 200 with `code` != 0 (docs/protocol.md §1)."""

    def __init__(self, name: str, detail: str | None = None, *, http_status: int = 200):
        entry = BY_NAME[name]
        self.code = entry.code
        self.name = name
        # The base message is Indonesian like a real lender's; the detail (English,
        # technical) is what an integrating developer needs to fix the call.
        self.message = f"{entry.message}: {detail}" if detail else entry.message
        self.detail = detail
        self.http_status = http_status
        super().__init__(self.message)


class ControlError(SandboxError):
    """A control-API refusal: JSON with an HTTP 4xx status (400 unless said otherwise)."""

    def __init__(self, name: str, detail: str | None = None, http_status: int = 400):
        super().__init__(name, detail, http_status=http_status)


def missing(field: str) -> SandboxError:
    return SandboxError("missing_field", f"{field} is required")


def invalid(field: str, rule: str) -> SandboxError:
    return SandboxError("invalid_field", f"{field} {rule}")
