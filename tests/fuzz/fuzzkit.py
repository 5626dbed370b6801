"""The fuzz tests' kit: a sandbox with orders in several states, hostile JSON, junk bodies,
payloads built from the request models with one field broken, and what every answer is held to.

Everything runs in-process through the ASGI app (Starlette's TestClient, server errors answered
rather than raised) with an admin token set, so the guard is on the path being fuzzed. The
"ci" profile keeps the suite bounded and deterministic (derandomized, no example database);
`HYPOTHESIS_PROFILE=long` runs twenty times the examples, freshly random, by hand.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from sandbox.core.chaos import CHAOS_KEYS
from sandbox.core.clock import WIB
from sandbox.core.crypto import Codec
from sandbox.core.errors import BY_CODE
from sandbox.core.samples import SampleOrder, sample_order
from sandbox.services.config import load_settings
from sandbox.services.lender import Lender, create_lender
from sandbox.web.app import create_app

ADMIN = "fuzz-admin"
TOKEN = "demo"
KEY, IV = "Loan@apis#123456@", "loan#654321@apis"  # the demo partner's pair
CODEC = Codec(KEY, IV)
T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=WIB).timestamp()  # the injected wall clock
TODAY = date(2026, 3, 2)
INTERNAL = 10099  # the catalog's "a sandbox bug" code: never an answer to bad input

# ---- budgets ----

settings.register_profile(
    "ci",
    derandomize=True,  # the same examples on every run: a red CI is reproducible
    database=None,  # and nothing is remembered between runs
    deadline=None,  # a deep payload may take a few ms more than a shallow one
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)
settings.register_profile("long", parent=settings.get_profile("ci"), derandomize=False)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SCALE = 20 if PROFILE == "long" else 1


def examples(n: int) -> settings:
    """The profile's settings with `n` examples (x20 under HYPOTHESIS_PROFILE=long)."""
    return settings(settings.get_profile(PROFILE), max_examples=n * SCALE)


# ---- hostile values ----

HUGE = 10**400  # a 401-digit integer: JSON allows it, every column refuses it
BOUNDARIES = [0, -1, 2**31 - 1, 2**31, 2**32, 2**40, 2**53, 2**63 - 1, 2**63, 2**64, HUGE, -HUGE]
SURROGATES = ["\ud800", "\udfff", "a\udbffz", "\udc00\ud800"]  # lone UTF-16 surrogates
ODD_TEXT = [
    "",
    " ",
    "0",
    "-1",
    "1e999",
    "NaN",
    "null",
    "true",
    "[]",
    "８１２３４５６７８９",  # full-width digits
    "٨١٢٣٤٥٦٧٨٩٠",  # Arabic-Indic digits: \d matches them
    "' OR 1=1 --",
    "\u0000",
    "\u202e",
    "<script>alert(1)</script>",
    "%00",
    "../../etc/passwd",
    "😀",
]


def nest(depth: int, kind: str) -> Any:
    """A value nested `depth` levels deep (600 levels broke encrypt and 06's device_info)."""
    doc: Any = 1
    for _ in range(depth):
        doc = [doc] if kind == "list" else {"a": doc}
    return doc


def _texts(longest: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=20),
        st.sampled_from(SURROGATES + ODD_TEXT),
        st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
        st.integers(0, longest).map(lambda n: "x" * n),
        st.from_regex(r"[0-9]{1,40}", fullmatch=True),
    )


texts = _texts(70_000)
keys = st.one_of(st.text(max_size=8), st.sampled_from(SURROGATES))
numbers = st.one_of(
    st.integers(),
    st.sampled_from(BOUNDARIES),
    st.floats(),  # NaN and infinities too: Python writes them, JSON does not allow them
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
depths = st.one_of(st.sampled_from([64, 65, 256, 300, 600, 700]), st.integers(2, 700))
deep = st.builds(nest, depths, st.sampled_from(["list", "dict"]))


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4))


# What broke the sandbox before, drawn often: the fuzz must keep trying them.
SPECIAL = [
    HUGE,
    -HUGE,
    2**40,
    2**63,
    *SURROGATES[:2],
    "a\x00b",  # PostgreSQL cannot store a NUL
    nest(600, "list"),
    nest(300, "dict"),
    "x" * 620,
    "1" * 30,
    [{}],
]


@st.composite
def hostile_json(draw: st.DrawFn) -> Any:
    """Any JSON value, hostile ones often (a named strategy: failures print this, not a wall
    of sampled values)."""
    anything = st.recursive(scalars, _containers, max_leaves=8)
    return draw(st.one_of(st.sampled_from(SPECIAL), scalars, deep, anything))


@st.composite
def hostile_text(draw: st.DrawFn, longest: int = 70_000) -> str:
    """Hostile text; in a URL at most a few KB (clients and servers refuse 64 KB URLs)."""
    return draw(_texts(longest))


hostile = hostile_json()


def dumps(doc: Any) -> str:
    """JSON as a client writes it (lone surrogates escaped as \\udXXX, NaN as NaN)."""
    return json.dumps(doc)


# ---- one field broken ----


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a JSON document (leaves and containers)."""
    found: list[tuple] = []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for k, v in items:
        found.append((*prefix, k))
        found += paths(v, (*prefix, k))
    return found


def fresh(doc: Any) -> Any:
    """A copy of a JSON value (the shared SPECIAL values must never be changed in place;
    deepcopy would recurse too deep for them)."""
    return json.loads(json.dumps(doc)) if isinstance(doc, (dict, list)) else doc


@st.composite
def broken(draw: st.DrawFn, base: Any) -> Any:
    """`base` with one or two fields replaced by a hostile value, removed or left alone."""
    doc = fresh(base)
    for _ in range(draw(st.integers(0, 2))):
        where = paths(doc)
        if not where:
            break
        path = draw(st.sampled_from(where))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.integers(0, 5)) == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = fresh(draw(hostile))
    return doc


# ---- values from a JSON schema (the request models' and the OpenAPI document's) ----


def _resolve(ref: str, root: dict) -> dict:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def from_schema(schema: dict, root: dict) -> st.SearchStrategy[Any]:
    """Valid-looking values of a JSON schema (refs resolved in `root`); what it does not
    know how to build (a free-form `{}`) is hostile JSON."""
    if "$ref" in schema:
        target = _resolve(schema["$ref"], root)
        return st.deferred(lambda: from_schema(target, root))
    for key in ("anyOf", "oneOf"):
        if key in schema:  # an optional's description (chaos: its keys) is outside its anyOf
            about = {"description": schema.get("description", "")}
            return st.one_of([from_schema({**about, **s}, root) for s in schema[key]])
    if "allOf" in schema:
        return from_schema(schema["allOf"][0], root)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type", "")
    if isinstance(kind, list):  # "type": ["string", "null"]
        return st.one_of([from_schema({**schema, "type": k}, root) for k in kind])
    build = _BUILDERS.get(kind)
    return build(schema, root) if build else hostile


def _string(s: dict, root: dict) -> st.SearchStrategy[Any]:
    if "pattern" in s:
        return st.from_regex(s["pattern"], fullmatch=re.search(r"[$]$", s["pattern"]) is None)
    return st.text(min_size=s.get("minLength", 0), max_size=min(s.get("maxLength", 30), 30))


def _integer(s: dict, root: dict) -> st.SearchStrategy[Any]:
    lo = s.get("minimum", s["exclusiveMinimum"] + 1 if "exclusiveMinimum" in s else None)
    hi = s.get("maximum", s["exclusiveMaximum"] - 1 if "exclusiveMaximum" in s else None)
    return st.integers(lo, hi)


def _number(s: dict, root: dict) -> st.SearchStrategy[Any]:
    return st.floats(s.get("minimum"), s.get("maximum"), allow_nan=False, allow_infinity=False)


def _array(s: dict, root: dict) -> st.SearchStrategy[Any]:
    items = from_schema(s.get("items", {}), root)
    lo = s.get("minItems", 0)
    return st.lists(items, min_size=lo, max_size=max(lo, min(s.get("maxItems", 3), 3)))


def _object(s: dict, root: dict) -> st.SearchStrategy[Any]:
    props = s.get("properties", {})
    if not props:  # free-form (chaos, data): keys its description names, or any known name
        known = re.findall(r"\b([a-z_]+): ", s.get("description", "")) or sorted(vocabulary(root))
        names = st.one_of(st.sampled_from(known), st.text(max_size=8))
        return st.dictionaries(names, hostile, max_size=3)
    required = set(s.get("required", ()))
    return st.fixed_dictionaries(
        {k: from_schema(v, root) for k, v in props.items() if k in required},
        optional={k: from_schema(v, root) for k, v in props.items() if k not in required},
    )


def vocabulary(root: dict) -> set[str]:
    """Every property name of a schema document, and the chaos settings' keys (documented
    in a description, not as properties)."""
    names = set(CHAOS_KEYS)
    todo = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            names.update(
                node.get("properties", {}) if isinstance(node.get("properties"), dict) else ()
            )
            todo += node.values()
        elif isinstance(node, list):
            todo += node
    return names


_BUILDERS: dict[str, Callable[[dict, dict], st.SearchStrategy[Any]]] = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": lambda s, r: st.booleans(),
    "null": lambda s, r: st.none(),
    "array": _array,
    "object": _object,
}


def model_payloads(model: Any) -> st.SearchStrategy[Any]:
    """Payloads built from a pydantic model's JSON schema, then one or two fields broken."""
    schema = model.model_json_schema()
    return from_schema(schema, schema).flatmap(broken)


# ---- the world: a sandbox with orders in several states ----


class Wall:
    """The injected wall clock: stands still unless moved (`t`)."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


@dataclass
class World:
    """One app behind a TestClient holding the admin token, seen as the demo partner."""

    client: TestClient
    lender: Lender
    wall: Wall
    orders: dict[str, SampleOrder] = field(default_factory=dict)  # by state
    codes: list[str] = field(default_factory=list)  # payment codes of 15
    links: list[str] = field(default_factory=list)  # signed page links of 10 and 14

    def envelope(self, payload: Any, token: str = TOKEN) -> bytes:
        """The envelope of a payload (bytes: the plaintext as is; else its JSON)."""
        text = payload if isinstance(payload, bytes) else dumps(payload).encode()
        return dumps({"partner_token": token, "encode_data": CODEC.encrypt_bytes(text)}).encode()

    def post(self, path: str, body: bytes) -> Any:
        headers = {"content-type": "application/json;charset=utf-8"}
        return self.client.post(path, content=body, headers=headers)

    def call(self, path: str, payload: dict) -> Any:
        doc = self.post(path, self.envelope(payload)).json()
        assert doc["code"] == 0, (path, doc)
        return doc["data"]

    def advance(self, seconds: float) -> None:
        r = self.client.post(f"/sandbox/partners/{TOKEN}/clock/advance", json={"seconds": seconds})
        assert r.status_code == 200, r.text

    def order(self, state: str, scenario: str) -> SampleOrder:
        o = sample_order(
            f"fuzz-{state}", today=TODAY, rules=self.lender.settings.data.rules, scenario=scenario
        )
        self.orders[state] = o
        return o

    def populate(self) -> None:
        """Orders at 80, 90 (stuck in review), 100, 110 and 170 with an extension code."""
        lc = self.lender.settings.lifecycle
        new, stuck = self.order("80", "approve"), self.order("90", "review_stuck")
        approved, rejected = self.order("100", "approve"), self.order("110", "reject_review")
        paid = self.order("170", "approve")
        for o in (new, stuck, approved, rejected, paid):
            self.call("/push-basic-info", o.basic_info())
        for o in (stuck, approved, rejected, paid):
            self.call("/push-supplement-info", o.supplement_info())
        for o in (approved, paid):
            self.call("/push-bind-bank", o.bind_bank())
        self.advance(lc.review_delay + 1)
        self.call("/push-order-confirm", paid.confirm())
        self.advance(lc.payout_delay + 1)
        for kind, term in ((2, 7), (1, None)):
            code = self.call("/get-repay-detail", paid.repay_detail(kind, delay_term=term))
            self.codes.append(code["repay_code"])
        self.links.append(self.call("/get-loan-contract", approved.order())["contract_url"])
        plan = self.call("/get-repay-plan", paid.order())
        self.links += [v for v in _strings(plan) if "/repay/" in v]


def _strings(doc: Any) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for v in doc.values():
            yield from _strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _strings(v)


def fuzz_settings(url: str = "sqlite://") -> Any:
    return load_settings(
        overrides={
            "database": {"url": url},
            "clock": {"mode": "manual"},
            # schemathesis's ASGI client always says Host: testserver — the name a proxy in
            # front of a loopback sandbox would give as [server] public_url
            "server": {"admin_token": ADMIN, "public_url": "http://testserver"},
        },
        env={},
    )


def make_world(url: str = "sqlite://", *, populate: bool = True) -> Iterator[World]:
    s = fuzz_settings(url)
    wall = Wall()
    lender = create_lender(s, wall=wall)
    app = create_app(s, lender=lender, background=False)
    auth = {"authorization": f"Bearer {ADMIN}"}
    try:
        with TestClient(
            app, raise_server_exceptions=False, headers=auth, base_url="http://localhost"
        ) as client:
            world = World(client, lender, wall)
            if populate:
                world.populate()
            yield world
    finally:
        lender.store.dispose()


# ---- what every answer is held to ----


def check_envelope(r: Any, what: str) -> dict:
    """A lender endpoint's answer: HTTP 200 with the protocol envelope and a catalog code,
    never a bug (docs/protocol.md §1; these bodies are all below the size limit)."""
    assert r.status_code == 200, f"{what}: HTTP {r.status_code} {r.text[:300]}"
    doc = r.json()
    assert isinstance(doc, dict) and "code" in doc and "data" in doc, f"{what}: {doc}"
    assert "message" in doc or "msg" in doc, f"{what}: {doc}"
    assert doc["code"] in BY_CODE or doc["code"] == 0, f"{what}: unknown code {doc}"
    assert doc["code"] != INTERNAL, f"{what}: {doc}"
    return doc


def check_control_error(r: Any, what: str) -> dict:
    """A control route's refusal: the documented {code, error, message}, never a bug."""
    assert r.status_code < 500, f"{what}: HTTP {r.status_code} {r.text[:300]}"
    doc = r.json()
    assert set(doc) == {"code", "error", "message"}, f"{what}: {doc}"
    assert doc["code"] != INTERNAL, f"{what}: {doc}"
    assert isinstance(doc["message"], str) and doc["message"], f"{what}: {doc}"
    return doc


def check_readable(world: World) -> None:
    """What a person looks at afterwards still answers: the journal, orders, callbacks."""
    for url in ("/sandbox/journal?limit=1000", "/sandbox/orders", "/sandbox/callbacks"):
        r = world.client.get(url)
        assert r.status_code == 200, f"{url}: HTTP {r.status_code} {r.text[:300]}"


def segment(value: str) -> str:
    """A path segment, percent-encoded; a lone surrogate goes out as its (invalid) UTF-8."""
    return quote(value, safe="", errors="surrogatepass")
