"""A scripted aggregator for the acceptance-report tests: what an integrating team's code does
against the sandbox, right by default, with one planted mistake when asked.

It talks to a real app over HTTP (starlette's TestClient through `LenderClient`, so requests
carry a Content-Type and PHP-encoded payloads) and answers callbacks as the team's receiver
would: the sandbox's outbox delivers to `Receiver` (a `services.senders.Sender`) after every step.
Each episode walks one scenario of docs/conformance.md; a mistake changes one step of one
episode.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from conftest import CODEC, IV, KEY, TODAY, TOKEN
from starlette.testclient import TestClient

from sandbox.client import BadResponse, LenderClient
from sandbox.services.outbox import deliver_now
from sandbox.testing import SampleOrder, sample_order

ACK = json.dumps({"code": 0, "message": "success", "data": {}})
JSON_TYPE = "application/json;charset=utf-8"


class Wall:
    """The lender's wall clock: every read moves it 1 ms (so every record has its own time),
    `sleep` moves it further (the team waiting)."""

    def __init__(self, start: float):
        self.t = start

    def __call__(self) -> float:
        self.t += 0.001
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class Receiver:
    """The team's callback endpoint, as the sandbox's outbox sees it (a Sender)."""

    def __init__(self, agg: Aggregator):
        self.agg = agg
        self.seen: set[str] = set()

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
        body = CODEC.decrypt_json(json.loads(content)["encode_data"])
        return self.agg.on_callback(urlsplit(url).path, body, content.decode())


class Aggregator:
    """The integration under test. `mistake` names one planted error (see MISTAKES in the
    tests); None does everything right."""

    def __init__(self, http: TestClient, wall: Wall, mistake: str | None = None):
        self.http, self.wall, self.mistake = http, wall, mistake
        self.lender = http.app.state.lender  # type: ignore[attr-defined]
        self.api = LenderClient("http://testserver", TOKEN, KEY, IV, http=http)
        self.receiver = Receiver(self)
        self.known: dict[str, int] = {}  # order_no -> the status the team believes
        self.refused_callbacks = 0
        self.rules = self.lender.settings.data.rules

    # ---- plumbing ----

    def control(self, method: str, path: str, body: dict | None = None) -> Any:
        r = self.http.request(method, path, json=body)
        assert r.status_code < 400, r.text
        self.deliver()
        return r.json()

    def deliver(self) -> None:
        """What the server's worker does at once: send every callback that is due."""
        deliver_now(self.lender, self.receiver)

    def call(self, number_path: str, payload: dict) -> dict:
        doc = self.api.call(number_path, payload)
        self.deliver()
        return doc

    def ok(self, path: str, payload: dict) -> dict:
        doc = self.call(path, payload)
        assert doc["code"] == 0, (path, doc)
        return doc["data"]

    def raw(
        self,
        path: str,
        payload: dict,
        *,
        text: str | None = None,
        key: str = KEY,
        content_type: str = JSON_TYPE,
    ) -> dict:
        """A request built by hand: other JSON text, another key, another Content-Type."""
        from sandbox.core.crypto import Codec, php_json_encode

        plain = text if text is not None else php_json_encode(payload)
        body = json.dumps(
            {"partner_token": TOKEN, "encode_data": Codec(key, IV).encrypt_text(plain)}
        )
        doc = self.http.post(path, content=body, headers={"content-type": content_type}).json()
        self.deliver()
        return doc

    def advance(self, by: str) -> None:
        self.control("POST", f"/sandbox/partners/{TOKEN}/clock/advance", {"by": by})

    def borrower(self, seed: str, scenario: str) -> SampleOrder:
        return sample_order(f"conformance-{seed}", scenario=scenario, today=TODAY, rules=self.rules)

    def on_callback(self, path: str, body: dict, raw: str) -> tuple[int, str]:
        """Record the status; acknowledge (a mistake may refuse)."""
        duplicate = raw in self.receiver.seen
        self.receiver.seen.add(raw)
        if (
            self.mistake == "refuse_callback"
            and path.endswith("approval-result")
            and not self.refused_callbacks
        ):
            self.refused_callbacks += 1
            return 500, "<html>Internal Server Error</html>"
        if self.mistake == "refuse_duplicates" and duplicate:
            return 200, json.dumps({"code": 1, "message": "already processed"})
        status = body.get("order_status")
        if status is not None:
            old = self.known.get(body["order_no"], 0)
            # Right: a status never goes back (callbacks may come out of order). Wrong: the last
            # callback wins.
            self.known[body["order_no"]] = status if self.mistake == "regress" else max(old, status)
        return 200, ACK

    # ---- steps ----

    def setup(self) -> None:
        """Callbacks to the team's receiver; every callback delivered twice (chaos)."""
        self.control(
            "PATCH",
            f"/sandbox/partners/{TOKEN}",
            {"callback_url": "http://aggregator.test/hooks", "chaos": {"duplicate": 1}},
        )

    def push(self, o: SampleOrder) -> None:
        """05 then 06 (a planted mistake may get the order of things wrong)."""
        if self.mistake == "supplement_first":
            self.call("push-supplement-info", o.supplement_info())
        basic = o.basic_info()
        if self.mistake == "bad_mobile":
            bad = {
                **basic,
                "order_info": {**basic["order_info"], "user_mobile": "0" + o.person.mobile},
            }
            self.call("push-basic-info", bad)
        self.ok("push-basic-info", basic)
        self.ok("push-supplement-info", o.supplement_info())

    def review(self, o: SampleOrder) -> dict:
        """Poll 13 while in review (once, or a storm), wait for the review, read 13 again."""
        polls = 8 if self.mistake == "poll_storm" else 1
        for _ in range(polls):
            assert self.ok("get-approval-result", o.order())["order_status"] == 90
        self.advance("2m")
        return self.ok("get-approval-result", o.order())

    def confirm(self, o: SampleOrder, approval: dict) -> None:
        if self.mistake == "confirm_before_bind":
            self.call("push-order-confirm", o.confirm(approval["approval_amount"]))
        self.ok("push-bind-bank", o.bind_bank())
        self.ok("push-order-confirm", o.confirm(approval["approval_amount"]))

    def disbursed(self, o: SampleOrder) -> dict:
        self.push(o)
        approval = self.review(o)
        assert approval["order_status"] == 100, approval
        self.confirm(o, approval)
        if self.mistake == "plan_before_payout":
            self.call("get-repay-plan", o.order())
        self.advance("1m")
        return approval

    def pay(self, code: str) -> None:
        self.control("POST", "/sandbox/payments", {"repay_code": code})

    # ---- episodes: each walks one part of docs/conformance.md ----

    def browse(self) -> None:
        """What an app asks before a borrower applies: 02, 03, 04, 07."""
        o = self.borrower("browse", "approve")
        if self.mistake == "wrong_key":
            self.raw("/get-loan-precheck", o.precheck(), key="Stale-key-123456")
        if self.mistake == "python_json":
            self.raw("/get-loan-precheck", o.precheck(), text=json.dumps(o.precheck()))
        if self.mistake == "form_content_type":
            self.raw(
                "/get-loan-precheck", o.precheck(), content_type="application/x-www-form-urlencoded"
            )
        self.ok("get-loan-precheck", o.precheck())
        self.ok("get-loan-amount", o.precheck())
        self.ok("get-loan-interest", o.interest())
        self.ok("get-bank-list", {"product_id": o.product_id, "action_type": 1})

    def full_loan(self) -> None:
        """Push to settlement with an extension on the way: every endpoint 05-18."""
        o = self.borrower("full", "approve")
        self.disbursed(o)
        assert self.ok("get-order-status", o.order())["order_status"] == 170
        self.ok("get-bind-bank", o.order())
        self.ok("get-loan-contract", o.order())
        self.ok("get-repay-plan", o.order())
        self.ok("get-bank-list", {"product_id": o.product_id, "action_type": 2})
        term = 30 if self.mistake == "extension_not_offered" else 7
        if term != 7:
            self.call("get-delay-interest", o.order(delay_term=term))
        self.ok("get-delay-interest", o.order(delay_term=7))
        self.pay(self.ok("get-repay-detail", o.repay_detail(2, delay_term=7))["repay_code"])
        self.ok("get-delay-list", o.order())
        self.ok("get-delay-detail", o.order())
        self.pay(self.ok("get-repay-detail", o.repay_detail(1))["repay_code"])
        assert self.ok("get-repay-plan", o.order())["order_status"] == 200
        if self.mistake == "code_after_settle":
            self.call("get-repay-detail", o.repay_detail(1))

    def refused(self) -> None:
        """A precheck refused with 11007: the team stops."""
        o = self.borrower("refused", "reject_precheck")
        assert self.call("get-loan-precheck", o.precheck())["code"] == 11007
        if self.mistake == "push_after_refusal":
            assert self.call("push-basic-info", o.basic_info())["code"] == 11007

    def reduced(self) -> None:
        o = self.borrower("reduced", "approve_reduced")
        self.push(o)
        approval = self.review(o)
        assert approval["approval_amount"] < o.amount
        self.ok("push-bind-bank", o.bind_bank())
        if self.mistake == "confirm_applied":
            assert self.call("push-order-confirm", o.confirm(o.amount))["code"] == 10009
        self.ok("push-order-confirm", o.confirm(approval["approval_amount"]))

    def rejected(self) -> None:
        o = self.borrower("rejected", "reject_review")
        self.push(o)
        assert self.review(o)["order_status"] == 110
        if self.mistake == "bind_rejected":
            assert self.call("push-bind-bank", o.bind_bank())["code"] == 11002

    def payout_failure(self) -> None:
        o = self.borrower("payout", "payout_fail_once")
        approval = self.disbursed(o)
        assert self.ok("get-order-status", o.order())["order_status"] == 169
        if self.mistake == "confirm_without_rebind":
            assert (
                self.call("push-order-confirm", o.confirm(approval["approval_amount"]))["code"]
                == 11006
            )
        self.confirm(o, approval)
        self.advance("1m")
        assert self.ok("get-order-status", o.order())["order_status"] == 170

    def overdue(self) -> None:
        o = self.borrower("overdue", "overdue")
        self.disbursed(o)
        self.advance("15d")
        assert self.ok("get-repay-plan", o.order())["is_overdue"] == 1

    def cancelled(self) -> None:
        """Approved, never confirmed: cancelled after 3 days."""
        o = self.borrower("cancelled", "approve")
        self.push(o)
        approval = self.review(o)
        self.advance("3d1m")
        assert self.ok("get-order-status", o.order())["order_status"] == 161
        if self.mistake == "confirm_cancelled":
            assert (
                self.call("push-order-confirm", o.confirm(approval["approval_amount"]))["code"]
                == 11002
            )

    def unknown_confirm(self) -> None:
        """11 answers HTTP 504 but went through: retry with the same figures."""
        o = self.borrower("unknown", "approve")
        self.push(o)
        approval = self.review(o)
        self.ok("push-bind-bank", o.bind_bank())
        self.control(
            "POST",
            "/sandbox/faults",
            {
                "partner_token": TOKEN,
                "kind": "confirm_unknown",
                "path": "/push-order-confirm",
                "count": 1,
            },
        )
        try:
            self.call("push-order-confirm", o.confirm(approval["approval_amount"]))
            raise AssertionError("the fault should have answered HTTP 504")
        except BadResponse:
            pass  # the outcome is unknown
        if self.mistake == "new_order_after_unknown":
            again = replace_order(o, o.order_no + "B")
            assert self.call("push-basic-info", again.basic_info())["code"] == 11004
            return
        self.ok("push-order-confirm", o.confirm(approval["approval_amount"]))

    def replayed(self) -> None:
        """05 answers HTTP 503 after creating the order: the client retries the same body."""
        o = self.borrower("replay", "approve")
        self.control(
            "POST",
            "/sandbox/faults",
            {
                "partner_token": TOKEN,
                "kind": "http_error",
                "path": "/push-basic-info",
                "after_handler": True,
                "count": 1,
            },
        )
        try:
            self.call("push-basic-info", o.basic_info())
            raise AssertionError("the fault should have answered HTTP 503")
        except BadResponse:
            pass
        retry = o.basic_info()
        if self.mistake == "replay_changed":
            retry["order_info"]["application_amount"] = o.amount - 100_000
            assert self.call("push-basic-info", retry)["code"] == 11003
            return
        self.ok("push-basic-info", retry)

    def out_of_order(self) -> None:
        """Callbacks held while the order is approved and paid out, then delivered newest
        first (chaos reorder)."""
        o = self.borrower("reorder", "approve")
        self.push(o)
        self.control(
            "PATCH",
            f"/sandbox/partners/{TOKEN}",
            {"chaos": {"duplicate": 1, "reorder": 1, "reorder_hold": 0}, "callbacks_paused": True},
        )
        approval = self.review(o)
        self.confirm(o, approval)
        self.advance("1m")
        self.control("POST", f"/sandbox/partners/{TOKEN}/callbacks/resume")  # delivers
        self.control("PATCH", f"/sandbox/partners/{TOKEN}", {"chaos": {"duplicate": 1}})
        if self.known.get(o.order_no) == 100:  # what a team that trusted the last callback does:
            # it offers the loan again, and the borrower now takes a little less
            lower = approval["approval_amount"] - 100_000
            self.call("push-order-confirm", o.confirm(lower))

    def run_all(self) -> None:
        for episode in EPISODES:
            getattr(self, episode)()


def replace_order(o: SampleOrder, order_no: str) -> SampleOrder:
    from dataclasses import replace

    return replace(o, order_no=order_no)


EPISODES = (
    "browse",
    "full_loan",
    "refused",
    "reduced",
    "rejected",
    "payout_failure",
    "overdue",
    "cancelled",
    "unknown_confirm",
    "replayed",
    "out_of_order",
)
