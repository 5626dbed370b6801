"""The control API (/sandbox/*) as one route table: plain JSON in and out, errors as 4xx JSON.

Every route is a row of `ROUTES`: method, path, what it is for, the models of its body, query
string and answer (`core.control_models`), and the function that answers it through the
services, and whose token it takes (its `scope`: public, admin, or the partner it names —
core.tenancy; `web.control_route` authorizes every call by it). The app mounts the table under
/sandbox; the OpenAPI document is generated from the same rows, so the two cannot drift.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import control_answers as a
from ..core import control_models as m
from ..core.faultrules import FaultRules, RuleBody
from ..core.tenancy import ADMIN, PUBLIC, owned, partner
from ..services import (
    conformance,
    control,
    credentials,
    deliveries,
    envelope_tools,
    faults,
    health,
    journal,
    listing,
    payments,
    postman,
    retention,
    waiting,
)
from .control_route import Call, ControlRoute, endpoint, json_error

__all__ = ["ROUTES", "Call", "ControlRoute", "json_error", "routes"]


async def _wait(c: Call) -> dict[str, Any]:
    q: m.WaitQuery = c.query
    return await waiting.wait_for_order(
        c.lender,
        q.partner_token,
        c.path["order_no"],
        status=q.status,
        acknowledged=q.callback == "acknowledged",
        timeout=q.timeout,
    )


def _postman(c: Call) -> Response:
    """The partner's collection as a download; its links use public_url, else this host."""
    token = c.path["token"]
    base = c.lender.settings.server.public_url or c.base_url
    doc = postman.partner_collection(c.lender, token, base)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", token)
    disposition = f'attachment; filename="lender-sandbox-{name}.postman_collection.json"'
    return JSONResponse(doc, headers={"Content-Disposition": disposition})


def _health(c: Call) -> Response:
    status, doc = health.health(c.lender, getattr(c.state, "heartbeat", None))
    return JSONResponse(doc, status_code=status)


# The scopes rows share: a partner named in the query (or the body) — a partner's token
# fills in its own when it is absent, the admin's means every partner; the owner of a callback
# delivery; the envelope tools (a partner's key, or none with an explicit key and IV).
OWN_QUERY = partner("query", "partner_token", absent="own")
OWN_BODY = partner("body", "partner_token", absent="own")
CALLBACK = owned(
    "callback delivery", lambda c: credentials.owner_of_callback(c.lender, c.path["id"])
)
TOOL = partner("body", "partner_token", absent="none")

PARTNERS, CLOCKS, ORDERS = "Control: partners", "Control: clocks", "Control: orders"
CALLBACKS, JOURNAL, FAULTS = "Control: callbacks", "Control: journal", "Control: faults"
SERVER, TOOLS, PAYMENTS = "Control: server", "Control: tools", "Control: payments"
ACCEPTANCE = "Control: acceptance"
R = ControlRoute

ROUTES: tuple[ControlRoute, ...] = (
    R(
        "GET",
        "/health",
        SERVER,
        "Liveness: database, scheduler and callback backlog",
        _health,
        a.Health,
        statuses=(503,),
        description="Open even when an admin token protects the rest of /sandbox. HTTP 503 "
        "(status `unavailable`) when the database does not answer; status `degraded` when the "
        "scheduler stopped ticking (clocks, retries and retention wait).",
        scope=PUBLIC,
    ),
    R(
        "GET",
        "/partners",
        PARTNERS,
        "Every partner (without secrets), oldest first",
        lambda c: listing.partners(c.lender, c.query),
        list[a.PartnerView],
        query=m.PartnersQuery,
        scope=ADMIN,
    ),
    R(
        "POST",
        "/partners",
        PARTNERS,
        "Onboard a partner (spec §01)",
        lambda c: control.create_partner(c.lender, c.body),
        a.PartnerCreated,
        body=m.PartnerCreate,
        description="Creates a partner, generating what is not given; answers its credentials, "
        "its control token (this once only) and the lender's product list.",
        statuses=(400, 409),
        scope=ADMIN,
    ),
    R(
        "GET",
        "/partners/{token}",
        PARTNERS,
        "One partner",
        lambda c: control.get_partner(c.lender, c.path["token"], secrets=c.query.secrets),
        a.PartnerView,
        query=m.SecretsQuery,
        scope=partner("path", "token"),
    ),
    R(
        "PATCH",
        "/partners/{token}",
        PARTNERS,
        "Change a partner's callback URL, chaos, clock or keys",
        lambda c: control.update_partner(c.lender, c.path["token"], c.body),
        a.PartnerView,
        body=m.PartnerPatch,
        scope=partner("path", "token"),
    ),
    R(
        "POST",
        "/partners/{token}/control-token",
        PARTNERS,
        "Issue the partner a new control token",
        lambda c: credentials.rotate(c.lender, c.path["token"]),
        a.ControlToken,
        description="The old token stops working (a dashboard session opened with it ends). "
        "The new one is answered this once only. A fixture partner whose partners.toml names "
        "a control_token gets that one back at the next start.",
        scope=partner("path", "token"),
    ),
    R(
        "GET",
        "/partners/{token}/postman.json",
        PARTNERS,
        "The partner's Postman collection (v2.1; Apifox imports it)",
        _postman,
        a.PostmanCollection,
        statuses=(404, 409),
        description="Every endpoint 02-18 with an example payload, a whole loan in order (with "
        "sandbox steps that move the clock and pay codes), and collection scripts that encrypt "
        "the plain payloads like PHP (CryptoJS). Variables carry the base URL and the partner's "
        "token, key and IV. Links use [server] public_url, else the host of this request.",
        scope=partner("path", "token"),
    ),
    R(
        "GET",
        "/partners/{token}/clock",
        CLOCKS,
        "A partner's clock",
        lambda c: control.get_clock(c.lender, c.path["token"]),
        a.ClockView,
        scope=partner("path", "token"),
    ),
    R(
        "POST",
        "/partners/{token}/clock/advance",
        CLOCKS,
        "Move the clock forward and fire every due event on the way",
        lambda c: control.advance_clock(c.lender, c.path["token"], c.body.total),
        a.ClockView,
        body=m.ClockAdvance,
        description="Returns when the state is consistent: every event up to the new time has "
        "fired, in due-time order, each at its own virtual time.",
        scope=partner("path", "token"),
    ),
    R(
        "POST",
        "/partners/{token}/clock/set",
        CLOCKS,
        "Move the clock to an instant (forward only)",
        lambda c: control.set_clock(c.lender, c.path["token"], c.body.instant),
        a.ClockView,
        body=m.ClockSet,
        scope=partner("path", "token"),
    ),
    R(
        "POST",
        "/partners/{token}/callbacks/pause",
        CALLBACKS,
        "Hold a partner's callbacks",
        lambda c: control.update_partner(c.lender, c.path["token"], {"callbacks_paused": True}),
        a.PartnerView,
        description="Deliveries stay pending without using attempts.",
        scope=partner("path", "token"),
    ),
    R(
        "POST",
        "/partners/{token}/callbacks/resume",
        CALLBACKS,
        "Deliver what was held, in order",
        lambda c: control.update_partner(c.lender, c.path["token"], {"callbacks_paused": False}),
        a.PartnerView,
        scope=partner("path", "token"),
    ),
    R(
        "GET",
        "/orders",
        ORDERS,
        "Orders, newest first",
        lambda c: listing.orders(c.lender, c.query),
        list[a.OrderSummary],
        query=m.OrdersQuery,
        scope=OWN_QUERY,
    ),
    R(
        "GET",
        "/orders/{order_no}",
        ORDERS,
        "An order with timeline, bank cards, codes, payments, extensions, events and callbacks",
        lambda c: control.order_detail(c.lender, c.query.partner_token, c.path["order_no"]),
        a.OrderDetail,
        query=m.PartnerQuery,
        scope=partner("query", "partner_token"),
    ),
    R(
        "POST",
        "/orders/{order_no}/transition",
        ORDERS,
        "Force a legal transition",
        lambda c: control.transition(c.lender, c.path["order_no"], c.body),
        a.OrderDetail,
        body=m.Transition,
        statuses=(400, 404, 409),
        description="Any trigger the state machine allows from the order's status; an illegal "
        "one is a 409 naming the allowed triggers.",
        scope=partner("body", "partner_token"),
    ),
    R(
        "GET",
        "/orders/{order_no}/wait",
        ORDERS,
        "Long-poll until an order reaches a status and/or its callbacks are acknowledged",
        _wait,
        a.WaitResult,
        query=m.WaitQuery,
        blocking=False,
        scope=partner("query", "partner_token"),
    ),
    R(
        "POST",
        "/payments",
        PAYMENTS,
        "A borrower pays a code from 15",
        lambda c: payments.pay(c.lender, c.body.repay_code, c.body.amount),
        a.PaymentResult,
        body=m.Payment,
        statuses=(400, 404, 409),
        description="A full repayment settles the order (200); an extension fee extends it "
        "(back to 170).",
        scope=owned(
            "payment code", lambda c: credentials.owner_of_code(c.lender, c.body.repay_code)
        ),
    ),
    R(
        "GET",
        "/callbacks",
        CALLBACKS,
        "Callback deliveries and attempts",
        lambda c: listing.callback_deliveries(c.lender, c.query),
        list[a.Delivery],
        query=m.CallbacksQuery,
        description="Newest `limit` (default 200), oldest first; each with its decrypted body, "
        "the body as sent, why it still waits, and every attempt. The next page holds the "
        "deliveries before these.",
        scope=OWN_QUERY,
    ),
    R(
        "GET",
        "/callbacks/{id:int}",
        CALLBACKS,
        "One delivery",
        lambda c: deliveries.get_delivery(c.lender, c.path["id"]),
        a.Delivery,
        scope=CALLBACK,
    ),
    R(
        "POST",
        "/callbacks/{id:int}/redeliver",
        CALLBACKS,
        "Send again",
        lambda c: deliveries.redeliver(c.lender, c.path["id"]),
        a.Delivery,
        description="A new attempt cycle (pending, due now); the attempt log keeps the earlier "
        "attempts.",
        scope=CALLBACK,
    ),
    R(
        "GET",
        "/journal",
        JOURNAL,
        "Requests received, decrypted",
        lambda c: listing.journal_entries(c.lender, c.query),
        list[a.JournalEntry],
        query=m.JournalQuery,
        description="Newest first. `http_status` 0: no HTTP answer (a `drop` fault).",
        scope=OWN_QUERY,
    ),
    R(
        "GET",
        "/journal/{id:int}",
        JOURNAL,
        "One request, decrypted",
        lambda c: journal.get_entry(c.lender, c.path["id"]),
        a.JournalEntry,
        description="What the acceptance report's evidence links to.",
        scope=owned("journal entry", lambda c: credentials.owner_of_entry(c.lender, c.path["id"])),
    ),
    R(
        "DELETE",
        "/journal",
        JOURNAL,
        "Clear the journal (or a partner's)",
        lambda c: journal.clear(c.lender, c.query.partner_token),
        a.Deleted,
        query=m.ScopeQuery,
        scope=OWN_QUERY,
    ),
    R(
        "POST",
        "/journal/prune",
        JOURNAL,
        "Apply the retention now",
        lambda c: retention.prune(c.lender, c.body.max_age_days, c.body.max_rows_per_partner),
        a.Pruned,
        body=m.Prune,
        description="Deletes journal entries, and delivered or dead callback deliveries with "
        "their attempts, older than `max_age_days` or beyond each partner's newest "
        "`max_rows_per_partner` ([journal] in config.toml unless given). Pending deliveries "
        "and orders stay. The server also does this every [journal] prune_every.",
        scope=ADMIN,
    ),
    R(
        "GET",
        "/partners/{token}/conformance",
        ACCEPTANCE,
        "The acceptance report (联调验收) of the partner's current run",
        lambda c: conformance.report(c.lender, c.path["token"]),
        a.ConformanceReport,
        description="Every check of docs/conformance.md judged from what the partner did since "
        "its run started: `pass`, `fail` (with evidence: journal entries, callback attempts, "
        "orders) or `untested` (with how to test it).",
        scope=partner("path", "token"),
    ),
    R(
        "POST",
        "/partners/{token}/conformance/reset",
        ACCEPTANCE,
        "Start a new acceptance run",
        lambda c: conformance.reset(c.lender, c.path["token"]),
        a.ConformanceRunStart,
        description="The report looks only at what happens from now on; orders, journal and "
        "callbacks are kept.",
        scope=partner("path", "token"),
    ),
    R(
        "GET",
        "/faults",
        FAULTS,
        "Fault rules, with remaining counts",
        lambda c: listing.fault_rules(c.lender, c.query),
        FaultRules,
        query=m.FaultsQuery,
        scope=OWN_QUERY,
    ),
    R(
        "PUT",
        "/faults",
        FAULTS,
        "Replace the fault rules",
        lambda c: faults.put_rules(c.lender, c.body),
        FaultRules,
        body=RuleBody,
        description='One rule or {"rules": [...]}. Replaces every rule, or only one partner\'s '
        "when a partner_token is given at the top level (a single rule's own "
        "partner_token counts). A rule as GET shows it can be PUT back. See the "
        "fault kinds table.",
        scope=OWN_BODY,
    ),
    R(
        "POST",
        "/faults",
        FAULTS,
        "Add fault rules",
        lambda c: faults.add_rules(c.lender, c.body),
        FaultRules,
        body=RuleBody,
        description="Same body as PUT; the other rules stay.",
        scope=OWN_BODY,
    ),
    R(
        "DELETE",
        "/faults",
        FAULTS,
        "Delete fault rules",
        lambda c: faults.clear_rules(c.lender, c.query.id, c.query.partner_token),
        a.Deleted,
        query=m.FaultsDeleteQuery,
        description="All, one (`id`) or one partner's.",
        scope=OWN_QUERY,
    ),
    R(
        "POST",
        "/reset",
        SERVER,
        "Wipe orders and history, reload fixtures",
        lambda c: control.reset(c.lender, None if c.body.everything else c.body.partner_token),
        a.ResetResult,
        body=m.Reset,
        description='Of one partner (`{"partner_token": ...}`: its clock restarts) or of every '
        'partner (`{"all": true}`, admin only). Anything else is a 400: a missing, null, empty '
        "or false partner_token never means all.",
        scope=partner("body", "partner_token"),
    ),
    R(
        "POST",
        "/tools/encrypt",
        TOOLS,
        "Encrypt a payload like PHP",
        lambda c: envelope_tools.encrypt(c.lender, c.body),
        a.Encrypted,
        body=m.Encrypt,
        description="`data` as an object is JSON-encoded like PHP json_encode (escaped slashes "
        "and unicode unless `escape` is false); a string is encrypted as is.",
        scope=TOOL,
    ),
    R(
        "POST",
        "/tools/decrypt",
        TOOLS,
        "Decrypt an encode_data",
        lambda c: envelope_tools.decrypt(c.lender, c.body),
        a.Decrypted,
        body=m.Decrypt,
        description="A whole envelope works as the body. A wrong key or IV is a 400 that says "
        "so (10003 undecryptable, 10004 not_json with a hex preview).",
        scope=TOOL,
    ),
)


def routes() -> list[BaseRoute]:
    return [Route(r.path, endpoint(r), methods=[r.method]) for r in ROUTES]
