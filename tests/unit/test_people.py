"""core.people and core.banks: seeded generators and validators of Indonesian people, phones,
banks and payment codes."""

from __future__ import annotations

import random
import re
import time
from datetime import date
from pathlib import Path

import pytest

from sandbox.core import banks, people
from sandbox.core.banks import (
    BANKS,
    PAYOUT_FAILURES,
    REJECT_REASONS,
    RETAIL_LIMITS,
    VA_LIMITS,
    VA_PREFIXES,
    account_problem,
    bank_by_code,
    make_bank_account,
    make_payout_failure,
    make_reject_reason,
    make_retail_code,
    make_va_number,
    payout_bounce,
)
from sandbox.core.people import (
    OPERATOR_PREFIXES,
    PROVINCES,
    REGIONS,
    clean_name,
    is_valid_nik,
    make_mobile,
    make_nik,
    make_person,
    mobile_operator,
    normalize_mobile,
    parse_nik,
    region_by_code,
)

TODAY = date(2025, 6, 15)
NAME = re.compile(r"^[A-Za-z ]+$")
MOBILE = re.compile(r"^8\d{8,12}$")
INCOME = re.compile(r"^[1-9]\d{4,8}$")
SEEDS = [f"seed-{i}" for i in range(300)]


@pytest.fixture(scope="module")
def persons():
    return [make_person(s, today=TODAY) for s in SEEDS]


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# ----------------------------------------------------------------------------- regions


def test_regions_cover_the_required_provinces():
    assert len(REGIONS) >= 25
    provinces = {r.province_code for r in REGIONS}
    assert len(provinces) >= 10
    assert {"31", "32", "33", "35", "36", "51", "12", "73", "64", "91", "92"} <= provinces
    for r in REGIONS:
        codes = (r.province_code, r.regency_code, r.district_code)
        assert all(re.fullmatch(r"\d\d", c) for c in codes)
        assert r.province == PROVINCES[r.province_code]
        assert r.city and r.district
        assert region_by_code(r.code) == r
    assert len({r.code for r in REGIONS}) == len(REGIONS)


def test_known_region_codes():
    assert region_by_code("317401").district == "Tebet"
    assert region_by_code("317401").city == "Kota Jakarta Selatan"
    assert region_by_code("357808").district == "Gubeng"
    assert region_by_code("317499") is None


def test_province_table_is_the_38_real_provinces():
    assert len(PROVINCES) == 38
    assert {"91", "92", "93", "94", "95", "96"} <= set(PROVINCES)
    assert not {"10", "20", "30", "97", "99"} & set(PROVINCES)


# ----------------------------------------------------------------------------- NIK


def test_nik_structure_male_and_female():
    region = region_by_code("327302")
    rng = random.Random(1)
    male = make_nik(rng, region=region, sex=1, birth_date=date(1990, 5, 7))
    female = make_nik(rng, region=region, sex=2, birth_date=date(1990, 5, 7))
    for nik in (male, female):
        assert re.fullmatch(r"\d{16}", nik)
        assert nik[:6] == "327302"
        assert nik[8:12] == "0590"
        assert nik[12:] != "0000"
    assert male[6:8] == "07"
    assert female[6:8] == "47"


def test_make_nik_is_seeded():
    assert make_nik(random.Random("x")) == make_nik(random.Random("x"))
    assert len({make_nik(random.Random(i)) for i in range(50)}) == 50


def test_make_nik_rejects_a_bad_sex():
    with pytest.raises(ValueError):
        make_nik(random.Random(0), sex=3)


def test_parse_nik_round_trips():
    rng = random.Random(42)
    for _ in range(500):
        region = rng.choice(REGIONS)
        sex = rng.choice((1, 2))
        born = date.fromordinal(rng.randint(date(1930, 1, 1).toordinal(), TODAY.toordinal()))
        nik = make_nik(rng, region=region, sex=sex, birth_date=born)
        info = parse_nik(nik, today=TODAY)
        assert info is not None, nik
        assert (info.province_code, info.regency_code, info.district_code) == region[:3]
        assert info.sex == sex
        assert info.birth_date == born
        assert 1 <= info.serial <= 9999
        assert info.region == region
        assert info.province == region.province


def test_parse_nik_decodes_a_known_number():
    info = parse_nik("3171015708450001", today=TODAY)
    assert info.sex == 2
    assert info.birth_date == date(1945, 8, 17)
    assert info.serial == 1
    assert info.region is None  # a real district that is not in our table
    assert info.province == "DKI Jakarta"


@pytest.mark.parametrize(
    "nik, born",
    [
        ("3174011708450001", date(1945, 8, 17)),
        ("3174011708100001", date(2010, 8, 17)),
        ("3174011708250001", date(1925, 8, 17)),  # 17 Aug 2025 is after TODAY
        ("3174011506250001", date(2025, 6, 15)),  # born today
        ("3174012902000001", date(2000, 2, 29)),
    ],
)
def test_parse_nik_century(nik, born):
    assert parse_nik(nik, today=TODAY).birth_date == born


@pytest.mark.parametrize(
    "nik",
    [
        "3174013201900001",  # day 32
        "3174017201900001",  # day 72
        "3174010001900001",  # day 0
        "3174014001900001",  # day 40
        "3174011713900001",  # month 13
        "3174011700900001",  # month 0
        "3174013102900001",  # 31 February
        "3174012902010001",  # 29 February 2001 / 1901
        "3174011708900000",  # serial 0000
        "1074011708900001",  # province 10
        "9774011708900001",  # province 97
        "3100011708900001",  # regency 00
        "3174001708900001",  # district 00
        "317401170890001",  # 15 digits
        "31740117089000011",  # 17 digits
        "31740117089O0001",  # a letter
        "3174011708９00001",  # a non-ASCII digit
        "",
    ],
)
def test_parse_nik_rejects(nik):
    assert parse_nik(nik, today=TODAY) is None
    assert not is_valid_nik(nik, strict=True, today=TODAY)


def test_parse_nik_accepts_new_papua_codes():
    info = parse_nik("9202121708900001", today=TODAY)
    assert info.region.city == "Kabupaten Manokwari"
    assert parse_nik("9671011708900001", today=TODAY).region is None


def test_is_valid_nik_strict_and_loose():
    assert is_valid_nik("3174013201900001", today=TODAY)  # 16 digits: the protocol's ruling
    assert not is_valid_nik("3174013201900001", strict=True, today=TODAY)
    assert is_valid_nik("3174011708900001", strict=True, today=TODAY)
    assert not is_valid_nik("31740117089000", today=TODAY)
    assert not is_valid_nik(None, today=TODAY)  # type: ignore[arg-type]


def test_make_nik_agrees_with_python_stdnum():
    nik_module = pytest.importorskip("stdnum.id.nik")
    rng = random.Random(7)
    for region in REGIONS:
        if region.province_code == "92":
            continue  # stdnum's region table predates the 2022 Papua codes
        for _ in range(20):
            nik = make_nik(rng, region=region)
            assert nik_module.is_valid(nik), nik
            theirs = nik_module.get_birth_date(nik)  # it picks the 1900s when it can
            ours = parse_nik(nik, today=TODAY).birth_date
            assert (theirs.day, theirs.month, theirs.year % 100) == (
                ours.day,
                ours.month,
                ours.year % 100,
            )


# ----------------------------------------------------------------------------- mobiles


def test_make_mobile_shape_and_operator():
    rng = random.Random(3)
    for operator in OPERATOR_PREFIXES:
        for _ in range(100):
            mobile = make_mobile(rng, operator)
            assert MOBILE.match(mobile), mobile
            assert 10 <= len(mobile) <= 12
            assert mobile_operator(mobile) == operator
    for _ in range(300):
        assert mobile_operator(make_mobile(rng)) in OPERATOR_PREFIXES


def test_make_mobile_unknown_operator():
    with pytest.raises(ValueError):
        make_mobile(random.Random(0), "Esia")


@pytest.mark.parametrize(
    "form",
    [
        "81234567890",
        "081234567890",
        "+6281234567890",
        "6281234567890",
        "+62 812-3456-7890",
    ],
)
def test_mobile_forms(form):
    assert normalize_mobile(form) == "81234567890"
    assert mobile_operator(form) == "Telkomsel"


@pytest.mark.parametrize(
    "bad", ["", "0212345678", "812345", "8123456789012345", "8a234567890", None]
)
def test_mobile_rejects(bad):
    assert normalize_mobile(bad) is None
    assert mobile_operator(bad) is None


def test_unassigned_prefix_has_no_operator():
    assert normalize_mobile("81012345678") == "81012345678"
    assert mobile_operator("81012345678") is None


def test_operator_prefixes_are_disjoint_mobile_prefixes():
    seen = [p for prefixes in OPERATOR_PREFIXES.values() for p in prefixes]
    assert len(seen) == len(set(seen))
    assert all(re.fullmatch(r"08\d\d", p) for p in seen)
    assert {
        "0811",
        "0821",
        "0851",
        "0814",
        "0855",
        "0817",
        "0859",
        "0877",
        "0831",
        "0838",
        "0895",
        "0899",
        "0881",
        "0889",
    } <= set(seen)


# ----------------------------------------------------------------------------- banks


def test_bank_table():
    expected = {
        "BCA": "014",
        "MANDIRI": "008",
        "BRI": "002",
        "BNI": "009",
        "CIMB": "022",
        "DANAMON": "011",
        "PERMATA": "013",
        "PANIN": "019",
        "BTN": "200",
        "MEGA": "426",
        "BUKOPIN": "441",
        "MAYBANK": "016",
        "OCBC": "028",
        "MUAMALAT": "147",
        "SINARMAS": "153",
        "BSI": "451",
    }
    assert {b.bank_code: b.interbank_code for b in BANKS} == expected
    for bank in BANKS:
        assert 9 <= bank.account_min_len <= bank.account_max_len <= 16
    minimums = {b.bank_code: b.account_min_len for b in BANKS}
    assert (
        minimums["BCA"],
        minimums["MANDIRI"],
        minimums["BRI"],
        minimums["BNI"],
        minimums["CIMB"],
        minimums["BTN"],
        minimums["BUKOPIN"],
    ) == (10, 13, 14, 9, 12, 16, 10)
    assert bank_by_code("BRI").account_max_len == 15


def test_bank_by_code():
    assert bank_by_code("bca").bank_name == "Bank Central Asia"
    assert bank_by_code(" Mandiri ").bank_code == "MANDIRI"
    assert bank_by_code("014").bank_code == "BCA"
    assert bank_by_code("NOPE") is None


def test_bank_accounts_fit_their_bank():
    rng = random.Random(5)
    for bank in BANKS:
        for _ in range(50):
            account = make_bank_account(rng, bank.bank_code)
            assert re.fullmatch(r"[1-9]\d{8,15}", account)
            assert account_problem(bank.bank_code, account) is None


def test_account_problem():
    assert "10 digits" in account_problem("BCA", "123456789")
    assert "14 to 15 digits" in account_problem("bri", "1234567890123456")
    assert account_problem("BCA", "12345abcde") == "account number must contain digits only"
    assert "unknown bank" in account_problem("XYZ", "1234567890")
    assert account_problem("BNI", "123456789") is None


def test_make_bank_account_unknown_bank():
    with pytest.raises(ValueError):
        make_bank_account(random.Random(0), "XYZ")


# ----------------------------------------------------------------------------- payment codes


def test_va_numbers():
    rng = random.Random(9)
    for bank in BANKS:
        va = make_va_number(rng, bank.bank_code, "81234567890")
        assert re.fullmatch(r"\d{16}", va)
        assert va.endswith("81234567890")
        assert va.startswith(VA_PREFIXES.get(bank.bank_code, "88" + bank.interbank_code))
    assert make_va_number(rng, "BCA", "81234567890") == "3935881234567890"
    assert make_va_number(rng, "bni", "1234567890123456") == "8808567890123456"  # keeps the tail
    short = make_va_number(rng, "MANDIRI", "42")
    assert re.fullmatch(r"88608\d{9}42", short)


def test_va_is_seeded():
    first = make_va_number(random.Random(1), "BRI", "7")
    assert first == make_va_number(random.Random(1), "BRI", "7")


def test_retail_codes():
    rng = random.Random(11)
    for _ in range(200):
        alfa = make_retail_code(rng, "Alfamart")
        indo = make_retail_code(rng, "INDOMARET")
        assert re.fullmatch(r"ALF[2-9A-HJ-NP-Z]{10}", alfa), alfa
        assert re.fullmatch(r"IDM[2-9A-HJ-NP-Z]{9}", indo), indo
    with pytest.raises(ValueError):
        make_retail_code(rng, "Lawson")


def test_limits():
    assert RETAIL_LIMITS["ALFAMART"] == (10_000, 5_000_000)
    assert RETAIL_LIMITS["INDOMARET"] == (10_000, 5_000_000)
    assert (VA_LIMITS.min_amount, VA_LIMITS.max_amount) == (10_000, 50_000_000)


# ----------------------------------------------------------------------------- outcomes' words


def test_reject_reasons():
    assert len(REJECT_REASONS) >= 8
    rng = random.Random(2)
    assert {make_reject_reason(rng) for _ in range(300)} == set(REJECT_REASONS)
    assert make_reject_reason(random.Random(4)) == make_reject_reason(random.Random(4))


def test_payout_failures():
    required = {"INVALID_DESTINATION", "REJECTED_BY_BANK", "TEMPORARY_BANK_NETWORK_ERROR"}
    assert required <= set(PAYOUT_FAILURES)
    rng = random.Random(2)
    for _ in range(50):
        code, message = make_payout_failure(rng)
        assert PAYOUT_FAILURES[code] == message


# ----------------------------------------------------------------------------- people


def test_person_is_deterministic():
    a = make_person("order-123", today=TODAY)
    assert a == make_person("order-123", today=TODAY)
    assert a != make_person("order-124", today=TODAY)


def test_persons_are_varied(persons):
    assert len({p.nik for p in persons}) == len(persons)
    assert len({p.name for p in persons}) > 250
    assert {p.sex for p in persons} == {1, 2}
    assert len({p.province for p in persons}) >= 10


def test_person_names(persons):
    for p in persons:
        assert NAME.match(p.name), p.name
        assert p.name == p.name.strip() and "  " not in p.name
        for contact in p.emergs:
            assert NAME.match(contact.emergs_name), contact.emergs_name


def test_person_identity_is_consistent(persons):
    for p in persons:
        info = parse_nik(p.nik, today=TODAY)
        assert info is not None, p.nik
        assert info.sex == p.sex
        assert info.birth_date == p.birth_date
        assert info.region is not None
        assert (info.region.province, info.region.city, info.region.district) == (
            p.province,
            p.city,
            p.district,
        )
        assert 21 <= _age(p.birth_date, TODAY) <= 55


def test_person_contact_and_money(persons):
    for p in persons:
        assert MOBILE.match(p.mobile) and mobile_operator(p.mobile)
        assert account_problem(p.bank_code, p.bank_account) is None
        assert INCOME.match(p.month_income)
        assert 3_000_000 <= int(p.month_income) <= 25_000_000
        assert p.company
        assert 1 <= p.religion <= 6 and 1 <= p.marital_status <= 4 and 1 <= p.education <= 6
        assert len(p.emergs) == 2
        assert len({c.emergs_relation for c in p.emergs}) == 2
        phones = {p.mobile} | {c.emergs_phone for c in p.emergs}
        assert len(phones) == 3
        for c in p.emergs:
            assert MOBILE.match(c.emergs_phone)
            assert 1 <= c.emergs_relation <= 8


def test_person_age_edges():
    for today in (date(2024, 2, 29), date(2025, 1, 1), date(2025, 12, 31)):
        for seed in SEEDS[:100]:
            assert 21 <= _age(make_person(seed, today=today).birth_date, today) <= 55


def test_make_person_is_fast_after_the_first_call():
    make_person("warm-up", today=TODAY)
    start = time.perf_counter()
    for i in range(200):
        make_person(f"speed-{i}", today=TODAY)
    assert (time.perf_counter() - start) / 200 < 0.001


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("Dr. Budi Santoso, S.Kom", "Budi Santoso"),
        ("Hj. Siti Aminah, S.Ked", "Siti Aminah"),
        ("R.M. Joko Widodo, M.Kom.", "Joko Widodo"),
        ("drg. Putri O'Neil", "Putri ONeil"),
        ("Cut Nyak Dien", "Cut Nyak Dien"),
    ],
)
def test_clean_name(raw, clean):
    assert clean_name(raw) == clean


@pytest.mark.parametrize("module", [people, banks])
def test_no_wall_clock_or_io_in_module(module):
    source = Path(module.__file__).read_text(encoding="utf-8")
    for banned in ("datetime.now", "date.today", "time.time", "open(", "import os"):
        assert banned not in source


def test_payout_bounce():
    # an account its bank does not issue is refused by the bank's account check
    assert payout_bounce("BCA", "12345678901234") == "RECIPIENT_ACCOUNT_NUMBER_ERROR"
    assert payout_bounce("bri", "123456789") == "RECIPIENT_ACCOUNT_NUMBER_ERROR"
    assert payout_bounce("BCA", "1234567890") is None
    assert payout_bounce("BCA", "12345abcde") == "RECIPIENT_ACCOUNT_NUMBER_ERROR"
    assert payout_bounce("JAGO", "123456789012") is None  # a fixture's bank: no known lengths
    assert "RECIPIENT_ACCOUNT_NUMBER_ERROR" in PAYOUT_FAILURES
