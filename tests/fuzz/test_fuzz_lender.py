"""Fuzz every lender endpoint (02-18): whatever arrives, the answer is the protocol envelope
with a catalog code, never HTTP 5xx, never 10099, and the request is journaled.

What arrives: raw junk bodies; envelopes with hostile fields; valid envelopes whose decrypted
payload is hostile JSON (wrong types, huge and negative numbers, 400-digit integers, lone
surrogates, 600-level nesting, long strings, lists where objects go); a real order's valid
payload with one or two fields broken; payloads built from the endpoint's request model with
one or two fields broken.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fuzzkit import (
    CODEC,
    TOKEN,
    World,
    broken,
    check_envelope,
    check_readable,
    dumps,
    examples,
    hostile,
    hostile_text,
    make_world,
    model_payloads,
)
from hypothesis import given
from hypothesis import strategies as st

from sandbox.core.protocol import SPECS, Spec


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    yield from make_world()


def bodies(world: World, spec: Spec) -> st.SearchStrategy[bytes]:
    """Three in four are envelopes that decrypt: a real order's payload broken, one built from
    the request model and broken, any hostile JSON; the rest are junk."""
    samples = [o.payloads()[spec.path] for o in world.orders.values()]
    payloads = (st.sampled_from(samples).flatmap(broken), model_payloads(spec.model), hostile)
    return st.one_of(*(p.map(world.envelope) for p in payloads), junk(world))


def junk(world: World) -> st.SearchStrategy[bytes]:
    """Bodies that are not a usable envelope."""
    token = st.one_of(st.sampled_from([TOKEN, "nobody"]), hostile)
    encode_data = st.one_of(
        hostile,
        st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
        hostile_text().map(lambda t: CODEC.encrypt_bytes(t.encode("utf-8", "surrogatepass"))),
    )
    envelope = st.fixed_dictionaries(
        {}, optional={"partner_token": token, "encode_data": encode_data, "extra": hostile}
    )
    return st.one_of(
        st.binary(max_size=200), hostile.map(lambda d: dumps(d).encode()), envelope.map(_encode)
    )


def _encode(doc: Any) -> bytes:
    return dumps(doc).encode("utf-8", "surrogatepass")


def _newest(world: World) -> dict:
    r = world.client.get("/sandbox/journal?limit=1")
    assert r.status_code == 200, f"the journal: HTTP {r.status_code} {r.text[:300]}"
    return r.json()[0]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.number}{s.path}")
def test_a_lender_endpoint_answers_every_body_with_a_catalog_code(world: World, spec: Spec) -> None:
    codes: Counter[int] = Counter()

    @examples(80)
    @given(body=bodies(world, spec))
    def one(body: bytes) -> None:
        before = _newest(world)["id"]
        r = world.post(spec.path, body)
        codes[check_envelope(r, f"{spec.path} {body[:400]!r}")["code"]] += 1
        entry = _newest(world)
        assert (entry["id"] > before, entry["path"]) == (True, spec.path), "not journaled"

    one()
    check_readable(world)
    # the fuzz got past the envelope and validation: an answer or a business refusal came
    assert any(code == 0 or code >= 11000 for code in codes), sorted(codes.items())
