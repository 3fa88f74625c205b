"""In a real Chromium: an employer's HR manager logs in, sees the report with its charts (Japanese labels,
suppressed cells hatched) and downloads the CSV; a supervisor opens the office statistics page. Screenshots
are left in test-artifacts/ (and a PDF of the printed report)."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from admin_api.app import create_app
from tests.conftest import ARTIFACTS
from tests.servers import serving
from tests.reports.conftest import ACME, PASSWORD, SMALL, acme_workers, add_accounts, complete_sheets, \
    report_settings, small_workers
from tests.reports.test_office_statistics import consultations_are_handled
from tests.web.test_webchat_browser import browser  # noqa: F401 (the fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def report_server(tmp_path, book) -> Iterator[str]:  # type: ignore[no-untyped-def]
    app = create_app(report_settings(f"sqlite:///{tmp_path / 'reports.db'}"))
    ctx = app.state.ctx
    add_accounts(ctx.inbox)
    complete_sheets(ctx.db, book, ACME, acme_workers())
    complete_sheets(ctx.db, book, SMALL, small_workers())
    consultations_are_handled(SimpleNamespace(inbox=ctx.inbox, db=ctx.db))
    with serving(app) as base:
        yield base


def log_in(page, base: str, path: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + path)
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    page.locator("body[data-loaded=yes]").wait_for(timeout=15_000)


def test_an_employer_reads_and_prints_its_report(browser, report_server):  # noqa: F811
    page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="ja-JP", accept_downloads=True)
    log_in(page, report_server, "/reports/employer", "acme-hr")
    assert page.locator("#respondents").inner_text() == "30"
    charts = page.locator("svg.chart")
    assert charts.count() == 3, "indicators, levels by quarter, items"
    assert charts.nth(0).locator("rect").count() > 10 and "身分証明書" in charts.nth(0).inner_html()
    assert "秘匿" in page.locator("#items").inner_text()
    assert "2026-Q4" in charts.nth(1).inner_html()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-employer.png"), full_page=True)

    with page.expect_download() as download:
        page.click("#csv")
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8-sig").read())))
    assert rows[0][:3] == ["section", "id", "parent"] and any(r[1] == "Q4" and r[6] == "15" for r in rows)

    page.emulate_media(media="print")
    page.screenshot(path=str(ARTIFACTS / "report-employer-print.png"), full_page=True)
    page.pdf(path=str(ARTIFACTS / "report-employer.pdf"), format="A4")
    assert not page.locator(".toolbar").is_visible(), "the print stylesheet hides the buttons"
    page.close()


def test_a_small_employer_sees_only_too_few_responses(browser, report_server):  # noqa: F811
    page = browser.new_page(viewport={"width": 1100, "height": 600}, locale="ja-JP")
    log_in(page, report_server, "/reports/employer", "tiny-hr")
    assert "回答数が少ない" in page.locator("#too-few").inner_text()
    assert page.locator("svg.chart").count() == 0 and page.locator("#respondents").count() == 0
    page.screenshot(path=str(ARTIFACTS / "report-employer-too-few.png"), full_page=True)
    page.close()


def test_a_supervisor_reads_the_office_statistics(browser, report_server):  # noqa: F811
    page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="ja-JP")
    log_in(page, report_server, "/reports/office", "kimura")
    assert page.locator("#handoffs").inner_text() == "5"
    charts = page.locator("svg.chart")
    assert charts.count() >= 5
    assert "労働" in charts.nth(0).inner_html() and "愛知県" in page.locator("#stats").inner_text()
    page.screenshot(path=str(ARTIFACTS / "report-office.png"), full_page=True)
    page.close()
