"""Turns a completed sheet's answers into findings against the forced-labour indicators and an overall level."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bot.flowbook import SEVERITY_ORDER, FlowBook

LEVELS = ("critical", "high", "medium", "low", "none")


class Finding(BaseModel):
    id: str  # the checklist item ("3.4") or the question ("Q2", "Q5")
    indicator: str
    severity: str


class Score(BaseModel):
    level: str
    findings: list[Finding]
    handoff_requested: bool

    @property
    def indicator_ids(self) -> list[str]:
        return [f.id for f in self.findings]


def score(book: FlowBook, answers: dict[str, Any]) -> Score:
    findings: list[Finding] = []
    for q in book.questions:
        answer = answers.get(q.id)
        if answer is None or answer == "skipped":
            continue
        if q.type == "checklist" and isinstance(answer, list):
            for item in q.items:
                if item.id in answer:
                    findings.append(Finding(id=item.id, indicator=item.indicator, severity=item.severity))
        elif q.type == "amount" and isinstance(answer, dict):
            jpy = int(answer.get("jpy") or 0)
            if jpy > 0 and q.indicator and q.severity:
                severity = q.severity
                if q.high_above_jpy is not None and jpy > q.high_above_jpy and q.high_severity:
                    severity = q.high_severity
                findings.append(Finding(id=q.id, indicator=q.indicator, severity=severity))
        elif q.type in ("yes_no", "yes_no_unknown") and q.risk_answer and answer == q.risk_answer:
            assert q.indicator and q.severity  # guaranteed by the loader
            findings.append(Finding(id=q.id, indicator=q.indicator, severity=q.severity))
    findings.sort(key=lambda f: -SEVERITY_ORDER[f.severity])
    level = findings[0].severity if findings else "none"
    handoff_q = book.question("Q13")
    return Score(level=level, findings=findings,
                 handoff_requested=answers.get("Q13") == handoff_q.handoff_answer)
