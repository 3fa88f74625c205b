"""The office's supervisor looks at this year's consultations the way the annual report counts them: by
category and sub-category, residence status, prefecture, language, channel and month, how long workers waited
for a first answer, and what is still open. The CSV opens in a spreadsheet as it is."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pandas

from bot.reports import CSV_BOM, Month
from bot.store.repository import ConversationRepository
from tests.reports.conftest import ACME, Reader

CASES = [  # (worker, category, sub-category, hours ago, answered by a counsellor)
    ("U-acme-00", "labour", "wages", 30, True),
    ("U-acme-01", "labour", "harassment", 28, True),
    ("U-acme-02", "residence", "status_change", 26, True),
    ("U-acme-03", "living", "family", 20, False),
    ("U-acme-04", None, None, 3, False),
]


def consultations_are_handled(app) -> None:  # type: ignore[no-untyped-def]
    """Workers ask for a person; a counsellor claims, answers and classifies each case in the inbox."""
    inbox = app.inbox
    sato = next(u for u in inbox.users() if u.name == "sato")
    now = inbox.clock()
    for user_id, category, subcategory, hours_ago, answered in CASES:
        with app.db.session() as s:
            repo = ConversationRepository(s)
            worker = repo.worker_for_update("line", user_id, "vi", now)
            handoff = repo.request_handoff(worker, "normal", "asked", worker.language, {"level": "high"},
                                           now - timedelta(hours=hours_ago))
            s.flush()
            handoff_id = handoff.id
        if category:
            inbox.claim(handoff_id, sato)
            if answered:
                inbox.reply(handoff_id, sato, "ご相談ありがとうございます。")
            inbox.categorize(handoff_id, sato, category, subcategory)


def test_a_supervisor_reads_this_years_consultations(reports_app):
    consultations_are_handled(reports_app)
    kimura = Reader(reports_app.client, "kimura")
    stats = kimura.get("/api/reports/office").json()
    assert stats["handoffs"] == 5 and stats["persons"] == 5 and stats["categorised"] == 4
    categories = {c["id"]: c for c in stats["by_category"]}
    assert categories["labour"]["count"] == 2
    assert {s["id"]: s["count"] for s in categories["labour"]["subcategories"]}["wages"] == 1
    assert categories[None]["count"] == 1, "the case nobody classified yet is counted as such"
    assert stats["by_residence_status"][0] == {**stats["by_residence_status"][0], "id": "technical_intern_2",
                                                "count": 5, "labour": 2}
    assert stats["by_prefecture"][0]["label"] == {"ja": "愛知県", "en": "Aichi"}
    assert {r["id"]: r["count"] for r in stats["by_channel"]} == {"line": 5}
    assert stats["first_reply"]["replied"] == 3 and stats["first_reply"]["not_replied"] == 2
    assert 26 * 60 <= stats["first_reply"]["median_minutes"] <= 28 * 60 + 1
    assert stats["open"] == {**stats["open"], "waiting": 1, "assigned": 4, "total": 5}
    this_month = Month.of(reports_app.inbox.clock(), __import__("zoneinfo").ZoneInfo("Asia/Tokyo")).label
    assert stats["months"][-1]["month"] == this_month

    text = kimura.get("/api/reports/office").text
    for private in ("U-acme-00", "ご相談ありがとうございます", "sato", ACME):
        assert private not in text, "no identifier or free text in the statistics"


def test_a_month_range_is_chosen_and_checked(reports_app):
    kimura = Reader(reports_app.client, "kimura")
    stats = kimura.get("/api/reports/office", params={"from": "2026-01", "to": "2026-03"}).json()
    assert [m["month"] for m in stats["months"]] == ["2026-01", "2026-02", "2026-03"]
    assert kimura.call("GET", "/api/reports/office", params={"from": "2026-05", "to": "2026-01"}).status_code == 400
    assert kimura.call("GET", "/api/reports/office", params={"from": "2026-13"}).status_code == 400


def test_the_csv_files_open_in_a_spreadsheet(reports_app):
    consultations_are_handled(reports_app)
    kimura = Reader(reports_app.client, "kimura")
    for path in ("/api/reports/office.csv", f"/api/reports/employers/{ACME}.csv"):
        response = kimura.get(path, params={"to": "2026-Q4"} if "employers" in path else {})
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        assert response.content.startswith(CSV_BOM.encode("utf-8")), "Excel in Japan needs the BOM to read UTF-8"
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert len({len(r) for r in rows}) == 1, "every row has the header's columns"
        frame = pandas.read_csv(io.BytesIO(response.content), encoding="utf-8-sig", dtype=str, keep_default_na=False)
        assert list(frame.columns) == rows[0] and len(frame) == len(rows) - 1
        assert frame.values.tolist() == rows[1:], "a spreadsheet reader sees exactly what the csv module sees"
    office = pandas.read_csv(io.BytesIO(kimura.get("/api/reports/office.csv").content), encoding="utf-8-sig",
                             dtype=str)
    labour = office[(office.section == "category") & (office.id == "labour")]
    assert labour.label_ja.tolist() == ["労働"] and labour.value.tolist() == ["2"]
    employer = pandas.read_csv(io.BytesIO(kimura.get(f"/api/reports/employers/{ACME}.csv",
                                                     params={"to": "2026-Q4"}).content), encoding="utf-8-sig")
    q4 = employer[(employer.section == "item") & (employer.id == "Q4")]
    assert q4["count"].tolist() == [15] and q4.label_en.tolist() == ["Not told about the job and wages before starting"]
