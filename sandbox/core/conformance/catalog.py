"""The catalogue of checks — ONE table, the source of the report and of docs/conformance.md —
and `evaluate`, which judges a run by it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .facts import Facts, Verdict, capped
from .lifecycle_checks import (
    check_approval,
    check_callbacks_acknowledged,
    check_cancellation,
    check_duplicates,
    check_extension,
    check_full_repayment,
    check_out_of_order,
    check_overdue,
    check_payout_failure,
    check_reduced,
    check_rejection,
)
from .protocol_checks import (
    check_bind_first,
    check_confirm_unknown,
    check_content_type,
    check_coverage,
    check_decrypts,
    check_fields,
    check_php_json,
    check_poll_rate,
    check_push_sequence,
    check_refusals,
    check_repay_after_payout,
    check_replays,
)
from .records import Limits, Run

# ---- the catalogue: ONE table, the source of the report and of docs/conformance.md ----


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    title_zh: str
    spec: str  # where the rule is written (docs/...)
    how_to_test: str  # {token} and scenario names ({approve}...) are filled in
    evaluate: Callable[[Facts], Verdict]


CATALOG: tuple[Check, ...] = (
    Check(
        "envelope.decrypts",
        "Every request decrypts with the partner's key and IV",
        "每个请求都能用合作方的密钥和 IV 解密",
        "docs/protocol.md §2",
        "Call any endpoint 02-18 from your integration.",
        check_decrypts,
    ),
    Check(
        "envelope.php_json",
        "The payload is JSON as PHP json_encode writes it",
        "加密前的 JSON 与 PHP json_encode 的输出一致",
        "docs/protocol.md §2",
        "Call any endpoint; encode the payload compactly, as PHP json_encode does "
        "(escaping / and non-ASCII characters is optional).",
        check_php_json,
    ),
    Check(
        "envelope.content_type",
        "Requests say Content-Type: application/json;charset=utf-8",
        "请求头 Content-Type 为 application/json;charset=utf-8",
        "docs/protocol.md §1",
        "Send a request over HTTP (the in-process harness sends no headers).",
        check_content_type,
    ),
    Check(
        "endpoints.coverage",
        "Every endpoint 02-18 is called with a valid payload",
        "02-18 每个接口都用合法参数调用过",
        "docs/protocol.md §4",
        "02-07 need no order; 08-13 need an order (05, 06); 14-18 need a disbursed one: "
        "a mobile ending in {approve}, bind (08), confirm (11), advance the clock past the "
        "payout, then call 14-18.",
        check_coverage,
    ),
    Check(
        "payloads.valid",
        "No field errors (10006, 10007, 10008, 10010)",
        "没有字段错误（10006、10007、10008、10010）",
        "docs/protocol.md §3, docs/errors.md",
        "Call the endpoints from your integration: every field error it receives counts "
        "against this check.",
        check_fields,
    ),
    Check(
        "order.push_sequence",
        "06 is pushed only after 05 created the order",
        "06 补充信息只在 05 建单成功之后推送",
        "docs/protocol.md §4 (05, 06)",
        "Push an order: 05, then 06.",
        check_push_sequence,
    ),
    Check(
        "order.bind_before_confirm",
        "A bank account is bound (08) before the confirm (11)",
        "确认借款（11）之前已绑卡（08）",
        "docs/protocol.md §4 (08, 11)",
        "Confirm an approved order (a mobile ending in {approve}) after binding a card.",
        check_bind_first,
    ),
    Check(
        "order.repay_after_payout",
        "14-18 are called only after the payout",
        "14-18 只在放款成功之后调用",
        "docs/protocol.md §4 (14-18)",
        "Call 14 and 15 on a disbursed order (status 170).",
        check_repay_after_payout,
    ),
    Check(
        "order.review_poll_rate",
        "12/13 are polled at a sane rate while an order is in review",
        "审核中轮询 12/13 的频率合理",
        "docs/protocol.md §4 (12, 13), §5",
        "Poll 13 while an order is in review (90); a mobile ending in {review_stuck} keeps "
        "it there.",
        check_poll_rate,
    ),
    Check(
        "refusals.respected",
        "After 11007 or 11004 the same person is not pushed again at once",
        "收到 11007 或 11004 后不立即再次推送同一用户",
        "docs/protocol.md §4 (02)",
        "Precheck (02) a mobile ending in {reject_precheck}: the answer is 11007.",
        check_refusals,
    ),
    Check(
        "idempotency.confirm_unknown",
        "After an unknown outcome of 11 the team retries or queries the same order",
        "11 结果未知时，用相同金额期限重试或查询原订单，而不是新建订单",
        "docs/protocol.md §4 (11), §9",
        'PUT /sandbox/faults {"partner_token": "{token}", "path": "/push-order-confirm", '
        '"kind": "confirm_unknown", "count": 1}, then confirm an approved order.',
        check_confirm_unknown,
    ),
    Check(
        "idempotency.replays",
        "Replays of 05, 06 and 11 are identical to the first request",
        "05、06、11 的重试与原请求完全一致",
        "docs/protocol.md §4 (05, 06, 11), §9",
        'PUT /sandbox/faults {"partner_token": "{token}", "path": "/push-basic-info", '
        '"kind": "http_error", "after_handler": true, "count": 1}: the order is created, '
        "the answer is a 503, and your client retries.",
        check_replays,
    ),
    Check(
        "callbacks.acknowledged",
        "Callbacks 19, 20 and 21 are acknowledged with code 0 within the timeout",
        "回调 19、20、21 都在超时内以 code 0 应答",
        "docs/protocol.md §6",
        "Set your callback_url (PATCH /sandbox/partners/{token}); an approval sends 19 and "
        "20, a payout 21.",
        check_callbacks_acknowledged,
    ),
    Check(
        "callbacks.duplicates",
        "Duplicate callbacks are acknowledged without error",
        "重复的回调也正常应答",
        "docs/protocol.md §6",
        'PATCH /sandbox/partners/{token} {"chaos": {"duplicate": 1}}: every callback is '
        "sent twice.",
        check_duplicates,
    ),
    Check(
        "callbacks.out_of_order",
        "Out-of-order callbacks do not set an order back",
        "乱序回调不会让订单状态倒退",
        "docs/protocol.md §6",
        'PATCH /sandbox/partners/{token} {"chaos": {"reorder": 1}}, pause callbacks '
        "(POST /sandbox/partners/{token}/callbacks/pause) while an order changes status twice, "
        "then resume them.",
        check_out_of_order,
    ),
    Check(
        "scenario.approval",
        "Walked: approved in full, confirmed and paid out",
        "场景：全额批准、确认并放款",
        "docs/protocol.md §8",
        "A mobile ending in {approve}: push, review, bind, confirm, payout.",
        check_approval,
    ),
    Check(
        "scenario.reduced_approval",
        "Walked: reduced approval, confirmed for at most the approved amount",
        "场景：减额批准，按批准金额以内确认",
        "docs/protocol.md §4 (11), §8",
        "A mobile ending in {approve_reduced}: approved for 50 %; confirm the approved amount.",
        check_reduced,
    ),
    Check(
        "scenario.rejection",
        "Walked: rejection, and the rejected order is left alone",
        "场景：审批拒绝，之后不再操作该订单",
        "docs/protocol.md §5, §8",
        "A mobile ending in {reject_review}: rejected at review (110).",
        check_rejection,
    ),
    Check(
        "scenario.payout_failure",
        "Walked: payout failure, then re-bind (08) and confirm (11)",
        "场景：放款失败，重新绑卡（08）并再次确认（11）",
        "docs/protocol.md §5, §8",
        "A mobile ending in {payout_fail_once}: the first payout fails (169); bind another "
        "account, confirm again.",
        check_payout_failure,
    ),
    Check(
        "scenario.overdue",
        "Walked: an overdue loan (180)",
        "场景：逾期（180）",
        "docs/protocol.md §5, §7",
        "A mobile ending in {overdue}: after the payout advance the clock past the due day "
        "(15d for a 14-day loan).",
        check_overdue,
    ),
    Check(
        "scenario.full_repayment",
        "Walked: full repayment (200), and nothing asked of it after",
        "场景：全额还款结清（200），之后不再对该订单发起还款",
        "docs/protocol.md §4 (15), §5",
        "Issue a code with 15 (repay_type 1) and pay it: POST /sandbox/payments "
        '{"repay_code": "..."}.',
        check_full_repayment,
    ),
    Check(
        "scenario.extension",
        "Walked: an extension, asked only where one is offered",
        "场景：展期，只在可以展期时申请",
        "docs/protocol.md §4 (15, 17), §7",
        "On a disbursed order (product 1001), 17 then 15 with repay_type 2, and pay the code "
        "(POST /sandbox/payments).",
        check_extension,
    ),
    Check(
        "scenario.cancellation",
        "Walked: cancellation (161), and the cancelled order is left alone",
        "场景：订单取消（161），之后不再操作该订单",
        "docs/protocol.md §5",
        "Leave an approved order unconfirmed for 3 days (advance the clock 3d), or "
        "POST /sandbox/orders/{order_no}/transition with trigger cancel.",
        check_cancellation,
    ),
)
BY_ID = {c.id: c for c in CATALOG}
STATUSES = ("pass", "fail", "untested")


@dataclass(frozen=True)
class Section:
    """A group of checks as a checklist shows them: those whose id starts with a prefix."""

    id: str
    title: str
    title_zh: str
    prefixes: tuple[str, ...]

    def has(self, check_id: str) -> bool:
        return check_id.split(".", 1)[0] in self.prefixes


SECTIONS: tuple[Section, ...] = (
    Section("envelope", "Envelope", "加密信封", ("envelope",)),
    Section("endpoints", "Endpoints and fields", "接口与字段", ("endpoints", "payloads")),
    Section("order", "Order of calls", "调用顺序", ("order",)),
    Section("refusals", "Refusals and idempotency", "拒绝与幂等", ("refusals", "idempotency")),
    Section("callbacks", "Callbacks", "回调", ("callbacks",)),
    Section("scenarios", "Scenarios", "场景", ("scenario",)),
)


PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def how_to_test(check: Check, token: str = "{token}", limits: Limits | None = None) -> str:
    """The check's how-to with the partner's token and the scenario suffixes filled in (other
    braces, JSON's or {order_no}, stay as they are)."""
    known = {**(limits or Limits()).suffixes, "token": token}
    return PLACEHOLDER.sub(lambda m: known.get(m.group(1), m.group(0)), check.how_to_test)


# ---- the report ----


def evaluate(run: Run, limits: Limits | None = None) -> dict[str, Any]:
    """The acceptance report of `run`: a summary and one object per check of CATALOG."""
    limits = limits or Limits()
    facts = Facts(run, limits)
    checks = [_entry(check, check.evaluate(facts), run.partner_token, limits) for check in CATALOG]
    counts = {s: sum(1 for c in checks if c["status"] == s) for s in STATUSES}
    overall = "fail" if counts["fail"] else "incomplete" if counts["untested"] else "pass"
    return {
        "partner_token": run.partner_token,
        "run": {
            "started_at": run.started_at,
            "requests": len(run.calls),
            "callbacks": len(run.deliveries),
            "orders": len(run.orders),
            "truncated": run.truncated,
            "pruned": run.pruned,
        },
        "summary": {"status": overall, "total": len(checks), **counts},
        "checks": checks,
    }


def _entry(check: Check, v: Verdict, token: str, limits: Limits) -> dict[str, Any]:
    evidence, more = capped(v.evidence)
    details = {**v.details, **({"more_evidence": more} if more else {})}
    return {
        "id": check.id,
        "title": check.title,
        "title_zh": check.title_zh,
        "spec": check.spec,
        "status": v.status,
        "summary": v.summary,
        "evidence": evidence,
        "how_to_test": how_to_test(check, token, limits),
        "details": details,
    }


def markdown_table(limits: Limits | None = None) -> str:
    """The catalogue as docs/conformance.md lists it (the default scenario suffixes)."""
    rows = ["| id | check | 检查项 | rule | how to test |", "|---|---|---|---|---|"]
    for c in CATALOG:
        rows.append(
            f"| `{c.id}` | {c.title} | {c.title_zh} | {c.spec} | {how_to_test(c, limits=limits)} |"
        )
    return "\n".join(rows)
