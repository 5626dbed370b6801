"""The /docs page: the OpenAPI document rendered as one readable, offline HTML page.

Jinja2 templates, no CDN: operations grouped by tag with their parameters, body, decrypted
payload and answer as field tables (rules, descriptions and what each code of a coded field
means, from the schemas), the error catalog and the fault kinds; in English or 中文 (the
page's words and the codes' meanings; field descriptions stay English). A small script
(`static/ui.js`) opens the operation a link points at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import i18n
from .templates import TEMPLATES


@dataclass(frozen=True)
class Row:
    name: str
    type: str
    required: bool
    rule: str
    description: str
    codes: tuple[tuple[str, str], ...] = ()  # (code, meaning) of a coded field


def _codes(s: dict, lang: str) -> tuple[tuple[str, str], ...]:
    """What each code means (x-enum-descriptions, or -zh), in the page's language."""
    named = s.get("x-enum-descriptions-zh" if lang == "zh" else "x-enum-descriptions") or {}
    return tuple((str(code), str(text)) for code, text in named.items())


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
    schema: dict,
    doc: dict,
    name: str = "",
    required: bool = True,
    depth: int = 0,
    lang: str = "en",
) -> list[Row]:
    """A schema as table rows: dotted field names, type, required, rule, description, codes."""
    given = resolve(schema, doc)
    s, nullable = _optional(given)
    if depth > 8:
        return []
    if "oneOf" in s:
        return [r for v in s["oneOf"] for r in _variant_rows(v, doc, name, depth, lang)]
    rows: list[Row] = []
    if name:
        rows.append(
            Row(
                name,
                _type_text(s, doc) + (" | null" if nullable else ""),
                required and not nullable,
                _rule(s),
                s.get("description", ""),
                _codes(given, lang),
            )
        )
    if s.get("type") == "array" and isinstance(s.get("items"), dict):
        rows += (
            schema_rows(s["items"], doc, f"{name}[]", True, depth + 1, lang)[1:]
            if _is_object(s["items"], doc)
            else []
        )
    for prop, sub in s.get("properties", {}).items():
        full = f"{name}.{prop}" if name else prop
        rows += schema_rows(sub, doc, full, prop in s.get("required", ()), depth + 1, lang)
    return rows


def _is_object(schema: dict, doc: dict) -> bool:
    return resolve(schema, doc).get("type") == "object"


def _variant_rows(variant: dict, doc: dict, name: str, depth: int, lang: str) -> list[Row]:
    v = resolve(variant, doc)
    if "oneOf" in v:  # a union of its own (a fault rule): one row, detailed in its section
        title = variant.get("$ref", "").rsplit("/", 1)[-1] or "one of several shapes"
        return [Row(name or "(body)", "object", True, "", f"a {title}: {v.get('description', '')}")]
    kind = v.get("properties", {}).get("kind", {}).get("const") or v.get("title", "")
    rows = schema_rows(v, doc, name, True, depth + 1, lang)
    return [
        Row(
            f"[{kind}] {r.name}" if kind else r.name,
            r.type,
            r.required,
            r.rule,
            r.description,
            r.codes,
        )
        for r in rows
    ]


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _op_view(path: str, method: str, op: dict, doc: dict, lang: str) -> dict:
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    answer = op["responses"]["200"].get("content", {}).get("application/json", {})
    answer_schema = op.get("x-answer-data", answer.get("schema"))
    return {
        "id": op["operationId"],
        "method": method.upper(),
        "path": path,
        "title_zh": i18n.ENDPOINT_TITLES_ZH.get(path, "") if lang == "zh" else "",
        "summary": op.get("summary", ""),
        "description": op.get("description", ""),
        "params": op.get("parameters", []),
        "body_rows": schema_rows(body["schema"], doc, lang=lang) if "schema" in body else [],
        "payload_rows": schema_rows(op["x-payload"], doc, lang=lang) if "x-payload" in op else [],
        "payload_example": _dump(op["x-payload-example"]) if "x-payload-example" in op else "",
        "envelope_example": _dump(body["example"]) if "example" in body else "",
        "answer_rows": schema_rows(answer_schema, doc, lang=lang) if answer_schema else [],
    }


def page_model(doc: dict, lang: str = "en") -> dict:
    """What docs.html shows: operations grouped by tag, the catalog and the fault kinds."""
    groups: dict[str, list[dict]] = {t["name"]: [] for t in doc["tags"]}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            groups[op["tags"][0]].append(_op_view(path, method, op, doc, lang))
    hooks = [
        _op_view("/" + name, "post", item["post"], doc, lang)
        | {"payload_rows": schema_rows(item["post"]["x-payload"], doc, lang=lang)}
        for name, item in doc["webhooks"].items()
    ]
    return {
        "doc": doc,
        "groups": groups,
        "webhooks": hooks,
        "catalog": doc["components"]["schemas"]["ErrorCode"]["x-catalog"],
        "fault_kinds": doc["x-fault-kinds"],
        "fault_rows": schema_rows(doc["components"]["schemas"]["FaultRule"], doc, lang=lang),
        "lang": lang,
        "_": i18n.gettext(lang),
        "ENVELOPE": i18n.ENVELOPE,
        "DEBUG": i18n.DEBUG,
        "FAULTS": i18n.FAULTS,
        "ERRORS": i18n.ERRORS,
        "switch": [(code, label, f"/docs?lang={code}") for code, label in i18n.LANGS.items()],
    }


def render_docs(doc: dict, lang: str = "en") -> str:
    return TEMPLATES.get_template("docs.html").render(**page_model(doc, lang))
