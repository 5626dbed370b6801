"""Fuzz every control route (the `web.control.ROUTES` table, so a new route is fuzzed without
a line here): random path parameters, query strings and bodies. Whatever arrives, the answer
is never HTTP 5xx: either 200 with the documented answer or one of the route's documented
4xx as {code, error, message}; and the journal, orders and callbacks still read afterwards.

Bodies: junk bytes, any hostile JSON, objects whose fields are the route's with hostile
values, and values of the route's OpenAPI request schema with one or two fields broken.
Queries: the route's documented parameters and unknown ones, valid-looking or hostile.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from fuzzkit import (
    BOUNDARIES,
    TOKEN,
    World,
    broken,
    check_control_error,
    check_readable,
    dumps,
    examples,
    from_schema,
    hostile,
    hostile_text,
    make_world,
    segment,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from sandbox.web import openapi
from sandbox.web.control import ROUTES, ControlRoute

DOC = openapi.build()
URL_TEXT = 2000  # the longest hostile text in a path or query (many values make one URL)
PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    yield from make_world()


def operation(route: ControlRoute) -> dict:
    return DOC["paths"][PARAM.sub(r"{\1}", route.full_path)][route.method.lower()]


def _texts(schema: dict) -> st.SearchStrategy[str]:
    """A query value: the documented kind (as text) or hostile text."""
    documented = from_schema(schema, DOC).map(lambda v: "" if v is None else str(v).lower())
    numbers = st.sampled_from([*BOUNDARIES, -5, 0.001, 1e308]).map(str)
    return st.one_of(documented, numbers, hostile_text(URL_TEXT))


def query(route: ControlRoute) -> st.SearchStrategy[dict[str, str]]:
    params = {p["name"]: p["schema"] for p in operation(route).get("parameters", ())}
    params = {name: s for name, s in params.items() if name not in PARAM.findall(route.path)}
    documented = st.fixed_dictionaries({}, optional={k: _texts(s) for k, s in params.items()})
    unknown = st.dictionaries(hostile_text(URL_TEXT), hostile_text(URL_TEXT), max_size=2)
    return st.builds(lambda a, b: {**b, **a}, documented, unknown)


def _schema(route: ControlRoute) -> dict | None:
    body = operation(route).get("requestBody")
    return body["content"]["application/json"]["schema"] if body else None


def _names(schema: dict) -> list[str]:
    if "$ref" in schema:
        return _names(DOC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    subs = schema.get("oneOf", []) + schema.get("anyOf", [])
    return sorted({*schema.get("properties", {}), *(n for s in subs for n in _names(s))})


def body(route: ControlRoute) -> st.SearchStrategy[bytes | None]:
    schema = _schema(route)
    if schema is None:
        return st.none()
    fields = st.dictionaries(st.sampled_from(_names(schema) or ["x"]), hostile, max_size=4)
    documents = st.one_of(from_schema(schema, DOC).flatmap(broken), fields, hostile)
    return st.one_of(documents.map(lambda d: dumps(d).encode()), st.binary(max_size=100))


def _segment_text(text: str) -> bool:
    """Text that stays one path segment: not empty, no slash (servers decode %2F, so the
    request would reach another route), not a dot segment (clients resolve those)."""
    return text not in ("", ".", "..") and "/" not in text


def path_values(world: World) -> dict[str, st.SearchStrategy[str]]:
    orders = [o.order_no for o in world.orders.values()]
    ids = st.one_of(st.integers(0, 50), st.sampled_from([n for n in BOUNDARIES if n >= 0]))
    text = hostile_text(URL_TEXT).filter(_segment_text)
    return {
        "token": st.one_of(st.sampled_from([TOKEN, "nobody"]), text),
        "order_no": st.one_of(st.sampled_from(orders), text),
        "id": st.one_of(ids.map(str), text),
    }


def url(route: ControlRoute, values: dict[str, str], q: dict[str, str]) -> str:
    path = PARAM.sub(lambda m: segment(values[m.group(1)]), route.full_path)
    if route.path.endswith("/wait"):  # a long poll waits up to `timeout` (default 10 s)
        q = {**q, "timeout": q.get("timeout", "0") if _short(q.get("timeout", "0")) else "0"}
    return path + ("?" + urlencode(q, errors="surrogatepass") if q else "")


def _short(timeout: str) -> bool:
    try:
        return not float(timeout) > 0.05  # junk stays junk: it must be refused
    except ValueError:
        return True


def check_answer(route: ControlRoute, r: Any, what: str) -> None:
    if r.status_code == 200:
        TypeAdapter(route.answer).validate_json(r.content, strict=True)
        return
    doc = check_control_error(r, what)
    if doc["error"] != "http":  # the route answered (not the router: no such path)
        assert r.status_code in route.statuses, f"{what}: undocumented {r.status_code} {doc}"


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_a_control_route_answers_what_it_documents(world: World, route: ControlRoute) -> None:
    values = path_values(world)
    names = PARAM.findall(route.path)

    @examples(40)
    @given(
        params=st.fixed_dictionaries({name: values[name] for name, _ in names}),
        q=query(route) if route.query else st.just({}),
        raw=body(route),
    )
    def one(params: dict[str, str], q: dict[str, str], raw: bytes | None) -> None:
        target = url(route, params, q)
        headers = {"content-type": "application/json"}
        r = world.client.request(route.method, target, content=raw, headers=headers)
        check_answer(route, r, f"{route.method} {target[:300]} {(raw or b'')[:300]!r}")

    one()
    check_readable(world)
