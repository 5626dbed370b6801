"""Realistic Indonesian people: NIKs, regions, mobiles, names — generators, validators (pure)

Facts: docs/protocol.md "Realistic data". Everything here is pure: no I/O, no wall clock
(`today` is always an argument), and every generator takes a `random.Random` (or a seed string
for `make_person`), so the same seed always gives the same output. Module-level tables are
immutable; the only lazily-built thing is a cache of Faker's `id_ID` word lists.

Region codes follow Kemendagri (Kepmendagri 300.2.2-2138/2025): PP.RR.DD = province, regency
or city, district (kecamatan). Every row of `REGIONS` was checked against that list.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import NamedTuple

from .banks import BANKS, make_bank_account

__all__ = [
    "OPERATOR_PREFIXES",
    "PROVINCES",
    "REGIONS",
    "EmergencyContact",
    "NikInfo",
    "Person",
    "Region",
    "clean_name",
    "is_valid_nik",
    "make_mobile",
    "make_nik",
    "make_person",
    "mobile_operator",
    "normalize_mobile",
    "parse_nik",
    "region_by_code",
]

# --------------------------------------------------------------------------- regions

# Every province code in use (38 provinces). NIKs keep the code they were issued with, so the
# Papua codes cover both numberings: before 2022 Papua Barat was 91 and Papua 94; since the 2022
# split 91 Papua, 92 Papua Barat, 93 Papua Selatan, 94 Papua Tengah, 95 Papua Pegunungan,
# 96 Papua Barat Daya. There is no 97.
PROVINCES: Mapping[str, str] = MappingProxyType(
    {
        "11": "Aceh",
        "12": "Sumatera Utara",
        "13": "Sumatera Barat",
        "14": "Riau",
        "15": "Jambi",
        "16": "Sumatera Selatan",
        "17": "Bengkulu",
        "18": "Lampung",
        "19": "Kepulauan Bangka Belitung",
        "21": "Kepulauan Riau",
        "31": "DKI Jakarta",
        "32": "Jawa Barat",
        "33": "Jawa Tengah",
        "34": "DI Yogyakarta",
        "35": "Jawa Timur",
        "36": "Banten",
        "51": "Bali",
        "52": "Nusa Tenggara Barat",
        "53": "Nusa Tenggara Timur",
        "61": "Kalimantan Barat",
        "62": "Kalimantan Tengah",
        "63": "Kalimantan Selatan",
        "64": "Kalimantan Timur",
        "65": "Kalimantan Utara",
        "71": "Sulawesi Utara",
        "72": "Sulawesi Tengah",
        "73": "Sulawesi Selatan",
        "74": "Sulawesi Tenggara",
        "75": "Gorontalo",
        "76": "Sulawesi Barat",
        "81": "Maluku",
        "82": "Maluku Utara",
        "91": "Papua",
        "92": "Papua Barat",
        "93": "Papua Selatan",
        "94": "Papua Tengah",
        "95": "Papua Pegunungan",
        "96": "Papua Barat Daya",
    }
)


class Region(NamedTuple):
    """One kecamatan: the first six digits of a NIK and the names that go with them."""

    province_code: str
    regency_code: str
    district_code: str
    province: str
    city: str
    district: str

    @property
    def code(self) -> str:
        return self.province_code + self.regency_code + self.district_code


def _rows(
    province_code: str, city_code: str, city: str, *districts: tuple[str, str]
) -> list[Region]:
    province = PROVINCES[province_code]
    return [
        Region(province_code, city_code, code, province, city, name) for code, name in districts
    ]


REGIONS: tuple[Region, ...] = tuple(
    _rows("31", "71", "Kota Jakarta Pusat", ("06", "Menteng"), ("07", "Tanah Abang"))
    + _rows("31", "72", "Kota Jakarta Utara", ("02", "Tanjung Priok"), ("06", "Kelapa Gading"))
    + _rows("31", "73", "Kota Jakarta Barat", ("01", "Cengkareng"), ("05", "Kebon Jeruk"))
    + _rows(
        "31",
        "74",
        "Kota Jakarta Selatan",
        ("01", "Tebet"),
        ("07", "Kebayoran Baru"),
        ("09", "Jagakarsa"),
    )
    + _rows("31", "75", "Kota Jakarta Timur", ("03", "Jatinegara"), ("07", "Duren Sawit"))
    + _rows("32", "01", "Kabupaten Bogor", ("01", "Cibinong"), ("13", "Bojonggede"))
    + _rows("32", "73", "Kota Bandung", ("02", "Coblong"), ("13", "Lengkong"), ("22", "Buahbatu"))
    + _rows("32", "75", "Kota Bekasi", ("01", "Bekasi Timur"), ("09", "Jatiasih"))
    + _rows("32", "76", "Kota Depok", ("01", "Pancoran Mas"), ("06", "Beji"))
    + _rows(
        "33",
        "74",
        "Kota Semarang",
        ("03", "Semarang Timur"),
        ("10", "Tembalang"),
        ("11", "Banyumanik"),
    )
    + _rows("33", "76", "Kota Tegal", ("01", "Tegal Barat"))
    + _rows("34", "02", "Kabupaten Bantul", ("08", "Bantul"), ("15", "Sewon"))
    + _rows("34", "04", "Kabupaten Sleman", ("07", "Depok"))
    + _rows(
        "35",
        "78",
        "Kota Surabaya",
        ("03", "Rungkut"),
        ("07", "Genteng"),
        ("08", "Gubeng"),
        ("09", "Sukolilo"),
    )
    + _rows("35", "79", "Kota Batu", ("01", "Batu"))
    + _rows("36", "71", "Kota Tangerang", ("05", "Cipondoh"), ("07", "Karawaci"))
    + _rows("36", "74", "Kota Tangerang Selatan", ("03", "Pondok Aren"), ("06", "Pamulang"))
    + _rows("36", "73", "Kota Serang", ("01", "Serang"))
    + _rows("51", "03", "Kabupaten Badung", ("01", "Kuta"), ("02", "Mengwi"))
    + _rows("51", "02", "Kabupaten Tabanan", ("05", "Tabanan"))
    + _rows(
        "12",
        "71",
        "Kota Medan",
        ("17", "Medan Baru"),
        ("20", "Medan Timur"),
        ("21", "Medan Selayang"),
    )
    + _rows("12", "75", "Kota Binjai", ("02", "Binjai Kota"))
    + _rows("21", "71", "Kota Batam", ("03", "Sekupang"), ("06", "Lubuk Baja"))
    + _rows("18", "02", "Kabupaten Lampung Tengah", ("07", "Terbanggi Besar"))
    + _rows("19", "71", "Kota Pangkal Pinang", ("02", "Taman Sari"))
    + _rows(
        "73", "71", "Kota Makassar", ("01", "Mariso"), ("02", "Mamajang"), ("04", "Ujung Pandang")
    )
    + _rows("64", "71", "Kota Balikpapan", ("05", "Balikpapan Selatan"), ("06", "Balikpapan Kota"))
    + _rows("64", "72", "Kota Samarinda", ("03", "Samarinda Ulu"), ("09", "Samarinda Kota"))
    + _rows(
        "91", "71", "Kota Jayapura", ("01", "Jayapura Utara"), ("03", "Abepura"), ("05", "Heram")
    )
    + _rows("92", "02", "Kabupaten Manokwari", ("12", "Manokwari Barat"), ("13", "Manokwari Timur"))
    + _rows("92", "06", "Kabupaten Teluk Bintuni", ("01", "Bintuni"))
)

_REGION_BY_CODE: Mapping[str, Region] = MappingProxyType({r.code: r for r in REGIONS})


def region_by_code(code: str) -> Region | None:
    """The REGIONS row for a 6-digit PPRRDD code (a NIK's first six digits), or None."""
    return _REGION_BY_CODE.get(code[:6])


# --------------------------------------------------------------------------- NIK

_DIGITS_16 = re.compile(r"[0-9]{16}")
# Birth dates drawn when make_nik is not given one (no wall clock here: a fixed window).
_DEFAULT_BIRTH_RANGE = (date(1970, 1, 1).toordinal(), date(2004, 12, 31).toordinal())


@dataclass(frozen=True)
class NikInfo:
    province_code: str
    regency_code: str
    district_code: str
    sex: int  # spec enum: 1 male, 2 female
    birth_date: date
    serial: int  # 1..9999
    region: Region | None  # the REGIONS row, when the district is one we know

    @property
    def province(self) -> str:
        return PROVINCES[self.province_code]


def make_nik(
    rng: random.Random,
    *,
    region: Region | None = None,
    sex: int | None = None,
    birth_date: date | None = None,
) -> str:
    """A structurally valid NIK: PPRRDD + DDMMYY (day + 40 for women) + serial 0001..9999."""
    region = region or rng.choice(REGIONS)
    sex = sex if sex is not None else rng.choice((1, 2))
    if sex not in (1, 2):
        raise ValueError(f"sex must be 1 (male) or 2 (female), not {sex!r}")
    if birth_date is None:
        birth_date = date.fromordinal(rng.randint(*_DEFAULT_BIRTH_RANGE))
    day = birth_date.day + (40 if sex == 2 else 0)
    serial = rng.randint(1, 9999)
    return f"{region.code}{day:02d}{birth_date.month:02d}{birth_date.year % 100:02d}{serial:04d}"


def _birth_date(day: int, month: int, yy: int, today: date) -> date | None:
    """The century is the latest one that does not put the birth after `today`."""
    for year in (2000 + yy, 1900 + yy):
        try:
            born = date(year, month, day)
        except ValueError:
            continue  # e.g. 29 Feb in a non-leap year of that century
        if born <= today:
            return born
    return None


def parse_nik(nik: str, *, today: date) -> NikInfo | None:
    """Decode a NIK; None when it is not structurally valid.

    Checks: 16 digits, a real province code, regency and district not 00, day 1-31 (men) or
    41-71 (women), month 1-12, a date that exists and is not after `today`, serial not 0000.
    """
    if not isinstance(nik, str) or not _DIGITS_16.fullmatch(nik):
        return None
    province, regency, district = nik[0:2], nik[2:4], nik[4:6]
    if province not in PROVINCES or regency == "00" or district == "00":
        return None
    day, month, yy, serial = int(nik[6:8]), int(nik[8:10]), int(nik[10:12]), int(nik[12:16])
    if 1 <= day <= 31:
        sex = 1
    elif 41 <= day <= 71:
        sex, day = 2, day - 40
    else:
        return None
    if not 1 <= month <= 12 or serial == 0:
        return None
    born = _birth_date(day, month, yy, today)
    if born is None:
        return None
    return NikInfo(province, regency, district, sex, born, serial, region_by_code(nik))


def is_valid_nik(nik: str, *, strict: bool = False, today: date) -> bool:
    """Non-strict: 16 digits (the protocol's ruling). Strict: `parse_nik` accepts it."""
    if strict:
        return parse_nik(nik, today=today) is not None
    return isinstance(nik, str) and _DIGITS_16.fullmatch(nik) is not None


# --------------------------------------------------------------------------- mobiles

OPERATOR_PREFIXES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "Telkomsel": ("0811", "0812", "0813", "0821", "0822", "0823", "0851", "0852", "0853"),
        "Indosat": ("0814", "0815", "0816", "0855", "0856", "0857", "0858"),
        "XL": ("0817", "0818", "0819", "0859", "0877", "0878"),
        "Axis": ("0831", "0832", "0833", "0838"),
        "Tri": ("0895", "0896", "0897", "0898", "0899"),
        "Smartfren": ("0881", "0882", "0883", "0884", "0885", "0886", "0887", "0888", "0889"),
    }
)
_OPERATOR_BY_PREFIX: Mapping[str, str] = MappingProxyType(
    {p: op for op, prefixes in OPERATOR_PREFIXES.items() for p in prefixes}
)
_ALL_PREFIXES: tuple[str, ...] = tuple(_OPERATOR_BY_PREFIX)
_SPEC_MOBILE = re.compile(r"8[0-9]{8,12}")
_MOBILE_SEPARATORS = re.compile(r"[\s\-().]")


def make_mobile(rng: random.Random, operator: str | None = None) -> str:
    """A mobile in the spec's form, without the leading 0: e.g. "81234567890" (10-12 digits)."""
    if operator is None:
        prefix = rng.choice(_ALL_PREFIXES)
    elif operator in OPERATOR_PREFIXES:
        prefix = rng.choice(OPERATOR_PREFIXES[operator])
    else:
        raise ValueError(f"unknown operator {operator!r}; known: {', '.join(OPERATOR_PREFIXES)}")
    # Domestic numbers are 08xx + 7-9 digits; 8 is by far the most common (0812-3456-7890).
    subscriber_len = rng.choices((7, 8, 9), weights=(2, 6, 2))[0]
    first = str(rng.randint(1, 9))
    rest = "".join(str(rng.randint(0, 9)) for _ in range(subscriber_len - 1))
    return prefix[1:] + first + rest


def normalize_mobile(mobile: str) -> str | None:
    """ "8…", "08…", "628…" or "+628…" (spaces and dashes allowed) to the spec form, else None."""
    if not isinstance(mobile, str):
        return None
    digits = _MOBILE_SEPARATORS.sub("", mobile.strip())
    for lead in ("+62", "62", "0"):
        if digits.startswith(lead):
            digits = digits[len(lead) :]
            break
    return digits if _SPEC_MOBILE.fullmatch(digits) else None


def mobile_operator(mobile: str) -> str | None:
    """The operator owning a mobile's prefix, or None (not a mobile, or an unknown prefix)."""
    spec = normalize_mobile(mobile)
    return _OPERATOR_BY_PREFIX.get("0" + spec[:3]) if spec else None


# --------------------------------------------------------------------------- people


@dataclass(frozen=True)
class _Words:
    """Faker's id_ID word lists, read once (Faker has no NIK, mobile or bank provider)."""

    first_male: tuple[str, ...]
    first_female: tuple[str, ...]
    last_male: tuple[str, ...]
    last_female: tuple[str, ...]
    company_prefixes: tuple[str, ...]
    company_suffixes: tuple[str, ...]


@functools.cache
def _words() -> _Words:
    # The provider classes hold the data; drawing from them with our own Random keeps every
    # call independent and thread-safe (a shared Faker would need seed_instance per call).
    from faker.providers.company.id_ID import Provider as Company
    from faker.providers.person.id_ID import Provider as Person

    def names(values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v for v in (clean_name(x) for x in values) if v)

    return _Words(
        names(Person.first_names_male),
        names(Person.first_names_female),
        names(Person.last_names_male),
        names(Person.last_names_female),
        tuple(Company.company_prefixes),
        tuple(Company.company_suffixes),
    )


_TITLES = frozenset(
    t.lower()
    for t in (
        "dr",
        "drg",
        "drs",
        "dra",
        "ir",
        "h",
        "hj",
        "kh",
        "r",
        "rm",
        "ra",
        "t",
        "tgk",
        "dt",
        "prof",
        "s.ked",
        "s.gz",
        "s.pt",
        "s.ip",
        "s.e.i",
        "s.e",
        "s.kom",
        "s.h",
        "s.t",
        "s.pd",
        "s.psi",
        "s.i.kom",
        "s.sos",
        "s.farm",
        "m.m",
        "m.kom",
        "m.ti",
        "m.pd",
        "m.farm",
        "m.ak",
    )
)


def clean_name(raw: str) -> str:
    """A name fit for the spec's `user_name` (^[A-Za-z ]+$): titles and punctuation removed."""
    words = []
    for token in re.split(r"[\s,]+", raw):
        bare = token.strip(".").lower()
        if bare in _TITLES or (token.endswith(".") and len(bare) <= 3):
            continue
        letters = re.sub(r"[^A-Za-z]", "", token)
        if letters:
            words.append(letters)
    return " ".join(words)


@dataclass(frozen=True)
class EmergencyContact:
    emergs_name: str
    emergs_phone: str  # spec form, like user_mobile
    emergs_relation: int  # spec enum 1-8


@dataclass(frozen=True)
class Person:
    name: str
    sex: int  # 1 male, 2 female
    birth_date: date
    nik: str
    mobile: str  # spec form, without the leading 0
    province: str
    city: str
    district: str
    bank_code: str
    bank_account: str
    month_income: str  # 5-9 digits, first non-zero (spec)
    company: str
    religion: int  # spec enum 1-6
    marital_status: int  # spec enum 1-4
    education: int  # spec enum 1-6
    emergs: tuple[EmergencyContact, ...]


def _full_name(rng: random.Random, sex: int) -> str:
    w = _words()
    first, last = (w.first_male, w.last_male) if sex == 1 else (w.first_female, w.last_female)
    parts = [rng.choice(first)]
    if rng.random() < 0.3:
        parts.append(rng.choice(first))
    parts.append(rng.choice(last))
    return " ".join(dict.fromkeys(parts))  # no "Budi Budi"


def _company(rng: random.Random) -> str:
    w = _words()
    lasts = w.last_male + w.last_female
    parts = [rng.choice(w.company_prefixes), rng.choice(lasts)]
    if rng.random() < 0.5:
        parts.append(rng.choice(lasts))
    if rng.random() < 0.25:
        parts.append(rng.choice(w.company_suffixes))
    return " ".join(parts)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _birth_date_for_age(rng: random.Random, today: date, lo_age: int, hi_age: int) -> date:
    earliest = _years_before(today, hi_age + 1) + timedelta(days=1)
    latest = _years_before(today, lo_age)
    return date.fromordinal(rng.randint(earliest.toordinal(), latest.toordinal()))


def _income(rng: random.Random) -> str:
    # Skewed toward the lower end, like salaried borrowers of cash loans; whole 50 000s.
    amount = rng.triangular(3_000_000, 25_000_000, 5_500_000)
    return str(round(amount / 50_000) * 50_000)


# Weights follow the usual order of these enums in Indonesian forms (religion: Islam first;
# marital status: single, married, divorced, widowed); any value 1..n is valid to the spec.
_RELIGION_WEIGHTS = (86, 7, 3, 2, 1, 1)
_MARITAL_WEIGHTS = (30, 62, 6, 2)
_EDUCATION_WEIGHTS = (5, 15, 40, 10, 25, 5)


def make_person(seed: str, *, today: date) -> Person:
    """A consistent borrower: NIK, sex, age (21-55 on `today`) and region agree.

    The same seed always gives the same person.
    """
    rng = random.Random(f"sandbox.people:{seed}")
    sex = rng.choice((1, 2))
    birth_date = _birth_date_for_age(rng, today, 21, 55)
    region = rng.choice(REGIONS)
    nik = make_nik(rng, region=region, sex=sex, birth_date=birth_date)
    name = _full_name(rng, sex)
    mobile = make_mobile(rng)
    bank = rng.choice(BANKS)
    account = make_bank_account(rng, bank.bank_code)
    phones = {mobile}
    emergs = []
    for relation in rng.sample(range(1, 9), 2):
        phone = make_mobile(rng)
        while phone in phones:
            phone = make_mobile(rng)
        phones.add(phone)
        emergs.append(EmergencyContact(_full_name(rng, rng.choice((1, 2))), phone, relation))
    return Person(
        name=name,
        sex=sex,
        birth_date=birth_date,
        nik=nik,
        mobile=mobile,
        province=region.province,
        city=region.city,
        district=region.district,
        bank_code=bank.bank_code,
        bank_account=account,
        month_income=_income(rng),
        company=_company(rng),
        religion=rng.choices(range(1, 7), weights=_RELIGION_WEIGHTS)[0],
        marital_status=rng.choices(range(1, 5), weights=_MARITAL_WEIGHTS)[0],
        education=rng.choices(range(1, 7), weights=_EDUCATION_WEIGHTS)[0],
        emergs=tuple(emergs),
    )
