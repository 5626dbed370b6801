"""The OpenAPI 3.1 document of the sandbox (/openapi.json), generated from the code.

Nothing here restates what the code knows: the lender endpoints come from `core.protocol`
with their request models (`core.validation`) and answer models (`core.answers`); the control
API from the route table (`web.control.ROUTES`) with its body, query and answer models
(`core.control_models`); the error catalog from `core.errors`; fault rules from
`core.faultrules`. A test holds every route's real answer to the schema documented here.
/docs renders the same document (`web.docs`).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..core import answers, enums, faultrules, samples, validation
from ..core.control_answers import ControlErrorBody
from ..core.crypto import Codec
from ..core.errors import CATALOG
from ..core.protocol import CALLBACKS, SPECS, Spec
from ..services.lender import Lender
from . import i18n
from .control import ROUTES, ControlRoute
from .docs import render_docs

REF = "#/components/schemas/{model}"
SPEC_KEY, SPEC_IV = "Loan@apis#123456@", "loan#654321@apis"  # the demo partner's (§2)
LENDER_TAG = "Lender API (02-18)"
TIME = "YYYY-MM-DD HH:MM:SS in WIB (UTC+7), docs/protocol.md §7"


def ref(name: str) -> dict:
    return {"$ref": REF.format(model=name)}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


# ---- schemas from the models ----


def _item(answer: Any) -> type[BaseModel] | None:
    """The model of an answer (a model, or list[model])."""
    if get_origin(answer) is list:
        return get_args(answer)[0]
    return answer if isinstance(answer, type) and issubclass(answer, BaseModel) else None


def _schema_of(answer: Any) -> dict:
    item = _item(answer)
    assert item is not None, answer
    return (
        {"type": "array", "items": ref(item.__name__)}
        if get_origin(answer) is list
        else ref(item.__name__)
    )


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Every model the document names, each with the JSON-schema mode it is shown in."""
    out: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    # Serialization mode keeps the patterns that the numeric-string coercion hides in
    # validation mode; numbers are accepted wherever a digit string is (docs/protocol.md §3).
    out += [
        (m, "serialization") for m in sorted({s.model for s in SPECS}, key=lambda m: m.__name__)
    ]
    out += [(m, "validation") for m in {*answers.DATA.values(), *answers.CALLBACK_BODIES.values()}]
    for r in ROUTES:
        for model in (r.body, _item(r.answer)):
            if isinstance(model, type) and issubclass(model, BaseModel):
                out.append((model, "validation"))
    out.append((ControlErrorBody, "validation"))
    return list(dict.fromkeys(out))


def _rule_text(schema: dict, leaf: str) -> dict:
    rule = validation.RULES.get(leaf)
    out = {**schema, "description": rule} if rule and "description" not in schema else schema
    if enums.MEANINGS.get(leaf):  # what each code of a coded field means
        out = {
            **out,
            "x-enum-descriptions": {str(k): v for k, v in enums.meanings(leaf).items()},
            "x-enum-descriptions-zh": {str(k): v for k, v in enums.meanings(leaf, "zh").items()},
        }
    return out


def _with_rules(schema: dict) -> dict:
    """Add the human-readable field rules (validation.RULES) and the meanings of coded fields
    (core.enums) to a model's properties."""
    props = {k: _rule_text(v, k) for k, v in schema.get("properties", {}).items()}
    return {**schema, "properties": props} if props else schema


def model_schemas() -> dict[str, dict]:
    _, defs = models_json_schema(_models(), ref_template=REF)
    return {name: _with_rules(s) for name, s in defs["$defs"].items()}


def fault_schemas() -> dict[str, dict]:
    schema = faultrules.RULE.json_schema(ref_template=REF)
    defs = schema.pop("$defs")
    defs["FaultRule"] = {**schema, "description": "One rule; `kind` chooses the fields."}
    rs = faultrules.RuleSet.model_json_schema(ref_template=REF)
    rs.pop("$defs", None)
    defs["FaultRuleSet"] = rs
    # A stored rule is its kind's fields plus the counters, nothing else: one variant per kind.
    counters = faultrules.StoredRule.model_json_schema(ref_template=REF)
    variants = []
    for option in schema["oneOf"]:
        name = option["$ref"].rsplit("/", 1)[-1]
        kind = defs[name]
        defs["Stored" + name] = {
            **kind,
            "properties": {**kind["properties"], **counters["properties"]},
            "required": [*kind.get("required", ()), *counters["required"]],
        }
        variants.append(ref("Stored" + name))
    defs["StoredRule"] = {"oneOf": variants, "description": counters["description"]}
    defs["FaultRules"] = {
        "type": "object",
        "properties": {"rules": {"type": "array", "items": ref("StoredRule")}},
        "required": ["rules"],
        "additionalProperties": False,
        "description": faultrules.FaultRules.__doc__,
    }
    defs["RuleBody"] = {
        "oneOf": [ref("FaultRule"), ref("FaultRuleSet")],
        "description": 'One rule, or {"rules": [...]}',
    }
    return defs


def catalog_schema() -> dict:
    rows = "\n".join(f"| {e.code} | {e.name} | {e.message} | {e.meaning} |" for e in CATALOG)
    return {
        "type": "integer",
        "enum": [0, *(e.code for e in CATALOG)],
        "description": "0 is success; every other code is in this catalog "
        "(docs/errors.md):\n\n| code | name | message | meaning |\n"
        "|---|---|---|---|\n" + rows,
        "x-catalog": [
            {"code": e.code, "name": e.name, "message": e.message, "meaning": e.meaning}
            for e in CATALOG
        ],
    }


def envelope_schemas() -> dict[str, dict]:
    return {
        "Envelope": {
            "type": "object",
            "required": ["partner_token", "encode_data"],
            "description": "Every request to the lender and every callback (§1).",
            "properties": {
                "partner_token": {"type": "string"},
                "encode_data": {
                    "type": "string",
                    "description": (
                        "base64(AES-128-CBC(JSON payload)) with the partner's key/IV, "
                        "PKCS#7, like PHP openssl_encrypt"
                    ),
                },
            },
        },
        "Answer": {
            "type": "object",
            "required": ["code", "data"],
            "description": "The lender's answer. The text key is `msg` for 09, 10, 11 "
            "and 16 and `message` elsewhere (a setting changes this); "
            "`data` is plain JSON unless the lender encrypts it.",
            "properties": {
                "code": ref("ErrorCode"),
                "message": {"type": "string", "description": "Indonesian; English detail after"},
                "msg": {"type": "string", "description": "the same, under the spec's other key"},
                "data": {"description": "see the endpoint's answer data"},
            },
        },
        "ErrorCode": catalog_schema(),
    }


def components() -> dict[str, dict]:
    return {
        "schemas": {**envelope_schemas(), **model_schemas(), **fault_schemas()},
        "securitySchemes": SECURITY_SCHEMES,
    }


# ---- operations ----


def _operation_id(method: str, path: str) -> str:
    return (method.lower() + re.sub(r"\W+", "_", re.sub(r":\w+}", "}", path))).strip("_")


def _parameters(route: ControlRoute) -> list[dict]:
    names = re.findall(r"{(\w+)(?::(\w+))?}", route.path)
    out: list[dict] = [
        {
            "name": n,
            "in": "path",
            "required": True,
            "schema": {"type": "integer" if kind == "int" else "string"},
        }
        for n, kind in names
    ]
    if route.query is not None:
        schema = route.query.model_json_schema(ref_template=REF)
        required = set(schema.get("required", ()))
        for name, sub in schema["properties"].items():
            out.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": sub,
                    "description": sub.get("description", ""),
                }
            )
    return out


PAGE_HEADERS = {
    "Link": {
        "description": 'the next page, `<{path}?{query}&cursor=...>; rel="next"` (RFC 8288); '
        "absent on the last page",
        "schema": {"type": "string"},
    },
    "X-Next-Cursor": {
        "description": "the next page's `cursor` (opaque); absent on the last page",
        "schema": {"type": "string"},
    },
}
REQUEST_ID = {
    "X-Request-Id": {
        "description": "this request's id (the client's own when it sent one), also in the "
        "access log",
        "schema": {"type": "string"},
    }
}


def _answers(route: ControlRoute, refusals: dict[str, Any]) -> dict:
    ok: dict[str, Any] = {"description": "OK", **_json(_schema_of(route.answer))}
    ok["headers"] = {**REQUEST_ID, **(PAGE_HEADERS if route.paged else {})}
    out: dict[str, Any] = {
        "200": ok,
        **refusals,
        "4XX": {
            "description": "Bad input (400, naming the field), unknown "
            "partner/order (404), conflict (409)",
            **_json(ref("ControlErrorBody")),
        },
    }
    if 503 in route.statuses:
        out["503"] = {
            "description": "The database does not answer (the same body, status unavailable)",
            **_json(_schema_of(route.answer)),
        }
    return out


# Who may call a control route (its scope, core.tenancy), as OpenAPI security requirements.
SECURITY_SCHEMES = {
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "[server] admin_token: every route, every partner. Not needed on a "
        "sandbox bound to a loopback address without an admin token (one developer's "
        "machine): there no route asks for a token.",
    },
    "partnerToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A partner's control token (answered once by POST /sandbox/partners "
        "or POST /sandbox/partners/{token}/control-token): that partner's routes only.",
    },
}
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "public": [],
    "admin": [{"adminToken": []}],
    "partner": [{"adminToken": []}, {"partnerToken": []}],
}
REFUSALS = {
    "401": "No token, or a token that is neither the admin token nor a partner's control "
    "token (code 10016)",
    "403": "The token may not do this: another partner's, or an admin-only route (code 10017)",
    "413": "The body is over [server] max_body_bytes (code 10013)",
    "415": "A body not sent as JSON (code 10018)",
}


def control_operation(route: ControlRoute) -> dict:
    who = route.scope.describe()
    refusals = {
        code: {"description": text, **_json(ref("ControlErrorBody"))}
        for code, text in REFUSALS.items()
        if route.scope.kind != "public" or code == "413"
    }
    out: dict[str, Any] = {
        "tags": [route.tag],
        "summary": route.summary,
        "description": f"{route.description}\n\n**Who may call it**: {who}".strip(),
        "operationId": _operation_id(route.method, route.full_path),
        "parameters": _parameters(route),
        "security": SECURITY[route.scope.kind],
        "x-scope": {"kind": route.scope.kind, "where": route.scope.where, "name": route.scope.name},
        "responses": _answers(route, refusals),
    }
    if route.body is not None:
        name = "RuleBody" if route.body is faultrules.RuleBody else route.body.__name__
        out["requestBody"] = {"required": True, **_json(ref(name))}
    return out


def _payload_examples() -> dict[str, dict]:
    order = samples.sample_order(
        "openapi-docs", today=date(2026, 3, 2), rules=[], suffix="001", order_no="ORD20260302000123"
    )
    return order.payloads()


def lender_operation(e: Spec, example: dict) -> dict:
    codec = Codec(SPEC_KEY, SPEC_IV)
    envelope = {"partner_token": "demo", "encode_data": codec.encrypt_json(example)}
    data = answers.DATA[e.path].__name__
    return {
        "tags": [LENDER_TAG],
        "operationId": e.name.replace("-", "_"),
        "summary": f"{e.number} {e.summary}",
        "description": f"Endpoint {e.number}. The body is the envelope; its `encode_data` "
        f"decrypts to the **{e.model.__name__}** payload (schema in "
        f"`x-payload`). Business errors answer HTTP 200 with a non-zero code.",
        "x-payload": ref(e.model.__name__),
        "x-payload-example": example,
        "x-answer-data": ref(data),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ref("Envelope"), "example": envelope}},
        },
        "responses": {
            "200": {
                "description": f"The answer; `data` is a {data} when `code` is 0",
                **_json(ref("Answer")),
            },
            "404": {"description": "Unknown path (envelope, code 10001)", **_json(ref("Answer"))},
            "405": {"description": "Not a POST", **_json(ref("Answer"))},
            "413": {"description": "Body too large (code 10013)", **_json(ref("Answer"))},
        },
    }


def webhooks() -> dict[str, dict]:
    out = {}
    for number, path, summary in CALLBACKS:
        body = answers.CALLBACK_BODIES[path].__name__
        out[path.strip("/")] = {
            "post": {
                "tags": ["Callbacks (19-21)"],
                "summary": f"{number}: {summary}",
                "operationId": path.strip("/").replace("-", "_"),
                "description": f"Sent to the partner's callback_url + {path} in the envelope, "
                f"encrypted with its key/IV (or plain JSON). Retried until the "
                f"receiver answers code 0.",
                "x-payload": ref(body),
                "requestBody": {"required": True, **_json(ref("Envelope"))},
                "responses": {
                    "200": {"description": 'Acknowledge with {"code": 0}', **_json(ref("Answer"))}
                },
            }
        }
    return out


# The pages (not JSON): listed so the reference names every route the server has.
PAGES: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("/openapi.json", "Reference", "This document", ()),
    ("/docs", "Reference", "This document as a readable page (offline)", ()),
    ("/dashboard", "Pages", "The dashboard: partners, clocks, orders", ()),
    (
        "/metrics",
        "Server",
        "Prometheus metrics of this process (text format; README: Running a shared staging "
        "instance)",
        (),
    ),
    (
        "/contract/{token}/{order_no}",
        "Pages",
        "The loan contract page (10)",
        (("sig", "signature from the contract_url"),),
    ),
    (
        "/repay/{token}/{order_no}",
        "Pages",
        "The URL repayment page (14 url_info)",
        (("sig", "signature from url_info"),),
    ),
)


def page_operation(path: str, tag: str, summary: str, query: tuple[tuple[str, str], ...]) -> dict:
    params = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in re.findall(r"{(\w+)}", path)
    ]
    params += [
        {
            "name": n,
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": d,
        }
        for n, d in query
    ]
    return {
        "tags": [tag],
        "summary": summary,
        "description": "",
        "operationId": _operation_id("get", path),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
    }


def build(lender: Lender | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document (a dict) of the lender endpoints and the control API."""
    paths: dict[str, dict] = {}
    examples = _payload_examples()
    for e in SPECS:
        paths.setdefault(e.path, {})["post"] = lender_operation(e, examples[e.path])
    for r in ROUTES:
        path = re.sub(r"{(\w+):\w+}", r"{\1}", r.full_path)
        paths.setdefault(path, {})[r.method.lower()] = control_operation(r)
    for path, tag, summary, query in PAGES:
        paths.setdefault(path, {})["get"] = page_operation(path, tag, summary, query)
    url = lender.settings.public_url() if lender else "http://127.0.0.1:8000"
    tags = [LENDER_TAG, *(r.tag for r in ROUTES), *(p[1] for p in PAGES)]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lender Sandbox",
            "version": __version__,
            "description": "A stateful mock lender for the partner lending API: the "
            "lender endpoints 02-18 (encrypted envelopes), the callbacks "
            "19-21 it sends, and the sandbox-only control API under "
            "/sandbox.",
        },
        "servers": [{"url": url}],
        "tags": [{"name": t} for t in dict.fromkeys(tags)],
        "paths": paths,
        "webhooks": webhooks(),
        "components": components(),
        "x-fault-kinds": [vars(k) for k in faultrules.FAULT_KINDS],
    }


def routes(lender: Lender) -> list[BaseRoute]:
    built: dict[str, Any] = {}  # this app's document and page, made on first request

    def document() -> dict:
        if "doc" not in built:
            built["doc"] = build(lender)
        return built["doc"]

    def openapi_json(request: Request) -> Response:
        return JSONResponse(document())

    def docs(request: Request) -> Response:
        lang = i18n.choose(request)
        if f"html-{lang}" not in built:
            built[f"html-{lang}"] = render_docs(document(), lang)
        return i18n.remember(request, HTMLResponse(built[f"html-{lang}"]))

    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
