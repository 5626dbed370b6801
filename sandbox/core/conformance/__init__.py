"""The acceptance report (联调验收, docs/conformance.md): the catalogue of checks and how each is
judged from what one partner really did in an acceptance run.

Pure: plain records in (`Run`: its requests as the journal kept them, the callbacks it was
sent with every attempt, its orders' timelines), a JSON-able report out; no I/O, no clock.
`sandbox.services.conformance` reads one run from the store; the control route, the CLI
and the harness call it. `CATALOG` is the one table of checks: the report and
docs/conformance.md both come from it (a test keeps the document equal to it).
"""

from .catalog import (
    BY_ID,
    CATALOG,
    SECTIONS,
    STATUSES,
    Check,
    Section,
    evaluate,
    how_to_test,
    markdown_table,
)
from .facts import Facts, Verdict, effective_gap
from .protocol_checks import densest_minute, json_content_type, php_difference, php_variants
from .records import (
    DEFAULT_SUFFIXES,
    ENDPOINTS,
    MAX_EVIDENCE,
    Attempt,
    Call,
    Delivery,
    Limits,
    OrderRecord,
    Run,
    Step,
)
from .report import Report, format_text, sections

__all__ = [
    "BY_ID",
    "CATALOG",
    "DEFAULT_SUFFIXES",
    "ENDPOINTS",
    "MAX_EVIDENCE",
    "SECTIONS",
    "STATUSES",
    "Attempt",
    "Call",
    "Check",
    "Delivery",
    "Facts",
    "Limits",
    "OrderRecord",
    "Report",
    "Run",
    "Section",
    "Step",
    "Verdict",
    "densest_minute",
    "effective_gap",
    "evaluate",
    "format_text",
    "how_to_test",
    "json_content_type",
    "markdown_table",
    "php_difference",
    "php_variants",
    "sections",
]
