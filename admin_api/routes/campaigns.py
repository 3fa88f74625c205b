"""Campaign broadcasts: `/api/campaigns/...`, for supervisors and administrators (the inbox's accounts)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from admin_api.routes.inbox import role
from bot.campaigns import Audience, CampaignError, CampaignService
from bot.store.models import StaffUser

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])
Supervisor = Annotated[StaffUser, Depends(role("supervisor", "admin"))]


class CampaignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    texts: dict[str, Annotated[str, Field(min_length=1, max_length=5000)]] = Field(
        description="the message in each of the 9 languages: ja, en, zh, vi, tl, id, my, pt, es")
    audience: Audience = Field(default_factory=Audience)
    send_at: datetime | None = Field(default=None, description="when to send (ISO 8601 with a time zone); "
                                                               "now when left out. Quiet hours delay it.")
    dry_run: bool = Field(default=False, description="only count who would get it; nothing is created")


class CountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audience: Audience = Field(default_factory=Audience)


def _campaigns(request: Request) -> CampaignService:
    return request.app.state.ctx.campaigns


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except CampaignError as exc:
        raise HTTPException(exc.status_code, str(exc)) from exc


@router.post("", summary="Create a campaign (or, with dry_run, count its audience)", status_code=201)
async def create_campaign(body: CampaignRequest, request: Request, user: Supervisor) -> dict[str, Any]:
    campaigns = _campaigns(request)
    if body.send_at is not None and body.send_at.tzinfo is None:
        raise HTTPException(400, "send_at needs a time zone, e.g. 2026-12-10T10:00:00+09:00")
    if body.dry_run:
        return {"dry_run": True, **await _call(campaigns.count, body.audience)}
    campaign = await _call(campaigns.create, body.name, body.texts, body.audience, body.send_at, user.id)
    ctx = request.app.state.ctx
    await run_in_threadpool(ctx.scheduler.sweep_campaigns)  # due now: starts at once if this process leads
    if ctx.pipeline is not None:
        ctx.pipeline.wake()
    return await _call(campaigns.progress, campaign.id)


@router.post("/count", summary="How many workers an audience filter reaches, and who is left out and why")
async def count_audience(body: CountRequest, request: Request, _user: Supervisor) -> dict[str, Any]:
    return await _call(_campaigns(request).count, body.audience)


@router.get("", summary="The latest campaigns with their progress")
async def list_campaigns(request: Request, _user: Supervisor) -> list[dict[str, Any]]:
    return await _call(_campaigns(request).list)


@router.get("/{campaign_id}", summary="A campaign's progress: queued, sent, failed and skipped with reasons")
async def campaign_progress(campaign_id: int, request: Request, _user: Supervisor) -> dict[str, Any]:
    return await _call(_campaigns(request).progress, campaign_id)


@router.post("/{campaign_id}/cancel", summary="Cancel: what is not sent yet is not sent")
async def cancel_campaign(campaign_id: int, request: Request, _user: Supervisor) -> dict[str, Any]:
    return await _call(_campaigns(request).cancel, campaign_id)
