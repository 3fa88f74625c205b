"""What an operator's tools ask of a running service: is it up, can it work, and how busy is it."""
from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import func, text
from sqlmodel import select

from bot.store.db import Database, schema_is_current
from bot.store.models import HandoffRequest, InboundQueue, OutboxMessage

router = APIRouter(include_in_schema=False)



@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers and its schema is the newest this code knows."""
    db: Database = request.app.state.ctx.db
    try:
        current = await run_in_threadpool(schema_is_current, db)
    except Exception as exc:  # noqa: BLE001 (any failure to reach the database means: not ready)
        return JSONResponse(status_code=503, content={"status": "not ready",
                                                      "reason": f"database unreachable: {type(exc).__name__}"})
    if not current:
        return JSONResponse(status_code=503, content={"status": "not ready", "reason": "migrations pending"})
    return JSONResponse(content={"status": "ready"})


@router.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    db: Database = request.app.state.ctx.db
    snapshot = await run_in_threadpool(_database_figures, db)
    webhooks: Counter[tuple[str, str]] = request.app.state.webhook_counts
    lines = [
        "# HELP mirai_webhooks_received_total Webhooks received, by channel and outcome.",
        "# TYPE mirai_webhooks_received_total counter",
        *[f'mirai_webhooks_received_total{{channel="{c}",outcome="{o}"}} {n}' for (c, o), n in sorted(webhooks.items())],
        "# HELP mirai_sends Outbox rows by channel and status (pending, sent, failed, skipped).",
        "# TYPE mirai_sends gauge",
        *[f'mirai_sends{{channel="{c}",status="{s}"}} {n}' for (c, s), n in sorted(snapshot["sends"].items())],
        "# HELP mirai_outbox_depth Messages waiting to be sent.",
        "# TYPE mirai_outbox_depth gauge",
        f"mirai_outbox_depth {snapshot['outbox_depth']}",
        "# HELP mirai_inbound_queue_depth Webhook events stored but not yet stepped.",
        "# TYPE mirai_inbound_queue_depth gauge",
        f"mirai_inbound_queue_depth {snapshot['inbound_depth']}",
        "# HELP mirai_oldest_waiting_handoff_seconds How long the oldest unclaimed request for a counsellor has waited.",
        "# TYPE mirai_oldest_waiting_handoff_seconds gauge",
        f"mirai_oldest_waiting_handoff_seconds {snapshot['oldest_handoff']:.0f}",
        "# HELP mirai_scheduler_leader 1 in the process that runs the scheduler now, 0 in those standing by.",
        "# TYPE mirai_scheduler_leader gauge",
        f"mirai_scheduler_leader {1 if request.app.state.ctx.scheduler.is_leader else 0}",
        "# HELP mirai_metrics_scrape_seconds Time spent collecting these figures.",
        "# TYPE mirai_metrics_scrape_seconds gauge",
        f"mirai_metrics_scrape_seconds {snapshot['took']:.4f}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


def _database_figures(db: Database) -> dict:  # type: ignore[type-arg]
    started = time.perf_counter()
    with db.session() as s:
        sends = {(c, st): n for c, st, n in s.exec(
            select(OutboxMessage.channel, OutboxMessage.status, func.count()).group_by(
                OutboxMessage.channel, OutboxMessage.status)).all()}
        inbound = s.exec(select(func.count()).select_from(InboundQueue).where(InboundQueue.status == "pending")).one()
        oldest = s.exec(select(func.min(HandoffRequest.created_at)).where(HandoffRequest.status == "waiting")).one()
        s.exec(text("SELECT 1"))  # type: ignore[call-overload]
    age = 0.0
    if oldest is not None:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        age = (datetime.now(UTC) - oldest).total_seconds()
    return {"sends": sends, "outbox_depth": sum(n for (_, st), n in sends.items() if st == "pending"),
            "inbound_depth": inbound, "oldest_handoff": age, "took": time.perf_counter() - started}
