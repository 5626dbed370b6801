"""The JavaScript a partner's Postman collection runs: PHP-compatible encryption, checks, tests."""

from __future__ import annotations

import json
from typing import Any

# ---- the scripts (the crypto part is run against the PHP golden vectors by the tests) ----

CRYPTO_JS = r"""
// PHP's openssl_encrypt($json, 'AES-128-CBC', $key, 0, $iv) in CryptoJS (docs/protocol.md §2).
const cryptoJs = require('crypto-js');

// PHP uses the first 16 bytes of the key's UTF-8 bytes, NUL-padded when shorter (the same
// for the IV): the spec's 17-byte key "Loan@apis#123456@" is really "Loan@apis#123456".
function phpKey(text) {
  const hex = cryptoJs.enc.Utf8.parse(String(text)).toString(cryptoJs.enc.Hex).slice(0, 32);
  return cryptoJs.enc.Hex.parse(hex.padEnd(32, '0'));
}

function phpEncrypt(plain, key, iv) {
  return cryptoJs.AES.encrypt(cryptoJs.enc.Utf8.parse(plain), phpKey(key),
    {iv: phpKey(iv), mode: cryptoJs.mode.CBC, padding: cryptoJs.pad.Pkcs7}).toString();
}

function phpDecrypt(base64, key, iv) {
  const sealed = cryptoJs.lib.CipherParams.create(
    {ciphertext: cryptoJs.enc.Base64.parse(base64)});
  return cryptoJs.AES.decrypt(sealed, phpKey(key),
    {iv: phpKey(iv), mode: cryptoJs.mode.CBC, padding: cryptoJs.pad.Pkcs7})
    .toString(cryptoJs.enc.Utf8);
}
""".strip()

LENDER_JS = r"""
// Lender endpoints (02-18) take an envelope; everything else (/sandbox/...) is plain JSON.
const LENDER_PATHS = __PATHS__;
function isLenderCall() {
  const path = pm.request.url.getPath();
  return LENDER_PATHS.some(p => path === p || path.endsWith(p));
}
""".strip()

PRE_REQUEST_JS = r"""
// The body of a lender request is the plain JSON payload: encrypt it into
// {"partner_token": ..., "encode_data": ...} just before it is sent.
if (isLenderCall()) {
  const missing = ['partner_token', 'aes_key', 'aes_iv'].filter(n => !pm.variables.get(n));
  if (missing.length) {
    throw new Error('set the collection variables ' + missing.join(', '));
  }
  const text = pm.variables.replaceIn((pm.request.body && pm.request.body.raw) || '');
  let payload;
  try {
    payload = JSON.parse(text);
  } catch (e) {
    throw new Error(pm.info.requestName + ': the body must be the plain JSON payload ('
                    + e.message + ')');
  }
  const pasted = payload && typeof payload.encode_data === 'string'
    && typeof payload.partner_token === 'string';
  if (!pasted) {  // a pasted envelope goes as it is
    const envelope = {
      partner_token: pm.variables.get('partner_token'),
      encode_data: phpEncrypt(JSON.stringify(payload),
                              pm.variables.get('aes_key'), pm.variables.get('aes_iv')),
    };
    pm.request.body.update(JSON.stringify(envelope));
  }
}
""".strip()

TEST_JS = r"""
// Lender answers: code 0, and `data` decrypted when the lender encrypts it
// ([responses] encrypt_data); request tests read it from the local variable `data`.
const name = pm.info.requestName;
if (isLenderCall()) {
  let answer = null;
  pm.test(name + ': the answer is JSON', () => { answer = pm.response.json(); });
  if (answer) {
    pm.test(name + ': code 0', () => {
      pm.expect(answer.code, String(answer.message || answer.msg)).to.eql(0);
    });
    let data = answer.data === undefined ? null : answer.data;
    if (typeof data === 'string' && data !== '') {
      pm.test(name + ': data decrypts to JSON', () => {
        const key = pm.variables.get('aes_key'), iv = pm.variables.get('aes_iv');
        data = JSON.parse(phpDecrypt(data, key, iv));
      });
    }
    pm.variables.set('data', JSON.stringify(data));
  }
} else {
  pm.test(name + ': HTTP ' + pm.response.code + ' is a success', () => {
    pm.expect(pm.response.code, pm.response.text()).to.be.within(200, 299);
  });
}
""".strip()

NEW_BORROWER_JS = r"""
// A new borrower and order number for each run, so the folder runs again on the same sandbox
// (the same order_no twice is 11003; a person with an unsettled loan gets 11004). The NIK keeps
// the sample's region and birth date with a new serial; the mobile ends in __SUFFIX__, which
// picks the "__SCENARIO__" scenario (fixtures/scenarios.toml).
function digits(n, first) {
  let out = first ? String(1 + Math.floor(Math.random() * 9)) : '';
  while (out.length < n) out += String(Math.floor(Math.random() * 10));
  return out;
}
const serial = String(1 + Math.floor(Math.random() * 9999)).padStart(4, '0');
pm.collectionVariables.set('user_idcard', __NIK_HEAD__ + serial);
pm.collectionVariables.set('user_mobile',
                           __MOBILE_HEAD__ + digits(__MOBILE_DIGITS__, true) + __SUFFIX_JSON__);
pm.collectionVariables.set('order_no', 'PM' + Date.now() + digits(8, false));
console.log('borrower', pm.collectionVariables.get('user_mobile'),
            'order', pm.collectionVariables.get('order_no'));
""".strip()


def script(listen: str, source: str) -> dict:
    """A Postman event (`prerequest` or `test`) running `source`."""
    # Postman runs every script of a run in one JavaScript realm: a top-level `const` of one
    # script would clash with the same name in the next, so each script is a function.
    lines = ["(function () {", *source.splitlines(), "})();"]
    return {"listen": listen, "script": {"type": "text/javascript", "exec": lines}}


def fill(template: str, **values: str) -> str:
    """`__NAME__` in a script template -> its value."""
    for name, value in values.items():
        template = template.replace(f"__{name}__", value)
    return template


# ---- the tests of single requests (read the `data` the collection's test decrypted) ----

DATA_JS = "const data = JSON.parse(pm.variables.get('data'));  // set by the collection's test\n"


def expect(field: str, value: Any, label: str) -> str:
    """A test that `data.<field>` is `value`."""
    return DATA_JS + (
        f"pm.test({json.dumps(label)}, () => pm.expect(data.{field}).to.eql({json.dumps(value)}));"
    )


KEEP_CODE = DATA_JS + (
    "pm.test('a payment code', () => pm.expect(data.repay_code).to.be.a('string').and.not.empty);\n"
    "pm.collectionVariables.set('repay_code', data.repay_code);"
)
ONE_CARD = (
    DATA_JS + "pm.test('the bound account', () => pm.expect(data.card_list).to.have.lengthOf(1));"
)
