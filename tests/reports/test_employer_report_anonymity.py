"""An employer reads how its workers answered, and never what one worker answered: a report on fewer than
10 people says only "too few responses"; a rare answer (2 of 30) stays hidden however the published figures
are added up or subtracted."""
from __future__ import annotations

import csv
import io
from fractions import Fraction
from typing import Any

import pytest

from tests.reports.conftest import ACME, SMALL, Reader

K = 10


def test_nine_respondents_get_only_too_few_responses(reports_app):
    tiny = Reader(reports_app.client, "tiny-hr")
    report = tiny.get(f"/api/reports/employers/{SMALL}").json()
    assert report == {"employer_code": SMALL, "min_respondents": K, "too_few_responses": True}

    rows = list(csv.reader(io.StringIO(tiny.get(f"/api/reports/employers/{SMALL}.csv").content.decode("utf-8-sig"))))
    assert len(rows) == 2 and rows[1][:2] == ["report", "too_few_responses"]
    assert not any(cell.isdigit() for cell in rows[1][5:8]), "no count, level or quarter in the CSV either"


def test_an_unknown_employer_looks_exactly_like_a_small_one(reports_app):
    kimura = Reader(reports_app.client, "kimura")
    assert kimura.get("/api/reports/employers/NOBODY-00").json() == {
        "employer_code": "NOBODY-00", "min_respondents": K, "too_few_responses": True}


# ----- the attacker --------------------------------------------------------------------------------------
def published_figures(report: dict[str, Any]) -> tuple[dict[tuple, int | None], list[tuple[tuple, list[tuple]]]]:
    """Every count the JSON shows (None when suppressed) and every sum a reader knows holds between them."""
    quarters = [q["quarter"] for q in report["quarters"]]
    levels = [lv["id"] for lv in report["levels"]]
    figures: dict[tuple, int | None] = {("respondents",): report["respondents"]}
    for section in ("items", "indicators", "levels"):
        for row in report[section]:
            figures[(section, row["id"])] = row["count"]
    for q in report["quarters"]:
        figures[("respondents", q["quarter"])] = q["respondents"]["count"]
        for row in q["levels"]:
            figures[("levels", row["id"], q["quarter"])] = row["count"]
    sums = [(("respondents",), [("respondents", q) for q in quarters]),
            (("respondents",), [("levels", lv) for lv in levels]),
            *((("respondents", q), [("levels", lv, q) for lv in levels]) for q in quarters),
            *((("levels", lv), [("levels", lv, q) for q in quarters]) for lv in levels)]
    return figures, sums


def determined_by_elimination(figures: dict[tuple, int | None], sums: list[tuple[tuple, list[tuple]]]) -> set[tuple]:
    """The suppressed figures that linear algebra pins down exactly (any combination of sums and differences)."""
    unknown = sorted((k for k, v in figures.items() if v is None), key=str)
    index = {k: i for i, k in enumerate(unknown)}
    rows: list[list[Fraction]] = []
    for total, parts in sums:
        row = [Fraction(0)] * (len(unknown) + 1)
        for sign, key in [(1, total), *((-1, p) for p in parts)]:
            if key in index:
                row[index[key]] += sign
            else:
                row[-1] -= sign * figures[key]  # type: ignore[operator]
        if any(row[:-1]):
            rows.append(row)

    def rank(matrix: list[list[Fraction]]) -> int:
        m = [r[:] for r in matrix]
        r = 0
        for col in range(len(unknown)):
            pivot = next((i for i in range(r, len(m)) if m[i][col] != 0), None)
            if pivot is None:
                continue
            m[r], m[pivot] = m[pivot], m[r]
            for i in range(len(m)):
                if i != r and m[i][col] != 0:
                    factor = m[i][col] / m[r][col]
                    m[i] = [a - factor * b for a, b in zip(m[i], m[r])]
            r += 1
        return r

    coefficients = [r[:-1] for r in rows]
    base = rank(coefficients) if coefficients else 0
    found = set()
    for key, i in index.items():
        probe = [Fraction(int(j == i)) for j in range(len(unknown))]
        if rank([*coefficients, probe]) == base:  # the unit vector lies in the row space: its value is known
            found.add(key)
    return found


def narrowest_ranges(figures: dict[tuple, int | None], sums: list[tuple[tuple, list[tuple]]],
                     n: int) -> dict[tuple, tuple[int, int]]:
    """What a patient reader bounds each suppressed figure to, knowing counts are between 0 and n."""
    low = {k: 0 for k, v in figures.items() if v is None}
    high = {k: n for k in low}
    for _ in range(200):
        before = (dict(low), dict(high))
        for total, parts in sums:
            terms = [(1, total), *((-1, p) for p in parts)]
            for sign, key in terms:
                if key not in low:
                    continue
                known = sum(-s * figures[k] for s, k in terms if k not in low and k != key)  # type: ignore[operator]
                others = [(s, k) for s, k in terms if k in low and k != key]
                most = known - sum(s * (low[k] if s > 0 else high[k]) for s, k in others)
                least = known - sum(s * (high[k] if s > 0 else low[k]) for s, k in others)
                lo, hi = (least, most) if sign > 0 else (-most, -least)
                low[key], high[key] = max(low[key], lo), min(high[key], hi)
        if (low, high) == before:
            break
    return {k: (low[k], high[k]) for k in low}


def test_two_of_thirty_with_a_passport_kept_cannot_be_recovered(reports_app):
    acme = Reader(reports_app.client, "acme-hr")
    report = acme.get(f"/api/reports/employers/{ACME}", params={"to": "2026-Q4"}).json()
    assert report["respondents"] == 30 and not report["too_few_responses"]
    items = {row["id"]: row for row in report["items"]}
    indicators = {row["id"]: row for row in report["indicators"]}

    # The rare answer is suppressed in every place it appears, and so is its complement.
    assert items["3.4"]["suppressed"] and items["3.4"]["count"] is None and items["3.4"]["share"] is None
    assert items["Q3"]["suppressed"], "Q3 is answered by exactly the same two people"
    assert indicators["retention_of_identity_documents"]["suppressed"]
    # A common answer is shown.
    assert items["Q4"]["count"] == 15 and items["Q4"]["share"] == 0.5

    figures, sums = published_figures(report)
    nobody_answered = {q["quarter"] for q in report["quarters"] if q["respondents"]["count"] == 0}
    assert nobody_answered == {"2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2"}
    for key, value in figures.items():
        if value is None or key == ("respondents",) or key[-1] in nobody_answered:
            continue  # hidden, the base, or a quarter in which nobody answered (its zeros tell nothing)
        assert K <= value <= 30 - K, (key, value)
    assert not determined_by_elimination(figures, sums), "no sum or difference pins a suppressed figure"
    for key, (low, high) in narrowest_ranges(figures, sums, 30).items():
        assert high - low >= K, (key, low, high)
    # The two critical results (the passport) sit in Q4: Q4's and the year's level counts do not give them away.
    levels = {row["id"]: row for row in report["levels"]}
    assert levels["critical"]["suppressed"]

    # The CSV says nothing more than the JSON: the same figures, the same gaps.
    text = acme.get(f"/api/reports/employers/{ACME}.csv", params={"to": "2026-Q4"}).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    by_key = {(r["section"], r["id"], r["quarter"]): r for r in rows}
    assert by_key[("item", "3.4", "")]["count"] == "" and by_key[("item", "3.4", "")]["suppressed"] == "yes"
    assert by_key[("item", "Q3", "")]["share_percent"] == ""
    published_in_csv = {k: int(r["count"]) for k, r in by_key.items() if r["count"]}
    for (section, row_id, quarter), count in published_in_csv.items():
        key = {"item": ("items", row_id), "indicator": ("indicators", row_id), "level": ("levels", row_id),
               "quarter": ("respondents", quarter), "quarter_level": ("levels", row_id, quarter)}.get(section)
        if key is not None:
            assert figures[key] == count, (section, row_id, quarter)
    assert all(r["count"] != "2" and r["count"] != "28" for r in rows)


def test_no_free_text_reaches_the_report(reports_app, book):
    from tests.reports.conftest import ALL_WELL, Worker, complete_sheets

    secret = "班長の田中さんに殴られた"
    complete_sheets(reports_app.db, book, ACME, [Worker("U-acme-extra", {**ALL_WELL, "Q12": secret},
                                                        reports_app.inbox.clock())])
    acme = Reader(reports_app.client, "acme-hr")
    assert secret not in acme.get(f"/api/reports/employers/{ACME}").text
    assert secret not in acme.get(f"/api/reports/employers/{ACME}.csv").content.decode("utf-8-sig")


@pytest.mark.parametrize("respondents", [10, 11, 15, 19, 20, 25, 33])
def test_the_rule_holds_for_many_shapes_of_answers(book, respondents):
    """The pure builder, with answers spread unevenly over four quarters: every published figure is at least
    K from 0 and from its total, and no suppressed one can be pinned."""
    import random
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from bot.reports import CompletedSheet, Quarter, build_employer_report, quarters_ending

    tz = ZoneInfo("Asia/Tokyo")
    quarters = quarters_ending(Quarter(2026, 4), 4)
    chance = random.Random(respondents)
    sheets = []
    for person in range(respondents):
        quarter = quarters[min(3, int(chance.random() ** 0.5 * 4))]
        level = chance.choice(["none", "none", "medium", "medium", "low", "high", "critical"])
        sheets.append(CompletedSheet(person, quarter.start(tz) + timedelta(days=3), level, ("Q4",) if person % 3 else (),
                                     ("deception",) if person % 3 else ()))
    report = build_employer_report("SHAPE-1", sheets, book, k=K, quarters=quarters, tz=tz).as_json()
    figures, sums = published_figures(report)
    nobody_answered = {q["quarter"] for q in report["quarters"] if q["respondents"]["count"] == 0}
    for key, value in figures.items():
        assert value is None or key[0] == "respondents" or key[-1] in nobody_answered or K <= value, (key, value)
    assert not determined_by_elimination(figures, sums)
    for key, (low, high) in narrowest_ranges(figures, sums, respondents).items():
        assert high - low >= K, (key, low, high)
