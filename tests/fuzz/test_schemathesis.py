"""schemathesis against the control API's OpenAPI document, as the app serves it
(/openapi.json), through the ASGI app in-process with the admin token.

For each control operation of the document, schemathesis generates requests the document
allows and holds every answer to it: no 5xx, a documented status and content type, the
documented schema, and no schema-valid request refused (except where SEMANTIC says why).
Bounded for CI by the fuzz profile (derandomized, no example database). Its own pytest plugin
(`from_fixture`) does not run on pytest 9, so each operation's strategy is driven here.

Its negative mode (requests the document forbids) is not run: the control API reads query
strings leniently on purpose (a blank value is an absent one, `secrets=1`), which that mode
reports as "schema-violating request accepted"; bad input of every kind is fuzzed, and held
to a documented refusal, by test_fuzz_control.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fuzzkit import ADMIN, World, examples, make_world
from hypothesis import given
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from sandbox.web import openapi

AUTH = {"Authorization": f"Bearer {ADMIN}"}
# Where a request the schema allows is refused for a reason no JSON Schema can state, the
# "schema-valid request rejected" check is off for that request (every other check still
# runs on it): (method, path) -> (why, which requests; None: every request of the operation).
SEMANTIC: dict[tuple[str, str], tuple[str, Callable[[Any], bool] | None]] = {
    ("POST", "/sandbox/partners/{token}/clock/advance"): (
        "a duration is text read by rules (8d, 2h30m), and the clock moves forward only and "
        "stays before the year 9000: what is acceptable depends on the clock now",
        None,
    ),
    ("POST", "/sandbox/partners/{token}/clock/set"): (
        "the instant is ISO 8601 text, later than the partner's clock now",
        None,
    ),
    ("GET", "/sandbox/orders/{order_no}/wait"): (
        "OpenAPI parameters cannot say that one of `status` and `callback` is required",
        lambda case: not {"status", "callback"} & set(case.query or {}),
    ),
    ("PATCH", "/sandbox/partners/{token}"): (
        "a chaos delay [min, max] needs min <= max",
        lambda case: _pair_reversed(((case.body or {}).get("chaos") or {}).get("delay")),
    ),
    ("POST", "/sandbox/tools/encrypt"): (
        "an explicit aes_key needs its aes_iv and the other way round (null is absent)",
        lambda case: _one_of_pair(case.body),
    ),
    ("POST", "/sandbox/tools/decrypt"): (
        "encode_data must be a ciphertext of the key given; an explicit key needs its IV",
        None,
    ),
    ("PUT", "/sandbox/faults"): (
        "a rule's fields depend on its kind and on each other (ms or ms_range with "
        "min <= max, a path among the lender's, the fixed path of some kinds)",
        None,
    ),
    ("POST", "/sandbox/faults"): ("the same rules as PUT", None),
}


def _pair_reversed(delay: Any) -> bool:
    return isinstance(delay, list) and len(delay) == 2 and delay[0] > delay[1]


def _one_of_pair(body: Any) -> bool:
    body = body if isinstance(body, dict) else {}
    return (body.get("aes_key") is None) != (body.get("aes_iv") is None)


OPERATIONS = [
    (method.upper(), path)
    for path, item in openapi.build()["paths"].items()
    if path.startswith("/sandbox/")
    for method in item
]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    yield from make_world()


@pytest.fixture(scope="module")
def control_api(world: World) -> Any:
    """The document as served (the lender endpoints answer the protocol envelope and are
    fuzzed by test_fuzz_lender.py)."""
    # No NUL in generated text: the sandbox refuses it on purpose, on every backend, because
    # PostgreSQL cannot store it (docs/protocol.md §3 "Text and nesting").
    config = SchemathesisConfig.from_dict({"generation": {"allow-x00": False}})
    return schemathesis.openapi.from_asgi("/openapi.json", world.client.app, config=config)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=lambda v: str(v))
def test_a_control_operation_answers_as_documented(
    control_api: Any, method: str, path: str
) -> None:
    operation = control_api[path][method]

    @examples(25)
    @given(case=operation.as_strategy())
    def one(case: Any) -> None:
        if path.endswith("/wait"):  # a long poll holds for `timeout` seconds (default 10)
            case.query = {**(case.query or {}), "timeout": "0"}
        _, applies = SEMANTIC.get((method, path), ("", lambda case: False))
        opaque = bool((case.query or {}).get("cursor"))  # a page cursor is valid as handed out
        off = [positive_data_acceptance] if opaque or applies is None or applies(case) else []
        case.call_and_validate(headers=AUTH, excluded_checks=off)

    one()
