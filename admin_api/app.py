"""The FastAPI application: web chat today; webhooks, inbox, campaigns and reports mount here as routers."""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

from admin_api.deps import AppContext
from admin_api.routes import inbox as inbox_routes
from admin_api.routes import campaigns, inbox_page, ops, webchat, webhooks
from admin_api.routes import reports as report_routes
from bot.channels.registry import build_channels
from bot.flowbook import default_flowbook
from bot.inbox import InboxService
from bot.office import OfficeHours
from bot.outbox import Dispatcher, Outbox
from bot.pipeline import InboundProcessor, InboundStore, Pipeline
from bot.scheduler import build_scheduler
from bot.service import ConversationService, utcnow
from bot.privacy import install_log_redaction, keep_promises
from bot.settings import Settings, get_settings
from bot.store.db import get_database
from bot.translation import Translator
from nlu.service import NluService

STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    install_log_redaction()
    db = get_database(settings.database_url, settings.encryption_keys)
    book = default_flowbook()
    keep_promises(settings, book.promises)
    channels = {name: ch for name, ch in build_channels(settings).items() if ch.enabled()}
    outbox = Outbox(channels)
    service = ConversationService(db, book, default_language=settings.default_language, outbox=outbox,
                                  office_hours=OfficeHours.parse(settings.office_hours, settings.timezone),
                                  nlu=NluService.from_settings(settings))
    pipeline = None
    if settings.run_workers_in_process:
        pipeline = Pipeline(InboundProcessor(db, service, channels, outbox, utcnow),
                            Dispatcher(db, channels, settings, utcnow))

    scheduler = build_scheduler(settings, db, service, utcnow,
                                wake=pipeline.wake if pipeline is not None else None)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if pipeline is not None:
            pipeline.start()
        if settings.run_scheduler_in_process:
            scheduler.start()
        yield
        scheduler.stop()
        if pipeline is not None:
            pipeline.stop()

    app = FastAPI(title="Mirai", version="0.1.0", lifespan=lifespan,
                  description="Self-diagnosis chat for migrant workers in Japan, and the tools of its counsellors.",
                  routes=[Route("/webhooks/{name}", webhooks.WebhookReceiver(), methods=["POST"])])  # first: see its module
    documented = app.openapi

    def openapi_with_webhooks() -> dict[str, Any]:
        if app.openapi_schema is None:
            paths = documented()["paths"]
            for path, operations in webhooks.OPENAPI_PATHS.items():
                paths.setdefault(path, {}).update(operations)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi_with_webhooks  # type: ignore[method-assign]
    inbox = InboxService(db, book, Translator.from_settings(settings), outbox, utcnow,
                         token_hours=settings.staff_token_hours,
                         on_change=pipeline.wake if pipeline is not None else None)
    app.state.webhook_counts = Counter()  # per process: each api process reports its own, Prometheus sums them
    app.state.ctx = AppContext(settings=settings, db=db, book=book, service=service, channels=channels,
                               inbound=InboundStore(db), pipeline=pipeline, inbox=inbox,
                               campaigns=scheduler.campaigns, scheduler=scheduler)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # A malformed request is the caller's mistake: say what is wrong, change nothing.
        errors = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse(status_code=400, content={"detail": "malformed request", "errors": errors})

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(webchat.router)
    app.include_router(webhooks.router)
    app.include_router(inbox_routes.router)
    app.include_router(inbox_page.router)
    app.include_router(report_routes.router)
    app.include_router(report_routes.pages)
    app.include_router(ops.router)
    app.include_router(campaigns.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
