"""The OpenAPI document and the offline reference page: complete, valid, served."""

from __future__ import annotations

import re

import pytest
from conftest import settings_for
from starlette.routing import Mount

from sandbox.core.errors import CATALOG
from sandbox.core.faultrules import KIND_NAMES
from sandbox.core.protocol import SPECS
from sandbox.web import openapi
from sandbox.web.app import create_app


def _shape(path: str) -> str:
    # /sandbox/callbacks/{id:int} and /sandbox/callbacks/{id} are the same route
    return re.sub(r"{[^}]*}", "{}", path)


@pytest.fixture(scope="module")
def app():
    return create_app(settings_for(), background=False)


@pytest.fixture(scope="module")
def doc(app):
    return openapi.build(app.state.lender)


def _served(app):
    """(path, method) of every route the app serves, mounted ones with their prefix."""
    out = []
    for r in app.routes:
        if isinstance(r, Mount):
            out += [(r.path + sub.path, m) for sub in r.routes for m in sorted(sub.methods or ())]
        elif hasattr(r, "methods"):
            out += [(r.path, m) for m in sorted(r.methods or ())]
    return [(p, m) for p, m in out if m != "HEAD"]


def test_every_sandbox_route_of_the_app_is_documented(app, doc):
    documented = {(_shape(p), m.upper()) for p, item in doc["paths"].items() for m in item}
    routes = [(p, m) for p, m in _served(app) if p.startswith("/sandbox")]
    assert len(routes) >= 25
    missing = [f"{m} {p}" for p, m in routes if (_shape(p), m) not in documented]
    assert not missing, f"add these routes to openapi.CONTROL: {missing}"


def test_every_documented_sandbox_route_exists(app, doc):
    served = {(_shape(p), m) for p, m in _served(app)}
    stale = [
        f"{m.upper()} {p}"
        for p, item in doc["paths"].items()
        if p.startswith("/sandbox")
        for m in item
        if (_shape(p), m.upper()) not in served
    ]
    assert not stale


def test_the_lender_endpoints_carry_their_decrypted_payload_and_answer(doc):
    schemas = doc["components"]["schemas"]
    for e in SPECS:
        op = doc["paths"][e.path]["post"]
        assert op["summary"].startswith(e.number)
        payload = op["x-payload"]["$ref"].rsplit("/", 1)[-1]
        assert payload == e.model.__name__ and payload in schemas
        assert op["x-answer-data"]["$ref"].rsplit("/", 1)[-1] in schemas
        example = op["x-payload-example"]
        e.model.model_validate(example)  # the examples are valid requests
    mobile = schemas["PrecheckReq"]["properties"]["user_mobile"]
    assert mobile["pattern"] == r"^8\d{8,12}$" and "start with 8" in mobile["description"]


def test_the_error_catalog_and_fault_kinds_are_in_the_document(doc):
    code = doc["components"]["schemas"]["ErrorCode"]
    assert code["enum"] == [0, *(e.code for e in CATALOG)]
    assert [e["name"] for e in code["x-catalog"]] == [e.name for e in CATALOG]
    assert [k["name"] for k in doc["x-fault-kinds"]] == list(KIND_NAMES)
    assert set(doc["webhooks"]) == {
        "callback-order-status",
        "callback-approval-result",
        "callback-repay-plan",
    }


def test_the_document_is_valid_openapi_3_1(doc):
    validator = pytest.importorskip("openapi_spec_validator")
    assert doc["openapi"] == "3.1.0"
    validator.validate(doc)


def test_openapi_json_and_docs_are_served_and_docs_name_every_path(sandbox, doc):
    served = sandbox.client.get("/openapi.json")
    assert served.status_code == 200 and served.json()["paths"].keys() == doc["paths"].keys()
    page = sandbox.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for path in doc["paths"]:
        assert f"<code>{path}</code>" in html, path
    for e in CATALOG:
        assert f">{e.code}<" in html and e.name in html
    for kind in KIND_NAMES:
        assert f">{kind}<" in html
    # offline: nothing is loaded from elsewhere; the one script is the package's own
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/ui.js" defer>']
    assert not re.search(r"<link|<img|@import|url\(", html)
    assert sandbox.client.get("/static/ui.js").status_code == 200
    assert not re.search(r'href="(?!#|/)', html)


def test_docs_deep_links_open_their_section_and_paths_are_not_cut(sandbox):
    html = sandbox.client.get("/docs").text
    nav = html.split("<nav>")[1].split("</nav>")[0]
    for op_id in re.findall(r'<details class="op" id="([^"]+)"', html)[:40]:
        assert f'href="#{op_id}"' in nav  # a deep link per operation
    ui = sandbox.client.get("/static/ui.js").text
    assert "hashchange" in ui and ".open = true" in ui  # ... that opens it
    assert "ellipsis" not in html and "overflow-wrap:anywhere" in html
    assert "/sandbox/partners/{token}/postman.json</a>" in nav  # whole, not cut


def test_docs_list_what_each_code_of_a_coded_field_means(sandbox, doc):
    basic = doc["components"]["schemas"]["BasicInfo"]["properties"]["education"]
    assert basic["x-enum-descriptions"]["1"] == "no schooling"
    assert basic["x-enum-descriptions-zh"]["6"] == "研究生"
    en = sandbox.client.get("/docs").text
    assert "<li><code>4</code> high school</li>" in en
    assert "<li><code>170</code> paid out, repaying</li>" in en  # order_status in answers
    zh = sandbox.client.get("/docs?lang=zh").text
    assert "<li><code>3</code> 中学</li>" in zh and "基础信息推送（一推）</span> · 05" in zh
    assert "解密后的业务参数" in zh and "English" in zh  # the switch back


def test_the_documents_version_is_the_packages(doc):
    from sandbox import __version__

    assert doc["info"]["version"] == __version__


def test_docs_show_field_rules_and_examples(sandbox):
    html = sandbox.client.get("/docs").text
    assert "order_info.user_mobile" in html and "must start with 8" in html
    assert "Decrypted payload" in html and "Example payload" in html
    assert html.count('class="op"') >= len(SPECS) + 25
