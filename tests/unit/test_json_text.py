"""core.jsontext: orjson for JSON text (the store's JSON columns, the envelope, the payload),
with exactly the stdlib's values, so every value a request can carry is kept as it came."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.core.jsontext import dumps as json_text
from sandbox.core.jsontext import has_long_number
from sandbox.core.jsontext import loads as json_value

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_any_value_is_written_and_read_as_the_stdlib_would(value):
    text = json_text(value)
    assert repr(json.loads(text)) == repr(json.loads(json.dumps(value)))
    assert repr(json_value(text)) == repr(json.loads(text))
    assert repr(json_value(json.dumps(value))) == repr(json.loads(json.dumps(value)))


@pytest.mark.parametrize(
    "value",
    [
        {"order_no": "LN1", "amount": 3000000, "rate": 0.1, "ok": True, "none": None},
        {"name": "Siti Nurhaliza", "city": "Yogyakarta", "note": "中文 / ü"},
        {"big": 123456789012345678901234567890},  # beyond 64 bits: the stdlib writes it
        {"nested": [[[{"a": -(2**64)}]]]},
        [1.5e-320, -0.0, 1e300],
    ],
)
def test_round_trip(value):
    assert json.loads(json_text(value)) == value


def test_non_text_keys_are_written_as_the_stdlib_would():
    assert json.loads(json_text({1: "a"})) == {"1": "a"}


@pytest.mark.parametrize(
    "text",
    [
        '{"order_no": "LN1", "amount": 3000000, "rate": 0.1, "ok": true, "none": null}',
        '{"big": 123456789012345678901234567890, "small": -9223372036854775808}',
        '{"ref": "LN20261201123456789012", "n": 18446744073709551616}',
        '[NaN, Infinity, 1.5e-320, -0.0, "\\u0000"]',
        '{"a": 1, "a": 2}',
    ],
)
def test_read_as_the_stdlib_reads(text):
    got, want = json_value(text), json.loads(text)
    assert repr(got) == repr(want)  # the same types too (an int stays an int), NaN included


@pytest.mark.parametrize(
    "text, long",
    [
        ("123456789012345678", False),  # 18 digits
        ("1234567890123456789", True),
        ('{"a": 9999999999999999999}', True),
        ('["12345678901234567", "x", 1234567890123456789012]', True),
        ('{"nik": "3171234567890123", "amount": 3000000}', False),
        ("١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩", False),  # not JSON digits
    ],
)
def test_long_numbers_are_found(text, long):
    assert has_long_number(text) is long
    assert has_long_number(text.encode()) is long


def test_infinities_are_written_as_null():
    # A payload's 1e400 reads as inf; the stdlib would store `Infinity`, which is not JSON
    # (PostgreSQL refuses it): the journal keeps null, on every backend.
    assert json_text({"x": float("inf"), "y": float("-inf"), "z": float("nan")}) == (
        '{"x":null,"y":null,"z":null}'
    )
