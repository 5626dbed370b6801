"""Indonesian banks, account numbers, payment codes and payout failures (pure, seeded).

Everything here is pure: generators take a `random.Random`, so the same seed gives the same
output. Bank codes, account lengths, virtual-account prefixes and store-code formats follow
what Indonesian banks and retailers issue (docs/protocol.md "Realistic data").
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "BANKS",
    "PAYOUT_FAILURES",
    "REJECT_REASONS",
    "RETAIL_LIMITS",
    "VA_LIMITS",
    "VA_PREFIXES",
    "AmountLimits",
    "Bank",
    "account_problem",
    "bank_by_code",
    "make_bank_account",
    "make_payout_failure",
    "make_reject_reason",
    "make_retail_code",
    "make_va_number",
    "payout_bounce",
]

# --------------------------------------------------------------------------- banks


@dataclass(frozen=True)
class Bank:
    bank_code: str  # our short code, e.g. "BCA"
    bank_name: str
    interbank_code: str  # the 3-digit code used for interbank transfers, e.g. "014"
    account_min_len: int  # account number lengths this bank issues (inside the spec's 9-16)
    account_max_len: int


BANKS: tuple[Bank, ...] = (
    Bank("BCA", "Bank Central Asia", "014", 10, 10),
    Bank("MANDIRI", "Bank Mandiri", "008", 13, 13),
    Bank("BRI", "Bank Rakyat Indonesia", "002", 14, 15),
    Bank("BNI", "Bank Negara Indonesia", "009", 9, 10),
    Bank("CIMB", "Bank CIMB Niaga", "022", 12, 13),
    Bank("DANAMON", "Bank Danamon Indonesia", "011", 10, 16),
    Bank("PERMATA", "Bank Permata", "013", 10, 16),
    Bank("PANIN", "Panin Bank", "019", 10, 16),
    Bank("BTN", "Bank Tabungan Negara", "200", 16, 16),
    Bank("MEGA", "Bank Mega", "426", 10, 16),
    Bank("BUKOPIN", "KB Bank (Bukopin)", "441", 10, 13),
    Bank("MAYBANK", "Maybank Indonesia", "016", 10, 16),
    Bank("OCBC", "Bank OCBC NISP", "028", 10, 16),
    Bank("MUAMALAT", "Bank Muamalat Indonesia", "147", 10, 16),
    Bank("SINARMAS", "Bank Sinarmas", "153", 10, 16),
    Bank("BSI", "Bank Syariah Indonesia", "451", 10, 16),
)
_BANK_BY_KEY: Mapping[str, Bank] = MappingProxyType(
    {b.bank_code: b for b in BANKS} | {b.interbank_code: b for b in BANKS}
)
# The length most accounts of each bank actually have (the min/max above are what we accept).
_TYPICAL_ACCOUNT_LEN: Mapping[str, int] = MappingProxyType(
    {
        "BCA": 10,
        "MANDIRI": 13,
        "BRI": 15,
        "BNI": 10,
        "CIMB": 13,
        "DANAMON": 10,
        "PERMATA": 10,
        "PANIN": 10,
        "BTN": 16,
        "MEGA": 12,
        "BUKOPIN": 10,
        "MAYBANK": 10,
        "OCBC": 12,
        "MUAMALAT": 10,
        "SINARMAS": 10,
        "BSI": 10,
    }
)


def bank_by_code(code: str) -> Bank | None:
    """Look a bank up by its short code (any case) or its 3-digit interbank code."""
    return _BANK_BY_KEY.get(code.strip().upper()) if isinstance(code, str) else None


def _require_bank(bank_code: str) -> Bank:
    bank = bank_by_code(bank_code)
    if bank is None:
        raise ValueError(f"unknown bank code {bank_code!r}")
    return bank


def make_bank_account(rng: random.Random, bank_code: str) -> str:
    """An account number of the bank's usual length (first digit non-zero)."""
    bank = _require_bank(bank_code)
    length = _TYPICAL_ACCOUNT_LEN[bank.bank_code]
    return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(length - 1))


def account_problem(bank_code: str, account: str) -> str | None:
    """Why this account number cannot belong to that bank (English), or None if it can."""
    bank = bank_by_code(bank_code)
    if bank is None:
        return f"unknown bank code {bank_code!r}"
    if not isinstance(account, str) or not account.isascii() or not account.isdigit():
        return "account number must contain digits only"
    lo, hi = bank.account_min_len, bank.account_max_len
    if lo <= len(account) <= hi:
        return None
    expected = f"{lo} digits" if lo == hi else f"{lo} to {hi} digits"
    return f"{bank.bank_name} account numbers have {expected}, got {len(account)}"


# --------------------------------------------------------------------------- payment codes


class AmountLimits(NamedTuple):
    min_amount: int  # whole rupiah, per payment
    max_amount: int


RETAIL_LIMITS: Mapping[str, AmountLimits] = MappingProxyType(
    {
        "ALFAMART": AmountLimits(10_000, 5_000_000),
        "INDOMARET": AmountLimits(10_000, 5_000_000),
    }
)
VA_LIMITS = AmountLimits(10_000, 50_000_000)  # any bank's virtual account

# Company (biller) prefixes of the virtual accounts; a bank not listed gets "88" + its
# interbank code. A VA is always 16 digits: prefix + customer part.
VA_PREFIXES: Mapping[str, str] = MappingProxyType(
    {
        "BCA": "39358",
        "MANDIRI": "88608",
        "BNI": "8808",
        "BRI": "26215",
        "PERMATA": "8625",
        "CIMB": "5919",
        "DANAMON": "7915",
        "BSI": "9347",
        "MAYBANK": "7812",
    }
)
_VA_LEN = 16
_RETAIL_FORMATS: Mapping[str, tuple[str, int]] = MappingProxyType(
    {
        "ALFAMART": ("ALF", 10),
        "INDOMARET": ("IDM", 9),
    }
)
# Uppercase letters and digits minus the easily confused 0/O and 1/I.
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def make_va_number(rng: random.Random, bank_code: str, customer_digits: str) -> str:
    """Bank/company prefix + customer part, 16 digits in all.

    Non-digits in `customer_digits` are dropped; a long customer part keeps its last digits,
    a short one is left-padded with random digits.
    """
    bank = _require_bank(bank_code)
    prefix = VA_PREFIXES.get(bank.bank_code, "88" + bank.interbank_code)
    need = _VA_LEN - len(prefix)
    digits = "".join(c for c in customer_digits if c in "0123456789")[-need:]
    padding = "".join(str(rng.randint(0, 9)) for _ in range(need - len(digits)))
    return prefix + padding + digits


def make_retail_code(rng: random.Random, store: str) -> str:
    """An Alfamart ("ALF" + 10) or Indomaret ("IDM" + 9) payment code, no 0/O/1/I."""
    key = store.strip().upper() if isinstance(store, str) else ""
    if key not in _RETAIL_FORMATS:
        raise ValueError(f"unknown store {store!r}; known: {', '.join(_RETAIL_FORMATS)}")
    prefix, length = _RETAIL_FORMATS[key]
    return prefix + "".join(rng.choice(_CODE_ALPHABET) for _ in range(length))


# --------------------------------------------------------------------------- outcomes' words

REJECT_REASONS: tuple[str, ...] = (
    "Skor kredit tidak memenuhi syarat",
    "Data identitas tidak dapat diverifikasi",
    "Penghasilan belum memenuhi ketentuan minimum",
    "Terdapat pinjaman aktif yang belum lunas",
    "Riwayat keterlambatan pembayaran pada SLIK OJK",
    "Foto KTP dan swafoto tidak sesuai",
    "Nomor ponsel tidak terdaftar atas nama pemohon",
    "Kontak darurat tidak dapat dihubungi",
    "Rasio cicilan terhadap penghasilan terlalu tinggi",
    "Usia pemohon di luar ketentuan",
)

# Named after Xendit's disbursement failure codes (docs/architecture.md "Realistic data").
PAYOUT_FAILURES: Mapping[str, str] = MappingProxyType(
    {
        "INVALID_DESTINATION": "Rekening tujuan tidak valid atau tidak ditemukan",
        "RECIPIENT_ACCOUNT_NUMBER_ERROR": "Nomor rekening penerima salah",
        "REJECTED_BY_BANK": "Transfer ditolak oleh bank penerima",
        "TEMPORARY_BANK_NETWORK_ERROR": "Gangguan sementara pada jaringan bank, silakan coba lagi",
        "UNKNOWN_BANK_NETWORK_ERROR": "Gangguan jaringan bank, status transfer tidak diketahui",
        "SWITCHING_NETWORK_ERROR": "Gangguan pada jaringan antarbank",
        "INSUFFICIENT_BALANCE": "Saldo dana pencairan pemberi pinjaman tidak mencukupi",
        "TRANSFER_ERROR": "Transfer gagal diproses",
    }
)
_PAYOUT_FAILURE_ITEMS: tuple[tuple[str, str], ...] = tuple(PAYOUT_FAILURES.items())


def payout_bounce(bank_code: str, account: str) -> str | None:
    """The failure code a disbursement to this account comes back with, or None if it can go
    through: a number that cannot be that bank's is refused by the bank's account check.
    A bank not in BANKS (added in a fixture) has no known lengths: nothing bounces."""
    if bank_by_code(bank_code) is None or not account_problem(bank_code, account):
        return None
    return "RECIPIENT_ACCOUNT_NUMBER_ERROR"


def make_reject_reason(rng: random.Random) -> str:
    """A borrower-facing review rejection reason (Indonesian)."""
    return rng.choice(REJECT_REASONS)


def make_payout_failure(rng: random.Random) -> tuple[str, str]:
    """(reason code, Indonesian message) for a failed disbursement."""
    return rng.choice(_PAYOUT_FAILURE_ITEMS)
