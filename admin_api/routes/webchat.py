"""The embedded web chat: a page at `/` and a small JSON API, on the same engine as every channel."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from bot.flowbook import LANGUAGE_NAMES, LANGUAGES
from bot.messages import InboundEvent, InboundKind

WEB_CHANNEL = "web"
USER_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

router = APIRouter()


class WebEvent(BaseModel):
    user_id: str = Field(pattern=USER_ID_PATTERN, description="A random id the page keeps in local storage.")
    kind: Literal["text", "choice", "follow"]
    text: str = Field(default="", max_length=10_000)
    choice_ids: list[str] = Field(default_factory=list, max_length=50)
    language: str | None = Field(default=None, description="The language picked in the page, if any.")


class WebReply(BaseModel):
    language: str
    messages: list[dict]
    navigation: list[dict]


def _navigation(request: Request, lang: str) -> list[dict]:
    """Buttons under the chat for the commands that work at any time, labelled with the worker's own words."""
    book = request.app.state.ctx.book
    nav = []
    for command in ("back", "skip", "menu", "help", "change_language", "talk_to_person", "stop"):
        words = book.keywords[command].get(lang) or book.keywords[command]["en"]
        nav.append({"id": f"cmd:{command}", "label": str(words[0])})
    return nav


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def chat_page() -> HTMLResponse:
    return HTMLResponse((TEMPLATES / "chat.html").read_text(encoding="utf-8"))


@router.get("/api/webchat/languages")
def languages() -> list[dict]:
    return [{"id": code, "label": LANGUAGE_NAMES[code]} for code in LANGUAGES]


@router.post("/api/webchat/events", response_model=WebReply)
def post_event(event: WebEvent, request: Request) -> WebReply:
    ctx = request.app.state.ctx
    language = event.language if event.language in LANGUAGES else None
    if event.kind == "text":
        inbound = InboundEvent(kind=InboundKind.TEXT, text=event.text)
    elif event.kind == "choice":
        if not event.choice_ids:
            raise HTTPException(status_code=400, detail="a choice needs at least one option id")
        inbound = InboundEvent(kind=InboundKind.CHOICE, choice_ids=event.choice_ids)
    else:
        inbound = InboundEvent(kind=InboundKind.FOLLOW, language_hint=language, language_chosen=False)
    outbound = ctx.service.handle(WEB_CHANNEL, event.user_id, inbound)
    lang = outbound[-1].language if outbound and outbound[-1].language else (language or ctx.settings.default_language)
    return WebReply(language=lang, messages=[o.as_json() for o in outbound], navigation=_navigation(request, lang))


@router.get("/api/webchat/history", response_model=WebReply)
def history(user_id: str, request: Request, after_id: int | None = None) -> WebReply:
    import re

    if not re.fullmatch(USER_ID_PATTERN, user_id):
        raise HTTPException(status_code=400, detail="invalid user id")
    ctx = request.app.state.ctx
    messages = ctx.service.history(WEB_CHANNEL, user_id, after_id=after_id)
    lang = next((m.get("language") for m in reversed(messages) if m.get("language")), ctx.settings.default_language)
    return WebReply(language=lang, messages=messages, navigation=_navigation(request, lang))
