"""The counsellors' web inbox: one page; it logs in and talks to /api/inbox."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
PAGE = Path(__file__).resolve().parent.parent / "templates" / "inbox.html"


@router.get("/inbox", response_class=HTMLResponse)
def inbox_page() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})
