"""The /docs page: the OpenAPI document rendered as one readable, offline HTML page.

Jinja2 templates, no CDN, no script: operations grouped by tag with their parameters, body,
decrypted payload and answer as field tables (rules and descriptions from the schemas), the
error catalog and the fault kinds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .templates import TEMPLATES


@dataclass(frozen=True)
class Row:
    name: str
    type: str
    required: bool
    rule: str
    description: str


def resolve(schema: dict, doc: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _type_text(s: dict, doc: dict) -> str:
    kind = s.get("type", "object" if "allOf" in s or "oneOf" in s else "any")
    items = s.get("items")
    if kind == "array" and isinstance(items, dict):
        named = items.get("$ref", "").rsplit("/", 1)[-1]
        return f"array of {named or _type_text(items, doc)}"
    return " | ".join(kind) if isinstance(kind, list) else str(kind)


def _rule(s: dict) -> str:
    bits = [f"pattern {s['pattern']}"] if s.get("pattern") else []
    for key, label in (
        ("minimum", ">="),
        ("maximum", "<="),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("const", "="),
        ("default", "default"),
    ):
        if key in s and s[key] not in (None, ""):
            bits.append(f"{label} {json.dumps(s[key], ensure_ascii=False)}")
    if "enum" in s:
        bits.append("one of " + ", ".join(map(str, s["enum"])))
    return "; ".join(bits)


def _optional(s: dict) -> tuple[dict, bool]:
    """anyOf [X, null] -> (X, nullable)."""
    options = [o for o in s.get("anyOf", []) if o.get("type") != "null"]
    if "anyOf" in s and len(options) == 1:
        merged = {**s, **options[0]}
        merged.pop("anyOf")
        return merged, True
    return s, False


def schema_rows(
    schema: dict, doc: dict, name: str = "", required: bool = True, depth: int = 0
) -> list[Row]:
    """A schema as table rows: dotted field names, type, required, rule, description."""
    s, nullable = _optional(resolve(schema, doc))
    if depth > 8:
        return []
    if "oneOf" in s:
        return [r for v in s["oneOf"] for r in _variant_rows(v, doc, name, depth)]
    rows: list[Row] = []
    if name:
        rows.append(
            Row(
                name,
                _type_text(s, doc) + (" | null" if nullable else ""),
                required and not nullable,
                _rule(s),
                s.get("description", ""),
            )
        )
    if s.get("type") == "array" and isinstance(s.get("items"), dict):
        rows += (
            schema_rows(s["items"], doc, f"{name}[]", True, depth + 1)[1:]
            if _is_object(s["items"], doc)
            else []
        )
    for prop, sub in s.get("properties", {}).items():
        full = f"{name}.{prop}" if name else prop
        rows += schema_rows(sub, doc, full, prop in s.get("required", ()), depth + 1)
    return rows


def _is_object(schema: dict, doc: dict) -> bool:
    return resolve(schema, doc).get("type") == "object"


def _variant_rows(variant: dict, doc: dict, name: str, depth: int) -> list[Row]:
    v = resolve(variant, doc)
    if "oneOf" in v:  # a union of its own (a fault rule): one row, detailed in its section
        title = variant.get("$ref", "").rsplit("/", 1)[-1] or "one of several shapes"
        return [Row(name or "(body)", "object", True, "", f"a {title}: {v.get('description', '')}")]
    kind = v.get("properties", {}).get("kind", {}).get("const") or v.get("title", "")
    rows = schema_rows(v, doc, name, True, depth + 1)
    return [
        Row(f"[{kind}] {r.name}" if kind else r.name, r.type, r.required, r.rule, r.description)
        for r in rows
    ]


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _op_view(path: str, method: str, op: dict, doc: dict) -> dict:
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    answer = op["responses"]["200"].get("content", {}).get("application/json", {})
    return {
        "id": op["operationId"],
        "method": method.upper(),
        "path": path,
        "summary": op.get("summary", ""),
        "description": op.get("description", ""),
        "params": op.get("parameters", []),
        "body_rows": schema_rows(body["schema"], doc) if "schema" in body else [],
        "payload_rows": schema_rows(op["x-payload"], doc) if "x-payload" in op else [],
        "payload_example": _dump(op["x-payload-example"]) if "x-payload-example" in op else "",
        "envelope_example": _dump(body["example"]) if "example" in body else "",
        "answer_rows": schema_rows(
            op["x-answer-data"] if "x-answer-data" in op else answer.get("schema", {}), doc
        )
        if ("x-answer-data" in op or "schema" in answer)
        else [],
    }


def page_model(doc: dict) -> dict:
    """What docs.html shows: operations grouped by tag, the catalog and the fault kinds."""
    groups: dict[str, list[dict]] = {t["name"]: [] for t in doc["tags"]}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            groups[op["tags"][0]].append(_op_view(path, method, op, doc))
    hooks = [
        _op_view("/" + name, "post", item["post"], doc)
        | {"payload_rows": schema_rows(item["post"]["x-payload"], doc)}
        for name, item in doc["webhooks"].items()
    ]
    return {
        "doc": doc,
        "groups": groups,
        "webhooks": hooks,
        "catalog": doc["components"]["schemas"]["ErrorCode"]["x-catalog"],
        "fault_kinds": doc["x-fault-kinds"],
        "fault_rows": schema_rows(doc["components"]["schemas"]["FaultRule"], doc),
    }


def render_docs(doc: dict) -> str:
    return TEMPLATES.get_template("docs.html").render(**page_model(doc))
