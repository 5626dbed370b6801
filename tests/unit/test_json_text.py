"""The text JSON columns are stored as (store.database.json_text): orjson, with the stdlib for
what orjson refuses, so every value a request can carry is kept as it came."""

import json

import pytest

from sandbox.store.database import json_text


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
