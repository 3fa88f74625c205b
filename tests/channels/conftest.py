"""The app with all three messaging channels switched on, each pointed at a fake provider on 127.0.0.1."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from sqlmodel import select

from admin_api.app import create_app
from bot.settings import Settings
from bot.store.models import InboundQueue, OutboxMessage
from tests.fakes.providers import FakeGraph, FakeLine, FakeTelegram

LINE_SECRET = "line-channel-secret-for-tests"
TELEGRAM_SECRET = "telegram-webhook-secret-for-tests"
MESSENGER_SECRET = "messenger-app-secret-for-tests"
MESSENGER_VERIFY = "messenger-verify-token"


@pytest.fixture
def fakes() -> Iterator[SimpleNamespace]:
    with FakeLine() as line, FakeTelegram() as telegram, FakeGraph() as graph:
        yield SimpleNamespace(line=line, telegram=telegram, graph=graph)


def channel_settings(database_url: str, fakes: SimpleNamespace, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        database_url=database_url,
        line_channel_secret=LINE_SECRET, line_channel_access_token=fakes.line.access_token,
        line_api_base_url=fakes.line.base_url,
        telegram_bot_token=fakes.telegram.token, telegram_webhook_secret=TELEGRAM_SECRET,
        telegram_api_base_url=fakes.telegram.base_url + "/bot",
        messenger_app_secret=MESSENGER_SECRET, messenger_verify_token=MESSENGER_VERIFY,
        messenger_page_access_token=fakes.graph.page_access_token,
        messenger_api_base_url=f"{fakes.graph.base_url}/{fakes.graph.api_version}",
        outbox_retry_base_seconds=0.02, outbox_retry_max_seconds=0.5,
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, fakes: SimpleNamespace) -> Settings:
    return channel_settings(database_url, fakes)


@pytest.fixture
def served(settings: Settings) -> Iterator[SimpleNamespace]:
    """The app as `mirai serve` runs it (background pipeline included), driven in-process."""
    from fastapi.testclient import TestClient

    app = create_app(settings)
    with TestClient(app) as client:
        yield SimpleNamespace(app=app, client=client, db=app.state.ctx.db)


def settled(db, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    """Waits until every stored event is stepped and every outbox row has an outcome."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as s:
            busy = s.exec(select(InboundQueue.id).where(InboundQueue.status == "pending")).first() or \
                s.exec(select(OutboxMessage.id).where(OutboxMessage.status == "pending")).first()
        if not busy:
            return
        time.sleep(0.02)
    raise AssertionError("the pipeline did not settle in time")


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
