"""Employer reports and the office's statistics, built from plain rows: no database, no clock, no web here
(bot/store/reports.py reads the rows, admin_api/routes/reports.py serves the result).

An employer report must never let its reader learn what one worker answered. The rules, with K the setting
`report_min_respondents` (default 10):

1. People, not sheets: a worker who answered several times counts once, by their latest sheet (once per
   quarter in the trend, once in the whole period).
2. A report resting on fewer than K respondents says only "too few responses": no counts, levels or quarters.
3. A published count c out of n must satisfy K <= c <= n - K. Small counts (including 0: "nobody at this
   employer reported X" is identifying too once combined with other knowledge) and counts near the total
   (whose complement is small) are suppressed. The page shows one marker for both, so that it does not say
   on which side a cell fell.
4. Complementary suppression: the published figures obey equations (levels sum to the respondents, quarters
   sum to the whole period, a quarter's levels sum to its respondents, a level over the quarters sums to the
   level over the period). After the primary suppression an auditor solves those equations the way a reader
   would, bounding every suppressed cell from what is published (interval propagation, with counts >= 0).
   While any suppressed cell can be pinned to a range narrower than K values, one more cell on one of its
   equations is suppressed (the smallest published one), and the audit runs again.
5. A quarter whose respondents are suppressed shows nothing else; a share is shown only with its count. A
   quarter in which nobody answered shows its zeros: it tells nothing about any worker.
6. Free text never appears: the reports read only levels and scored findings, never what a worker wrote.
   Items are counted against all respondents (a skipped question counts as "not the risk answer"), so an
   item has no second published figure ("answered") to subtract from.

Relations between tables that are inequalities, not sums (an indicator counts at least as many people as
each of its items), are not modelled by the auditor; they bound cells but never recover one.

Office statistics are internal (supervisors and administrators): exact counts, but never free text or
anything that names a worker.
"""
from __future__ import annotations

import csv
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.flowbook import FlowBook
from bot.scoring import LEVELS

LABELS_FILE = Path(__file__).resolve().parent / "flows" / "report_labels.yaml"
CSV_BOM = "\ufeff"  # Excel in Japan reads a CSV as Shift_JIS unless it starts with this
CellKey = tuple[Hashable, ...]
Label = dict[str, str]


@lru_cache
def report_labels() -> dict[str, Any]:
    return dict(yaml.safe_load(LABELS_FILE.read_text(encoding="utf-8")))


def _label(source: Mapping[str, str]) -> Label:
    return {"ja": str(source["ja"]), "en": str(source["en"])}


# ----- periods -----------------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int  # 1..4

    @property
    def label(self) -> str:
        return f"{self.year}-Q{self.number}"

    def start(self, tz: tzinfo) -> datetime:
        return datetime(self.year, 3 * self.number - 2, 1, tzinfo=tz)

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)

    @staticmethod
    def of(moment: datetime, tz: tzinfo) -> Quarter:
        local = moment.astimezone(tz)
        return Quarter(local.year, (local.month - 1) // 3 + 1)

    @staticmethod
    def parse(text: str) -> Quarter:
        year, _, number = text.upper().partition("-Q")
        quarter = Quarter(int(year), int(number))
        if not 1 <= quarter.number <= 4:
            raise ValueError(f"not a quarter: {text!r}")
        return quarter


def quarters_ending(last: Quarter, count: int) -> list[Quarter]:
    """The `count` quarters up to and including `last`, oldest first."""
    quarters = [last]
    while len(quarters) < count:
        q = quarters[0]
        quarters.insert(0, Quarter(q.year - 1, 4) if q.number == 1 else Quarter(q.year, q.number - 1))
    return quarters


@dataclass(frozen=True, order=True)
class Month:
    year: int
    number: int

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.number:02d}"

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.number == 12 else Month(self.year, self.number + 1)

    def start(self, tz: tzinfo) -> datetime:
        return datetime(self.year, self.number, 1, tzinfo=tz)

    @staticmethod
    def of(moment: datetime, tz: tzinfo) -> Month:
        local = moment.astimezone(tz)
        return Month(local.year, local.month)

    @staticmethod
    def parse(text: str) -> Month:
        year, _, number = text.partition("-")
        month = Month(int(year), int(number))
        if not 1 <= month.number <= 12:
            raise ValueError(f"not a month: {text!r}")
        return month


def months_between(first: Month, last: Month) -> list[Month]:
    months, current = [], first
    while current <= last:
        months.append(current)
        current = current.next()
    return months


# ----- the suppression auditor ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SumRule:
    """`total` equals the sum of `parts`, and a reader knows it."""

    total: CellKey
    parts: tuple[CellKey, ...]


def _bounds(values: Mapping[CellKey, int], hidden: set[CellKey], rules: Sequence[SumRule],
            ceiling: int) -> dict[CellKey, tuple[int, int]]:
    """What a reader can tell about each hidden cell from the published ones: the narrowest [low, high]
    that interval propagation through the sum rules gives (counts are whole and never negative)."""
    low = {c: 0 for c in hidden}
    high = {c: ceiling for c in hidden}
    equations: list[tuple[list[tuple[int, CellKey]], int]] = []
    for rule in rules:
        unknown: list[tuple[int, CellKey]] = []
        constant = 0
        for sign, cell in [(1, rule.total), *((-1, p) for p in rule.parts)]:
            if cell in hidden:
                unknown.append((sign, cell))
            else:
                constant -= sign * values[cell]
        if unknown:
            equations.append((unknown, constant))  # sum(sign * x) == constant
    for _ in range(100):
        changed = False
        for unknown, constant in equations:
            for i, (sign, cell) in enumerate(unknown):
                rest = [(s, c) for j, (s, c) in enumerate(unknown) if j != i]
                rest_min = sum(s * (low[c] if s > 0 else high[c]) for s, c in rest)
                rest_max = sum(s * (high[c] if s > 0 else low[c]) for s, c in rest)
                lo, hi = constant - rest_max, constant - rest_min  # range of sign * x
                if sign < 0:
                    lo, hi = -hi, -lo
                if lo > low[cell]:
                    low[cell], changed = lo, True
                if hi < high[cell]:
                    high[cell], changed = hi, True
        if not changed:
            break
    return {c: (low[c], high[c]) for c in hidden}


def suppress(values: Mapping[CellKey, int], denominators: Mapping[CellKey, int | None], rules: Sequence[SumRule],
             k: int, *, ceiling: int, always_shown: Iterable[CellKey] = (),
             hidden_with: Mapping[CellKey, Sequence[CellKey]] | None = None) -> set[CellKey]:
    """The cells to suppress: primary (c < k, or c > denominator - k) and complementary, until no hidden cell
    can be bounded to fewer than k possible values. `hidden_with` lists cells that go when a cell goes (a
    quarter's levels with its respondents)."""
    shown_always = set(always_shown)
    hidden_with = hidden_with or {}
    hidden = {c for c, v in values.items() if c not in shown_always and (
        v < k or (denominators.get(c) is not None and v > denominators[c] - k))}  # type: ignore[operator]
    order = {c: i for i, c in enumerate(values)}
    while True:
        for cell in list(hidden):
            hidden.update(hidden_with.get(cell, ()))
        bounds = _bounds(values, hidden, rules, ceiling)
        exposed = [c for c in sorted(hidden, key=order.__getitem__) if bounds[c][1] - bounds[c][0] < k]
        if not exposed:
            return hidden
        cell = exposed[0]
        candidates = {c for rule in rules if cell == rule.total or cell in rule.parts
                      for c in (rule.total, *rule.parts) if c not in hidden and c not in shown_always}
        if not candidates:  # nothing left to hide around it: hide everything that can be hidden
            return {c for c in values if c not in shown_always}
        hidden.add(min(candidates, key=lambda c: (values[c], order[c])))


# ----- the employer report ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompletedSheet:
    """One completed self-diagnosis, as the report needs it. `person` only tells sheets of the same worker
    apart; it is never published."""

    person: int
    completed_at: datetime
    level: str
    finding_ids: tuple[str, ...]  # the checklist items ("3.4") and questions ("Q2") the scorer flagged
    indicators: tuple[str, ...]


@dataclass(frozen=True)
class Cell:
    count: int | None  # None when suppressed
    share: float | None

    @property
    def suppressed(self) -> bool:
        return self.count is None

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "share": self.share, "suppressed": self.suppressed}


@dataclass(frozen=True)
class Row:
    id: str
    label: Label
    cell: Cell
    parent: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "parent": self.parent, "label": self.label, **self.cell.as_json()}


@dataclass(frozen=True)
class QuarterRow:
    quarter: str
    respondents: Cell
    levels: list[Row]

    def as_json(self) -> dict[str, Any]:
        return {"quarter": self.quarter, "respondents": self.respondents.as_json(),
                "levels": [r.as_json() for r in self.levels]}


@dataclass(frozen=True)
class EmployerReport:
    employer_code: str
    min_respondents: int
    too_few_responses: bool
    period: tuple[str, str]
    respondents: int | None = None
    completed_sheets: int | None = None
    items: list[Row] = field(default_factory=list)
    indicators: list[Row] = field(default_factory=list)
    levels: list[Row] = field(default_factory=list)
    quarters: list[QuarterRow] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        head = {"employer_code": self.employer_code, "min_respondents": self.min_respondents,
                "too_few_responses": self.too_few_responses}
        if self.too_few_responses:
            return head  # nothing else: not even which quarters had answers
        return {**head, "period": {"from": self.period[0], "to": self.period[1]},
                "respondents": self.respondents, "completed_sheets": self.completed_sheets,
                "items": [r.as_json() for r in self.items],
                "indicators": [r.as_json() for r in self.indicators],
                "levels": [r.as_json() for r in self.levels],
                "quarters": [q.as_json() for q in self.quarters]}


@dataclass(frozen=True)
class _ItemDefinition:
    id: str
    parent: str | None
    label: Label


def _item_definitions(book: FlowBook) -> list[_ItemDefinition]:
    """One row per question that has a risk answer, each checklist's items under it."""
    names = report_labels()["questions"]
    rows: list[_ItemDefinition] = []
    for q in book.questions:
        if q.id not in names:
            continue  # free text and the wish to talk to the desk are not employer figures
        rows.append(_ItemDefinition(q.id, None, _label(names[q.id])))
        for item in q.items:
            rows.append(_ItemDefinition(item.id, q.id, _label(item.text)))
    return rows


def _latest_per_person(sheets: Iterable[CompletedSheet]) -> list[CompletedSheet]:
    latest: dict[int, CompletedSheet] = {}
    for sheet in sheets:
        if sheet.person not in latest or sheet.completed_at > latest[sheet.person].completed_at:
            latest[sheet.person] = sheet
    return list(latest.values())


def build_employer_report(employer_code: str, sheets: Sequence[CompletedSheet], book: FlowBook, *, k: int,
                          quarters: Sequence[Quarter], tz: tzinfo) -> EmployerReport:
    start, end = quarters[0].start(tz), quarters[-1].next().start(tz)
    in_period = [s for s in sheets if start <= s.completed_at < end]
    people = _latest_per_person(in_period)
    period = (quarters[0].label, quarters[-1].label)
    if len(people) < k:
        return EmployerReport(employer_code, k, True, period)
    n = len(people)
    by_quarter = {q: _latest_per_person(s for s in in_period if Quarter.of(s.completed_at, tz) == q)
                  for q in quarters}

    question_of = {item.id: q.id for q in book.questions for item in q.items}
    definitions = _item_definitions(book)
    item_counts: Counter[str] = Counter()
    indicator_counts: Counter[str] = Counter()
    for person in people:
        flagged = set(person.finding_ids)
        flagged |= {question_of[f] for f in person.finding_ids if f in question_of}
        item_counts.update(flagged)
        indicator_counts.update(set(person.indicators))

    values: dict[CellKey, int] = {("respondents",): n}
    denominators: dict[CellKey, int | None] = {("respondents",): None}
    for d in definitions:
        values[("item", d.id)], denominators[("item", d.id)] = item_counts[d.id], n
    for indicator in book.indicators:
        values[("indicator", indicator)], denominators[("indicator", indicator)] = indicator_counts[indicator], n
    level_counts = Counter(p.level for p in people)
    for level in LEVELS:
        values[("level", level)], denominators[("level", level)] = level_counts[level], n
    hidden_with: dict[CellKey, list[CellKey]] = {}
    for q in quarters:
        respondents = by_quarter[q]
        values[("respondents", q.label)], denominators[("respondents", q.label)] = len(respondents), None
        counts = Counter(p.level for p in respondents)
        for level in LEVELS:
            values[("level", level, q.label)] = counts[level]
            denominators[("level", level, q.label)] = len(respondents)
        hidden_with[("respondents", q.label)] = [("level", level, q.label) for level in LEVELS]

    rules = [SumRule(("respondents",), tuple(("respondents", q.label) for q in quarters)),
             SumRule(("respondents",), tuple(("level", level) for level in LEVELS)),
             *(SumRule(("respondents", q.label), tuple(("level", level, q.label) for level in LEVELS))
               for q in quarters),
             *(SumRule(("level", level), tuple(("level", level, q.label) for q in quarters)) for level in LEVELS)]
    # A quarter in which nobody answered says nothing about anyone: its zeros are shown (hiding them would
    # only push the auditor to hide the quarters that did answer).
    empty = [q.label for q in quarters if not by_quarter[q]]
    always_shown = [("respondents",), *(("respondents", q) for q in empty),
                    *(("level", level, q) for q in empty for level in LEVELS)]
    hidden = suppress(values, denominators, rules, k, ceiling=n, always_shown=always_shown,
                      hidden_with=hidden_with)

    def cell(key: CellKey, denominator_key: CellKey | None = None) -> Cell:
        if key in hidden:
            return Cell(None, None)
        base = values[denominator_key] if denominator_key else n
        return Cell(values[key], round(values[key] / base, 4) if base else None)

    level_names = report_labels()["levels"]
    return EmployerReport(
        employer_code=employer_code, min_respondents=k, too_few_responses=False, period=period,
        respondents=n, completed_sheets=len(in_period),
        items=[Row(d.id, d.label, cell(("item", d.id)), d.parent) for d in definitions],
        indicators=[Row(i, _label(name), cell(("indicator", i))) for i, name in book.indicators.items()],
        levels=[Row(level, _label(level_names[level]), cell(("level", level))) for level in LEVELS],
        quarters=[QuarterRow(q.label, cell(("respondents", q.label)),
                             [Row(level, _label(level_names[level]),
                                  cell(("level", level, q.label), ("respondents", q.label))) for level in LEVELS])
                  for q in quarters],
    )


# ----- CSV ---------------------------------------------------------------------------------------------
def _csv(header: list[str], rows: Iterable[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return CSV_BOM + buffer.getvalue()


EMPLOYER_CSV_HEADER = ["section", "id", "parent", "label_ja", "label_en", "quarter", "count", "share_percent",
                       "suppressed"]


def employer_report_csv(report: EmployerReport) -> str:
    """One header row, one row per figure; a suppressed figure has empty count and share."""
    def line(section: str, row: Row | None, quarter: str = "", cell: Cell | None = None,
             row_id: str = "", label: Label | None = None) -> list[Any]:
        cell = cell if cell is not None else (row.cell if row else Cell(None, None))
        label = label or (row.label if row else {"ja": "", "en": ""})
        return [section, row.id if row else row_id, (row.parent or "") if row else "", label["ja"], label["en"],
                quarter, "" if cell.count is None else cell.count,
                "" if cell.share is None else f"{cell.share * 100:.1f}", "yes" if cell.suppressed else "no"]

    if report.too_few_responses:
        return _csv(EMPLOYER_CSV_HEADER, [["report", "too_few_responses", "", "回答数が少ないため表示できません",
                                           f"Too few responses (fewer than {report.min_respondents})",
                                           "", "", "", "yes"]])
    rows = [line("report", None, f"{report.period[0]}..{report.period[1]}", Cell(report.respondents, None),
                 "respondents", {"ja": "回答者数", "en": "Respondents"}),
            line("report", None, f"{report.period[0]}..{report.period[1]}", Cell(report.completed_sheets, None),
                 "completed_sheets", {"ja": "回答済みシート数", "en": "Completed sheets"})]
    rows += [line("item", r) for r in report.items]
    rows += [line("indicator", r) for r in report.indicators]
    rows += [line("level", r) for r in report.levels]
    for q in report.quarters:
        rows.append(line("quarter", None, q.quarter, q.respondents, "respondents",
                         {"ja": "回答者数", "en": "Respondents"}))
        rows += [line("quarter_level", r, q.quarter) for r in q.levels]
    return _csv(EMPLOYER_CSV_HEADER, rows)


# ----- office statistics ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseFacts:
    """A handoff as the statistics need it; `person` only tells workers apart and is never published."""

    person: int
    created_at: datetime
    status: str
    priority: str
    language: str
    channel: str
    category: str | None
    subcategory: str | None
    residence_status: str | None
    prefecture: str | None
    first_reply_at: datetime | None


def _tally(cases: Sequence[CaseFacts], key: str, labels: Mapping[str, Label], *,
           keep_zero: bool = False) -> list[dict[str, Any]]:
    counts = Counter(getattr(c, key) for c in cases)
    persons: dict[Any, set[int]] = defaultdict(set)
    labour: Counter[Any] = Counter()
    for c in cases:
        persons[getattr(c, key)].add(c.person)
        if c.category == "labour":
            labour[getattr(c, key)] += 1
    unknown = _label(report_labels()["unknown"])
    ids = list(labels) if keep_zero else []
    ids += sorted((i for i in counts if i not in ids), key=lambda i: (i is None, -counts[i], str(i)))
    total = len(cases)
    return [{"id": i, "label": labels.get(i, unknown) if i is not None else unknown, "count": counts[i],
             "persons": len(persons[i]), "labour": labour[i],
             "share": round(counts[i] / total, 4) if total else None} for i in ids]


def build_office_stats(cases: Sequence[CaseFacts], open_cases: Sequence[CaseFacts], book: FlowBook,
                       categories: Sequence[Mapping[str, Any]], *, months: Sequence[Month],
                       tz: tzinfo, now: datetime) -> dict[str, Any]:
    labels = report_labels()
    start, end = months[0].start(tz), months[-1].next().start(tz)
    cases = [c for c in cases if start <= c.created_at < end]
    total = len(cases)

    by_category = []
    for category in [*categories, {"id": None, **labels["uncategorised"], "subcategories": []}]:
        mine = [c for c in cases if c.category == category["id"]]
        subs = Counter(c.subcategory for c in mine)
        by_category.append({
            "id": category["id"], "label": _label(category), "count": len(mine),
            "share": round(len(mine) / total, 4) if total else None,
            "subcategories": [{"id": s["id"], "label": _label(s), "count": subs[s["id"]],
                               "share": round(subs[s["id"]] / len(mine), 4) if mine else None}
                              for s in category["subcategories"]]})

    per_month = []
    for month in months:
        mine = [c for c in cases if Month.of(c.created_at, tz) == month]
        per_month.append({"month": month.label, "handoffs": len(mine), "persons": len({c.person for c in mine}),
                          "categories": {str(k): v for k, v in Counter(c.category or "uncategorised"
                                                                         for c in mine).items()}})

    waits = sorted((c.first_reply_at - c.created_at).total_seconds() / 60 for c in cases if c.first_reply_at)
    first_reply = {"replied": len(waits), "not_replied": total - len(waits),
                   "median_minutes": round(statistics.median(waits), 1) if waits else None,
                   "mean_minutes": round(statistics.fmean(waits), 1) if waits else None,
                   "p90_minutes": round(waits[min(len(waits) - 1, int(0.9 * len(waits)))], 1) if waits else None}

    waiting = [c for c in open_cases if c.status == "waiting"]
    oldest = min((c.created_at for c in waiting), default=None)
    open_summary = {"waiting": len(waiting), "assigned": sum(1 for c in open_cases if c.status == "assigned"),
                    "total": len(open_cases),
                    "by_priority": {p: sum(1 for c in open_cases if c.priority == p) for p in labels["priorities"]},
                    "oldest_waiting_hours": round((now - oldest).total_seconds() / 3600, 1) if oldest else None}

    residence = {r.id: _label(r.label) for r in book.residence_statuses}
    prefectures = {p.id: {"ja": p.ja, "en": p.latin} for p in book.prefectures}
    return {
        "period": {"from": months[0].label, "to": months[-1].label},
        "handoffs": total, "persons": len({c.person for c in cases}),
        "categorised": sum(1 for c in cases if c.category),
        "months": per_month,
        "by_category": by_category,
        "by_residence_status": _tally(cases, "residence_status", residence),
        "by_prefecture": _tally(cases, "prefecture", prefectures),
        "by_language": _tally(cases, "language", {k: _label(v) for k, v in labels["languages"].items()},
                              keep_zero=True),
        "by_channel": _tally(cases, "channel", {k: _label(v) for k, v in labels["channels"].items()}),
        "by_priority": _tally(cases, "priority", {k: _label(v) for k, v in labels["priorities"].items()},
                              keep_zero=True),
        "first_reply": first_reply,
        "open": open_summary,
    }


OFFICE_CSV_HEADER = ["section", "id", "parent", "label_ja", "label_en", "month", "value", "share_percent"]


def office_stats_csv(stats: dict[str, Any]) -> str:
    period = f"{stats['period']['from']}..{stats['period']['to']}"

    def share(value: float | None) -> str:
        return "" if value is None else f"{value * 100:.1f}"

    rows: list[list[Any]] = [
        ["total", "handoffs", "", "相談件数", "Consultations", period, stats["handoffs"], ""],
        ["total", "persons", "", "相談人数", "People", period, stats["persons"], ""],
    ]
    for m in stats["months"]:
        rows.append(["month", "handoffs", "", "相談件数", "Consultations", m["month"], m["handoffs"], ""])
        rows.append(["month", "persons", "", "相談人数", "People", m["month"], m["persons"], ""])
    for c in stats["by_category"]:
        cid = c["id"] or "uncategorised"
        rows.append(["category", cid, "", c["label"]["ja"], c["label"]["en"], period, c["count"], share(c["share"])])
        for s in c["subcategories"]:
            rows.append(["subcategory", s["id"], cid, s["label"]["ja"], s["label"]["en"], period, s["count"],
                         share(s["share"])])
    for section in ("by_residence_status", "by_prefecture", "by_language", "by_channel", "by_priority"):
        for r in stats[section]:
            rid = r["id"] or "unknown"
            rows.append([section, rid, "", r["label"]["ja"], r["label"]["en"], period, r["count"], share(r["share"])])
            if section == "by_residence_status":
                rows.append([section + "_labour", rid, "", r["label"]["ja"] + "（うち労働）",
                             r["label"]["en"] + " (labour)", period, r["labour"], ""])
            if section == "by_prefecture":
                rows.append([section + "_persons", rid, "", r["label"]["ja"] + "（人数）",
                             r["label"]["en"] + " (people)", period, r["persons"], ""])
    names = {"replied": ("返信済み", "Answered"), "not_replied": ("未返信", "Not yet answered"),
             "median_minutes": ("初回返信までの時間（中央値・分）", "Time to first reply, median (minutes)"),
             "mean_minutes": ("初回返信までの時間（平均・分）", "Time to first reply, mean (minutes)"),
             "p90_minutes": ("初回返信までの時間（90%・分）", "Time to first reply, 90th percentile (minutes)")}
    for key, (ja, en) in names.items():
        value = stats["first_reply"][key]
        rows.append(["first_reply", key, "", ja, en, period, "" if value is None else value, ""])
    for key, (ja, en) in {"waiting": ("未対応", "Waiting"), "assigned": ("対応中", "Assigned"),
                          "total": ("未解決の合計", "Open in all")}.items():
        rows.append(["open", key, "", ja, en, "now", stats["open"][key], ""])
    return _csv(OFFICE_CSV_HEADER, rows)


def quarter_window(now: datetime, tz: tzinfo, count: int) -> list[Quarter]:
    return quarters_ending(Quarter.of(now, tz), count)


def month_window(now: datetime, tz: tzinfo, count: int = 12) -> tuple[Month, Month]:
    last = Month.of(now, tz)
    first = last
    for _ in range(count - 1):
        first = Month(first.year - 1, 12) if first.number == 1 else Month(first.year, first.number - 1)
    return first, last


__all__ = ["CSV_BOM", "CaseFacts", "Cell", "CompletedSheet", "EmployerReport", "Month", "Quarter", "SumRule",
           "build_employer_report", "build_office_stats", "employer_report_csv", "month_window",
           "months_between", "office_stats_csv", "quarter_window", "quarters_ending", "report_labels",
           "suppress"]
