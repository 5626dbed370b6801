"""What `check-lender` found: each step's finding (ok, deviation, note) and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OK, DEVIATION, NOTE = "ok", "deviation", "note"


@dataclass(frozen=True)
class Finding:
    step: str  # "04 /get-loan-interest", "errors: unknown order", ...
    level: str  # ok | deviation | note
    message: str
    rule: str = ""  # where the rule is written


@dataclass
class LenderCheck:
    """What `check_lender` found: every step, and the deviations among them."""

    base_url: str
    partner_token: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def deviations(self) -> list[Finding]:
        return [f for f in self.findings if f.level == DEVIATION]

    def as_json(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "partner_token": self.partner_token,
            "deviations": len(self.deviations),
            "findings": [asdict(f) for f in self.findings],
        }

    def text(self) -> str:
        lines = [
            f"Checking {self.base_url or 'an in-process lender'} as partner {self.partner_token}"
        ]
        for f in self.findings:
            rule = f"  [{f.rule}]" if f.level == DEVIATION and f.rule else ""
            lines.append(f"  {f.level.upper():<10} {f.step:<34} {f.message}{rule}")
        n = len(self.deviations)
        lines.append(
            "No deviation from the specification."
            if not n
            else f"{n} deviation{'s' if n > 1 else ''} from the specification."
        )
        return "\n".join(lines)
