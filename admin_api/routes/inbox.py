"""The counsellors' shared inbox: `/api/inbox/...`. Every endpoint but login needs a bearer token; roles decide
what each may do (the audit log is for supervisors and administrators only)."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from bot.inbox import InboxError, InboxService, consultation_categories
from bot.store.models import StaffUser

router = APIRouter(prefix="/api/inbox", tags=["inbox"])
bearer = HTTPBearer(auto_error=False, description="The token from POST /api/inbox/login")

Status = Literal["waiting", "assigned", "resolved"]
Priority = Literal["urgent", "critical", "normal"]


class LoginRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class LoginResponse(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_at: str
    user: dict[str, Any]


class TextBody(BaseModel):
    text: str = Field(min_length=1, max_length=5000)


class CategoryBody(BaseModel):
    category: str = Field(max_length=64)
    subcategory: str | None = Field(default=None, max_length=64)


class TransferBody(BaseModel):
    to: str = Field(min_length=1, max_length=64, description="the name of the counsellor who takes over")


def _inbox(request: Request) -> InboxService:
    return request.app.state.ctx.inbox


def current_user(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> StaffUser:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Bearer"})
    user = _inbox(request).user_for_token(credentials.credentials)
    if user is None:
        raise HTTPException(401, "the token is unknown or expired; log in again",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


def role(*allowed: str) -> Callable[..., StaffUser]:
    def check(user: Annotated[StaffUser, Depends(current_user)]) -> StaffUser:
        if user.role not in allowed:
            raise HTTPException(403, f"this needs the role {' or '.join(allowed)}")
        return user
    return check


Staff = Annotated[StaffUser, Depends(role("counsellor", "supervisor", "admin"))]
Supervisor = Annotated[StaffUser, Depends(role("supervisor", "admin"))]


def _public(user: StaffUser) -> dict[str, Any]:
    return {"name": user.name, "role": user.role, "language": user.language}


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except InboxError as exc:
        raise HTTPException(exc.status_code, str(exc)) from exc


@router.post("/login", response_model=LoginResponse, summary="Log in; returns an expiring bearer token")
async def login(body: LoginRequest, request: Request) -> LoginResponse:
    result = await run_in_threadpool(_inbox(request).login, body.name, body.password)
    if result is None:
        raise HTTPException(401, "wrong name or password")
    return LoginResponse(token=result.token, expires_at=result.expires_at.isoformat(), user=_public(result.user))


@router.post("/logout", summary="End this token's session")
async def logout(user: Staff, request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> dict[str, str]:
    await run_in_threadpool(_inbox(request).logout, credentials.credentials)  # type: ignore[union-attr]
    return {"status": "logged out"}


@router.get("/me", summary="Who this token belongs to")
async def me(user: Staff) -> dict[str, Any]:
    return _public(user)


@router.get("/users", summary="Active staff, for transfers")
async def users(user: Staff, request: Request) -> list[dict[str, Any]]:
    return [_public(u) for u in await run_in_threadpool(_inbox(request).users)]


@router.get("/categories", summary="Consultation categories and sub-categories")
async def categories(user: Staff) -> list[dict[str, Any]]:
    return consultation_categories()


@router.get("/conversations", summary="The queue, most urgent first")
async def conversations(user: Staff, request: Request, status: Status | None = None, priority: Priority | None = None,
                        language: str | None = Query(default=None, max_length=8),
                        channel: str | None = Query(default=None, max_length=32),
                        mine: bool = False) -> list[dict[str, Any]]:
    return await _call(_inbox(request).conversations, user, status=status, priority=priority, language=language,
                       channel=channel, mine=mine)


@router.get("/conversations/{handoff_id}", summary="A conversation with its translated transcript and notes")
async def conversation(handoff_id: int, user: Staff, request: Request) -> dict[str, Any]:
    return await _call(_inbox(request).conversation, handoff_id, user)


@router.post("/conversations/{handoff_id}/claim", summary="Take the conversation (409 if someone has it)")
async def claim(handoff_id: int, user: Staff, request: Request) -> dict[str, Any]:
    return await _call(_inbox(request).claim, handoff_id, user)


@router.post("/conversations/{handoff_id}/reply", summary="Answer the worker, translated into their language")
async def reply(handoff_id: int, body: TextBody, user: Staff, request: Request) -> dict[str, Any]:
    return await _call(_inbox(request).reply, handoff_id, user, body.text)


@router.post("/conversations/{handoff_id}/notes", summary="An internal note (never shown to the worker)")
async def note(handoff_id: int, body: TextBody, user: Staff, request: Request) -> dict[str, Any]:
    return await _call(_inbox(request).add_note, handoff_id, user, body.text)


@router.post("/conversations/{handoff_id}/category", summary="Classify the consultation")
async def category(handoff_id: int, body: CategoryBody, user: Staff, request: Request) -> dict[str, str]:
    await _call(_inbox(request).categorize, handoff_id, user, body.category, body.subcategory)
    return {"status": "ok"}


@router.post("/conversations/{handoff_id}/transfer", summary="Hand the conversation to another counsellor")
async def transfer(handoff_id: int, body: TransferBody, user: Staff, request: Request) -> dict[str, str]:
    await _call(_inbox(request).transfer, handoff_id, user, body.to)
    return {"status": "ok"}


@router.post("/conversations/{handoff_id}/resolve", summary="Close the case and hand the worker back to the bot")
async def resolve(handoff_id: int, user: Staff, request: Request) -> dict[str, str]:
    await _call(_inbox(request).resolve, handoff_id, user)
    return {"status": "resolved"}


@router.get("/audit", summary="Who read or did what (supervisors and administrators)")
async def audit(user: Supervisor, request: Request,
                limit: int = Query(default=200, ge=1, le=5000)) -> list[dict[str, Any]]:
    return await _call(_inbox(request).audit_log, user, limit)


@router.get("/events", summary="Server-sent events: 'change' whenever messages or the queue change")
async def events(user: Staff, request: Request) -> StreamingResponse:
    inbox = _inbox(request)
    interval = request.app.state.ctx.settings.inbox_poll_seconds

    async def stream() -> AsyncIterator[bytes]:
        # Workers' messages are stored by the pipeline, maybe in another process: watch the database.
        newest, updated, _ = await run_in_threadpool(inbox.changes_since, -1, None)
        yield b"retry: 2000\n\n"
        while not await request.is_disconnected():
            await asyncio.sleep(interval)
            newest_now, updated_now, changed = await run_in_threadpool(inbox.changes_since, newest, updated)
            if changed:
                newest, updated = newest_now, updated_now
                data = json.dumps({"message_id": newest, "updated_at": updated.isoformat() if updated else None})
                yield f"event: change\ndata: {data}\n\n".encode()
            else:
                yield b": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
