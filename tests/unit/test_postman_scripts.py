"""The Postman collection's JavaScript, run in node with the crypto-js npm package.

The encryption snippet the collection ships (`postman_scripts.CRYPTO_JS`, verbatim) must reproduce
PHP's openssl_encrypt byte for byte (the golden vectors of tests/data/php_openssl_aes.json) and
decrypt what PHP decrypts; the new-borrower script must make payloads the sandbox accepts.
Postman's collection SDK must read every part of the file. Needs node, and crypto-js and
newman in .ci/node (`npm install --no-save --prefix .ci/node newman@6 crypto-js@4`, as .ci/run
does); skipped without them, unless LENDER_SANDBOX_NODE_TESTS=required (CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from sandbox.core.people import is_valid_nik
from sandbox.services import postman, postman_scripts
from sandbox.services.config import DEFAULT_CONFIG, load_settings

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "data" / "php_openssl_aes.json"
NODE_MODULES = ROOT / ".ci" / "node" / "node_modules"
STRICT_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _node(package: str = "crypto-js") -> str:
    """node, with `package` in .ci/node; else skip (fail when LENDER_SANDBOX_NODE_TESTS says
    required)."""
    node = shutil.which("node")
    missing = (
        "node is not installed"
        if node is None
        else None
        if (NODE_MODULES / package).is_dir()
        else f"{package} is not in .ci/node: npm install --no-save --prefix .ci/node "
        "newman@6 crypto-js@4 (as .ci/run does)"
    )
    if missing:
        if os.environ.get("LENDER_SANDBOX_NODE_TESTS") == "required":
            pytest.fail(missing)
        pytest.skip(missing)
    return node  # type: ignore[return-value]


def run_js(source: str, *args: str) -> object:
    """Run `source` in node (crypto-js resolvable); its stdout parsed as JSON."""
    done = subprocess.run(
        [_node(), "-e", source, "--", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


CHECK_VECTORS = (
    postman_scripts.CRYPTO_JS
    + r"""
const fs = require('fs');
const doc = JSON.parse(fs.readFileSync(process.argv[process.argv.length - 1], 'utf8'));
const out = {encrypted: [], decrypted: []};
for (const v of doc.encrypt_vectors) {
  out.encrypted.push([v.name, phpEncrypt(v.plaintext, v.key, v.iv)]);
}
for (const v of doc.decrypt_vectors) {
  let got;
  try { got = phpDecrypt(v.input, v.key, v.iv); } catch (e) { got = 'error: ' + e.message; }
  out.decrypted.push([v.name, got]);
}
console.log(JSON.stringify(out));
"""
)


def test_the_shipped_snippet_is_the_tested_one():
    doc = postman.config_collection(load_settings(DEFAULT_CONFIG, env={}), "demo", date(2026, 3, 2))
    for event in doc["event"]:
        assert "\n".join(event["script"]["exec"]).count(postman_scripts.CRYPTO_JS) == 1


def test_cryptojs_encrypts_like_php_openssl_encrypt():
    vectors = json.loads(VECTORS.read_text("utf-8"))
    got = dict(run_js(CHECK_VECTORS, str(VECTORS))["encrypted"])
    expected = {v["name"]: v["ciphertext_b64"] for v in vectors["encrypt_vectors"]}
    assert len(expected) >= 40  # lengths, JSON bodies, 17-byte/short/empty/multibyte keys and IVs
    assert got == expected


def test_cryptojs_decrypts_what_php_decrypts():
    # Lender answers carry standard base64 (PHP's lenient decoding of broken base64 is the
    # sandbox's concern, not the collection's); those vectors PHP decrypts to UTF-8 text:
    vectors = [
        v
        for v in json.loads(VECTORS.read_text("utf-8"))["decrypt_vectors"]
        if v["returns"] == "string" and v["result_is_utf8"] and STRICT_BASE64.fullmatch(v["input"])
    ]
    got = dict(run_js(CHECK_VECTORS, str(VECTORS))["decrypted"])
    assert len(vectors) >= 8  # spec pair, key cut at 16 bytes, wrong IV, short IV, padding edges
    assert {v["name"]: got[v["name"]] for v in vectors} == {v["name"]: v["result"] for v in vectors}


NEW_BORROWERS = r"""
const store = {};
const pm = {collectionVariables: {set: (k, v) => { store[k] = v; }, get: k => store[k]}};
const console = {log: () => {}};
const made = [];
for (let i = 0; i < 100; i++) {
__SCRIPT__
  made.push(Object.assign({}, store));
}
process.stdout.write(JSON.stringify(made));
"""


def test_each_run_gets_a_new_valid_borrower_and_order_number():
    settings = load_settings(DEFAULT_CONFIG, env={})
    today = date(2026, 3, 2)
    doc = postman.config_collection(settings, "demo", today)
    first = postman.requests_of(doc)[0]
    (script,) = [e["script"]["exec"] for e in first["event"] if e["listen"] == "prerequest"]
    made = run_js(NEW_BORROWERS.replace("__SCRIPT__", "\n".join(script)))
    suffix = {r.name: r.mobile_suffix for r in settings.data.rules}["approve"]
    for borrower in made:
        assert re.fullmatch(r"8\d{8,12}", borrower["user_mobile"])
        assert borrower["user_mobile"].endswith(suffix)
        assert is_valid_nik(borrower["user_idcard"], strict=True, today=today)
        assert re.fullmatch(r"[A-Za-z0-9_-]{10,32}", borrower["order_no"])
    assert len({b["order_no"] for b in made}) == len(made)
    assert len({b["user_mobile"] for b in made}) > len(made) * 0.9  # random, not a sequence of one


ROUND_TRIP = r"""
// Postman's own collection SDK (newman's): what it reads of the file is what Postman reads.
const {Collection} = require('postman-collection');
const doc = JSON.parse(require('fs').readFileSync(process.argv[process.argv.length - 1], 'utf8'));
const c = new Collection(doc);
const scripts = events => events.all().map(e => [e.listen, e.script.exec.join('\n')]);
const requests = [];
c.forEachItem(i => requests.push({
  name: i.name, method: i.request.method, url: i.request.url.toString(),
  body: i.request.body ? i.request.body.raw : null, scripts: scripts(i.events)}));
console.log(JSON.stringify({
  schema: c.toJSON().info.schema, folders: c.items.all().map(f => f.name), requests,
  scripts: scripts(c.events), variables: c.variables.all().map(v => [v.key, v.value])}));
"""


def test_postmans_collection_sdk_reads_every_part(tmp_path):
    _node("postman-collection")  # newman's
    doc = postman.config_collection(load_settings(DEFAULT_CONFIG, env={}), "demo", date(2026, 3, 2))
    path = tmp_path / "collection.json"
    path.write_text(json.dumps(doc), "utf-8")
    back = run_js(ROUND_TRIP, str(path))
    assert back["schema"] == postman.SCHEMA
    assert back["folders"] == [f["name"] for f in doc["item"]]
    assert back["requests"] == [
        {
            "name": i["name"],
            "method": i["request"]["method"],
            "url": i["request"]["url"]["raw"],
            "body": i["request"]["body"]["raw"] if "body" in i["request"] else None,
            "scripts": [[e["listen"], "\n".join(e["script"]["exec"])] for e in i.get("event", [])],
        }
        for i in postman.requests_of(doc)
    ]
    assert back["scripts"] == [[e["listen"], "\n".join(e["script"]["exec"])] for e in doc["event"]]
    assert back["variables"] == [[v["key"], v["value"]] for v in doc["variable"]]
