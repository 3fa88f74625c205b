"""Employer reports and office statistics: `/api/reports/...` (JSON and CSV) and their printable pages.
An employer account reads only its own employer's report; supervisors and administrators read any report and
the office statistics. Login is the inbox's (`POST /api/inbox/login`); the token works here."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from admin_api.routes.inbox import bearer, current_user, role
from bot.inbox import consultation_categories
from bot.reports import (
    EmployerReport,
    Month,
    build_employer_report,
    build_office_stats,
    employer_report_csv,
    month_window,
    months_between,
    Quarter,
    office_stats_csv,
    quarter_window,
    quarters_ending,
)
from bot.service import utcnow
from bot.store import reports as rows
from bot.store.models import StaffUser

router = APIRouter(prefix="/api/reports", tags=["reports"])
pages = APIRouter(include_in_schema=False)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
EMPLOYER_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{2,18}[A-Za-z0-9]$"

ReportReader = Annotated[StaffUser, Depends(role("employer", "supervisor", "admin"))]
Supervisor = Annotated[StaffUser, Depends(role("supervisor", "admin"))]
EmployerCode = Annotated[str, PathParam(pattern=EMPLOYER_CODE_PATTERN, description="the employer code")]
FromMonth = Annotated[str | None, Query(alias="from", pattern=r"^\d{4}-\d{2}$",
                                         description="first month, YYYY-MM (default: 11 months before this one)")]
ToQuarter = Annotated[str | None, Query(alias="to", pattern=r"^\d{4}-[Qq][1-4]$",
                                        description="the report's last quarter, e.g. 2026-Q4 (default: this one)")]
ToMonth = Annotated[str | None, Query(alias="to", pattern=r"^\d{4}-\d{2}$",
                                      description="last month, YYYY-MM (default: this month)")]


def _employer_report(request: Request, user: StaffUser, code: str, last: str | None) -> EmployerReport:
    code = code.upper()
    if user.role == "employer" and code != user.employer_code:
        raise HTTPException(403, "an employer account reads only its own employer's report")
    ctx = request.app.state.ctx
    settings = ctx.settings
    tz = ZoneInfo(settings.timezone)
    try:
        quarters = (quarters_ending(Quarter.parse(last), settings.report_quarters) if last
                    else quarter_window(utcnow(), tz, settings.report_quarters))
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    start, end = quarters[0].start(tz), quarters[-1].next().start(tz)
    sheets = rows.completed_sheets(ctx.db, code, start, end)
    report = build_employer_report(code, sheets, ctx.book, k=settings.report_min_respondents, quarters=quarters,
                                   tz=tz)
    ctx.inbox.record(user, "read_report", {"employer_code": code})
    return report


def _office_stats(request: Request, user: StaffUser, first: str | None, last: str | None) -> dict[str, Any]:
    ctx = request.app.state.ctx
    tz = ZoneInfo(ctx.settings.timezone)
    now = utcnow()
    default_first, default_last = month_window(now, tz)
    try:
        first_month = Month.parse(first) if first else default_first
        last_month = Month.parse(last) if last else default_last
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    if first_month > last_month or len(months_between(first_month, last_month)) > 120:
        raise HTTPException(400, "from must not be after to, and at most 120 months apart")
    months = months_between(first_month, last_month)
    cases = rows.handoff_facts(ctx.db, months[0].start(tz), months[-1].next().start(tz))
    stats = build_office_stats(cases, rows.open_handoff_facts(ctx.db), ctx.book, consultation_categories(),
                               months=months, tz=tz, now=now)
    ctx.inbox.record(user, "read_statistics", {"from": months[0].label, "to": months[-1].label})
    return stats


def _csv_response(text: str, filename: str) -> Response:
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@router.get("/me", summary="Who this token belongs to, and which employer report it may read")
async def me(user: ReportReader) -> dict[str, Any]:
    return {"name": user.name, "role": user.role, "language": user.language, "employer_code": user.employer_code}


@router.post("/logout", summary="End this token's session")
async def logout(user: Annotated[StaffUser, Depends(current_user)], request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> dict[str, str]:
    await run_in_threadpool(request.app.state.ctx.inbox.logout, credentials.credentials)  # type: ignore[union-attr]
    return {"status": "logged out"}


@router.get("/employers/{code}.csv", summary="The employer report as CSV (UTF-8 with BOM, for Excel)",
            response_class=Response)
async def employer_report_as_csv(code: EmployerCode, user: ReportReader, request: Request,
                                 last: ToQuarter = None) -> Response:
    report = await run_in_threadpool(_employer_report, request, user, code, last)
    return _csv_response(employer_report_csv(report), f"employer-report-{report.employer_code}.csv")


@router.get("/employers/{code}", summary="The employer report: items, indicators, levels, quarters (suppressed "
            "below report_min_respondents)")
async def employer_report(code: EmployerCode, user: ReportReader, request: Request,
                          last: ToQuarter = None) -> dict[str, Any]:
    report = await run_in_threadpool(_employer_report, request, user, code, last)
    return report.as_json()


@router.get("/office.csv", summary="Office statistics as CSV (UTF-8 with BOM, for Excel)", response_class=Response)
async def office_statistics_as_csv(user: Supervisor, request: Request, first: FromMonth = None,
                                   last: ToMonth = None) -> Response:
    stats = await run_in_threadpool(_office_stats, request, user, first, last)
    return _csv_response(office_stats_csv(stats), f"office-statistics-{stats['period']['from']}"
                                                  f"-{stats['period']['to']}.csv")


@router.get("/office", summary="Office statistics: consultations by category, residence status, prefecture, "
            "language, channel and month; time to first reply; open cases")
async def office_statistics(user: Supervisor, request: Request, first: FromMonth = None,
                            last: ToMonth = None) -> dict[str, Any]:
    return await run_in_threadpool(_office_stats, request, user, first, last)


def _page(name: str) -> HTMLResponse:
    return HTMLResponse((TEMPLATES / name).read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})


@pages.get("/reports/employer", response_class=HTMLResponse)
def employer_report_page() -> HTMLResponse:
    return _page("report_employer.html")


@pages.get("/reports/office", response_class=HTMLResponse)
def office_statistics_page() -> HTMLResponse:
    return _page("report_office.html")

