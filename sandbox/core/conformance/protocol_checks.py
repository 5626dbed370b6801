"""The checks of what the partner sends (docs/conformance.md): the envelope, the fields, the
order of calls, refusals and idempotent retries. Each takes the run's Facts, gives a Verdict."""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import pairwise
from typing import Any

from ..crypto import php_json_encode
from .facts import (
    Facts,
    Verdict,
    answered,
    call_evidence,
    effective_gap,
    failed,
    passed,
    plural,
    untested,
)
from .records import (
    DUPLICATE_ORDER,
    ENDPOINT_NUMBER,
    ENDPOINTS,
    ENVELOPE_ERRORS,
    FIELD_ERRORS,
    NO_CARD,
    ORDER_NOT_FOUND,
    PATH,
    PRE_PAYOUT,
    RECENTLY_REJECTED,
    UNSETTLED,
    UNUSABLE,
    WRONG_STATE,
    Call,
)

# ---- envelope (docs/protocol.md §1-2) ----


def check_decrypts(f: Facts) -> Verdict:
    bad = [c for c in f.calls if c.code in ENVELOPE_ERRORS]
    if bad:
        return failed(
            f"{plural(len(bad), 'request')} did not decrypt to a JSON object with the "
            f"partner's key and IV",
            [call_evidence(c, answered(c)) for c in bad],
        )
    readable = [c for c in f.calls if c.request is not None]
    if not readable:
        return untested("no request decrypted yet")
    return passed(f"all {plural(len(readable), 'request')} decrypted")


def php_variants(obj: Any) -> tuple[str, ...]:
    """What PHP json_encode writes for `obj`: default flags, JSON_UNESCAPED_UNICODE and/or
    JSON_UNESCAPED_SLASHES. A '/' is only ever inside a string, so swapping its escape is safe."""
    escaped, unescaped = php_json_encode(obj), php_json_encode(obj, escape=False)
    return (escaped, unescaped, unescaped.replace("/", "\\/"), escaped.replace("\\/", "/"))


def php_difference(text: str) -> str | None:
    """None when `text` is JSON exactly as PHP json_encode writes it, else where it differs."""
    try:
        variants = php_variants(json.loads(text))
    except (ValueError, TypeError, RecursionError) as e:
        return f"PHP json_encode cannot write this value ({e})"
    if text in variants:
        return None
    closest = max(variants, key=lambda v: _shared_prefix(text, v))
    i = _shared_prefix(text, closest)
    return (
        f"differs from PHP json_encode at character {i}: sent {text[max(0, i - 12) : i + 12]!r}, "
        f"PHP writes {closest[max(0, i - 12) : i + 12]!r}"
    )


def _shared_prefix(a: str, b: str) -> int:
    """How many leading characters `a` and `b` have in common."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def check_php_json(f: Facts) -> Verdict:
    read, bad = 0, []
    for c in f.calls:
        text = f.plaintext(c) if c.request is not None else None
        if text is None:
            continue
        read += 1
        diff = php_difference(text)
        if diff:
            bad.append(call_evidence(c, f"{c.label()}: {diff}"))
    if bad:
        return failed(
            f"{plural(len(bad), 'payload')} of {read} not written as PHP json_encode "
            f"writes it (compact, no spaces)",
            bad,
        )
    if not read:
        return untested("no decrypted request to read")
    return passed(f"all {plural(read, 'payload')} are PHP json_encode output")


def json_content_type(value: str) -> bool:
    media, *params = [p.strip().lower() for p in value.split(";")]
    charsets = [p.split("=", 1)[1].strip('" ') for p in params if p.startswith("charset=")]
    return media == "application/json" and all(c in ("utf-8", "utf8") for c in charsets)


def check_content_type(f: Facts) -> Verdict:
    http = [c for c in f.calls if c.content_type is not None]
    if not http:
        return untested("no request came over HTTP (the in-process harness sends no headers)")
    bad = [c for c in http if not json_content_type(c.content_type or "")]
    if bad:
        return failed(
            f"{plural(len(bad), 'request')} of {len(http)} sent another Content-Type",
            [
                call_evidence(
                    c,
                    f"{c.label()}: Content-Type {c.content_type!r}"
                    if c.content_type
                    else f"{c.label()}: no Content-Type header",
                )
                for c in bad
            ],
        )
    return passed(f"all {plural(len(http), 'request')} over HTTP said application/json")


# ---- endpoints and fields (docs/protocol.md §3-4) ----


def usable(c: Call) -> bool:
    """The lender read the payload: not an envelope or field error, nor a fault's answer."""
    return c.code is not None and c.code not in UNUSABLE and "business_error" not in c.fault


def check_coverage(f: Facts) -> Verdict:
    counts = {n: sum(1 for c in f.on(n) if usable(c)) for n, _ in ENDPOINTS}
    missing = [f"{n} {PATH[n]}" for n, k in counts.items() if not k]
    if missing:
        return untested(
            f"not yet called with a valid payload: {', '.join(missing)}", valid_calls=counts
        )
    return passed(f"all {len(ENDPOINTS)} endpoints called with a valid payload", valid_calls=counts)


def field_of(c: Call) -> str:
    """The field an error names: the first word of its English detail."""
    detail = c.message.split(": ", 1)[1] if ": " in c.message else c.message
    return detail.split(" ", 1)[0].strip("'\"") or "?"


def check_fields(f: Facts) -> Verdict:
    errors = [c for c in f.calls if c.code in FIELD_ERRORS]
    if errors:
        groups: dict[tuple[str, str, int], list[Call]] = defaultdict(list)
        for c in errors:
            groups[(c.path, field_of(c), c.code or 0)].append(c)
        fields: list[dict[str, Any]] = [
            {
                "path": p,
                "field": name,
                "code": code,
                "count": len(cs),
                "journal_ids": [c.id for c in cs],
            }
            for (p, name, code), cs in sorted(groups.items(), key=lambda g: -len(g[1]))
        ]
        worst = ", ".join(
            f"{g['field']} ×{g['count']} on {ENDPOINT_NUMBER.get(g['path'], '?')}"
            for g in fields[:5]
        )
        return failed(
            f"{plural(len(errors), 'field error')}: {worst}",
            [call_evidence(c, answered(c)) for c in errors],
            fields=fields,
        )
    if not any(usable(c) for c in f.calls):
        return untested("no request was validated yet")
    return passed("no field error in any request")


# ---- order of calls (docs/protocol.md §4-5) ----


def check_push_sequence(f: Facts) -> Verdict:
    early = f.answered(ORDER_NOT_FOUND, "06")
    if early:
        return failed(
            f"06 pushed for {plural(len(early), 'order')} 05 had not created",
            [
                call_evidence(c, f"06 for {c.order_no} answered 11001: no such order yet")
                for c in early
            ],
        )
    if not any(c.code == 0 for c in f.on("06")):
        return untested("06 not pushed yet")
    return passed("every 06 followed its 05")


def check_bind_first(f: Facts) -> Verdict:
    unbound = [c for c in f.answered(NO_CARD, "11") if f.status_when(c) != 169]
    if unbound:
        return failed(
            f"11 confirmed {plural(len(unbound), 'order')} before a card was bound",
            [
                call_evidence(
                    c, f"11 for {c.order_no} answered 11006: no bank account bound (08 first)"
                )
                for c in unbound
            ],
        )
    if not any(c.code == 0 for c in f.on("11")):
        return untested("no order confirmed (11) yet")
    return passed("every confirm had a bound card")


def check_repay_after_payout(f: Facts) -> Verdict:
    early = [
        c
        for c in f.answered(WRONG_STATE, "14", "15", "16", "17", "18")
        if f.status_when(c) in PRE_PAYOUT and c.id not in f.regressions
    ]
    if early:
        return failed(
            f"{plural(len(early), 'call')} of 14-18 before the payout",
            [
                call_evidence(
                    c,
                    f"{c.label()} for {c.order_no} in status "
                    f"{f.status_when(c)}: needs a disbursed order",
                )
                for c in early
            ],
        )
    if not any(c.code == 0 for c in f.on("14", "15")):
        return untested("14/15 not called on a disbursed order yet")
    return passed("14-18 only called after the payout")


def _poll_times(polls: list[Call]) -> list[float]:
    """Each poll's time since the first (effective_gap summed poll to poll)."""
    out = [0.0] if polls else []
    for prev, c in pairwise(polls):
        out.append(out[-1] + effective_gap(prev, c))
    return out


def densest_minute(polls: list[Call]) -> list[Call]:
    """The most polls within any 60 seconds (of wall time, or clock time where it moved more)."""
    times, best, start = _poll_times(polls), (0, 0), 0
    for end in range(len(polls)):
        while times[end] - times[start] >= 60:
            start += 1
        if end - start + 1 > best[1] - best[0]:
            best = (start, end + 1)
    return polls[best[0] : best[1]]


def check_poll_rate(f: Facts) -> Verdict:
    limit = f.limits.review_polls_per_minute
    polls: dict[str, list[Call]] = defaultdict(list)
    for c in f.on("12", "13"):
        if c.code == 0 and c.data.get("order_status") == 90:
            polls[c.order_no].append(c)
    if not polls:
        return untested("12/13 not polled for an order in review yet")
    bursts = {o: densest_minute(cs) for o, cs in polls.items()}
    bad = {o: cs for o, cs in bursts.items() if len(cs) > limit}
    if bad:
        evidence = [
            call_evidence(c, f"poll {i + 1} of {len(cs)} within a minute for {o}")
            for o, cs in bad.items()
            for i, c in enumerate(cs)
        ]
        return failed(
            f"polled more than {limit} times a minute during review: "
            + ", ".join(f"{o} {len(cs)}×" for o, cs in bad.items()),
            evidence,
            limit_per_minute=limit,
        )
    busiest = max(len(cs) for cs in bursts.values())
    return passed(
        f"at most {plural(busiest, 'poll')} a minute per order in review (limit {limit})",
        limit_per_minute=limit,
    )


# ---- refusals (docs/protocol.md §4 02) ----


def same_person(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Two (NIK, mobile) pairs name one person: the same NIK or the same mobile (protocol.md §9)."""
    return bool(a[0] and a[0] == b[0]) or bool(a[1] and a[1] == b[1])


def check_refusals(f: Facts) -> Verdict:
    refused = [c for c in f.on("02", "03", "04", "05") if c.code in (RECENTLY_REJECTED, UNSETTLED)]
    if not refused:
        return untested("no 11007 or 11004 refusal yet")
    window, evidence = f.limits.refusal_retry_after, []
    for push in f.on("05"):
        first = next(
            (
                r
                for r in refused
                if r.id < push.id
                and r.code == push.code
                and same_person(r.person, push.person)
                and effective_gap(r, push) < window
            ),
            None,
        )
        if first is not None:
            evidence += [
                call_evidence(first, answered(first)),
                call_evidence(
                    push,
                    f"05 pushed the same person "
                    f"{effective_gap(first, push):.0f}s later: "
                    f"refused again with {push.code}",
                ),
            ]
    if evidence:
        return failed(
            f"the same person pushed again after a refusal, within {window / 3600:g}h", evidence
        )
    return passed(f"{plural(len(refused), 'refusal')} respected")


# ---- idempotency (docs/protocol.md §4 05, 11; §9) ----

FIGURES = ("application_amount", "application_term", "term_unit")
# A different 06 or 11 for an order whose earlier one was accepted is refused (11002) in these
# statuses: the second push or confirm of the same order (docs/protocol.md §4 06, 11).
REPLAY_REFUSED_IN = {"06": (90, 100), "11": (100,)}


def _figures(c: Call) -> tuple[str, ...]:
    return tuple(str((c.request or {}).get(k)) for k in FIGURES)


def _follow_up(f: Facts, unknown: Call) -> tuple[Call | None, str]:
    """The partner's next move on an order after an unknown 11 outcome, and a verdict."""
    order = f.orders.get(unknown.order_no)
    person = (order.user_idcard, order.user_mobile) if order else ("", "")
    for c in f.calls:
        if c.id <= unknown.id:
            continue
        if (
            c.path == PATH["05"]
            and c.order_no != unknown.order_no
            and same_person(person, c.person)
        ):
            return c, f"a new order {c.order_no} for the same person instead of a retry"
        if c.order_no != unknown.order_no:
            continue
        if c.path == PATH["11"]:
            same = _figures(c) == _figures(unknown)
            return c, "" if same else (
                f"11 retried with other figures {_figures(c)} instead of {_figures(unknown)}"
            )
        if c.path in (PATH["12"], PATH["13"]):
            return c, ""
    return None, "no retry (11) or query (12/13) of the order followed"


def check_confirm_unknown(f: Facts) -> Verdict:
    unknowns = [c for c in f.on("11") if "confirm_unknown" in c.fault]
    if not unknowns:
        return untested("no unknown outcome of 11 yet (fault confirm_unknown)")
    evidence = []
    for u in unknowns:
        nxt, problem = _follow_up(f, u)
        if problem:
            evidence.append(
                call_evidence(
                    u, f"11 for {u.order_no}: unknown outcome ({u.fault}, HTTP {u.http_status})"
                )
            )
            if nxt is not None:
                evidence.append(call_evidence(nxt, problem))
            else:
                evidence.append(f.link(u.order_no, problem))
    if evidence:
        return failed("an unknown outcome of 11 was not followed by a retry or a query", evidence)
    return passed(
        f"{plural(len(unknowns), 'unknown outcome')} of 11 followed by a retry with "
        f"the same figures or a query"
    )


def _replays(f: Facts) -> tuple[list[Call], list[tuple[Call, Call]]]:
    """(identical replays, (accepted, different replay refused)) of 05, 06 and 11."""
    same, different = [], []
    for number in ("05", "06", "11"):
        accepted: dict[str, Call] = {}
        last: dict[str, Call] = {}
        for c in f.on(number):
            first = accepted.get(c.order_no)
            after_unknown = "confirm_unknown" in getattr(last.get(c.order_no), "fault", "")
            last[c.order_no] = c
            if first is None or after_unknown:  # retries after an unknown 11: the check above
                if c.code == 0:
                    accepted.setdefault(c.order_no, c)
                continue
            if c.request == first.request:
                same.append(c)
            elif c.code == DUPLICATE_ORDER or (
                c.code == WRONG_STATE and f.status_when(c) in REPLAY_REFUSED_IN.get(number, ())
            ):
                different.append((first, c))
    return same, different


def check_replays(f: Facts) -> Verdict:
    same, different = _replays(f)
    if different:
        evidence = []
        for first, c in different:
            evidence += [
                call_evidence(first, f"{first.label()} for {first.order_no} accepted"),
                call_evidence(c, f"replayed with other data: answered {c.code}: {c.message}"),
            ]
        return failed(
            f"{plural(len(different), 'replay')} differed from the accepted request", evidence
        )
    if not same:
        return untested("no replay of 05, 06 or 11 yet")
    return passed(f"{plural(len(same), 'replay')} identical to the accepted request")
