"""The app with LINE on (against the fake LINE), translation through a fake LibreTranslate server, and
counsellor accounts."""
from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from admin_api.app import create_app
from bot.settings import Settings
from tests.channels.conftest import channel_settings, fakes  # noqa: F401 (the fakes fixture is used here)
from tests.fakes.libretranslate import FakeLibreTranslate

PASSWORD = "correct horse battery"


@pytest.fixture
def libre() -> Iterator[FakeLibreTranslate]:
    with FakeLibreTranslate() as server:
        yield server


@pytest.fixture
def inbox_settings(database_url: str, fakes, libre) -> Settings:  # type: ignore[no-untyped-def]  # noqa: F811
    return channel_settings(database_url, fakes, translator="libre", libretranslate_url=libre.base_url,
                            translator_cooldown_seconds=0, office_hours="mon-sun 00:00-23:59",
                            inbox_poll_seconds=0.05)


@pytest.fixture
def served(inbox_settings: Settings) -> Iterator[SimpleNamespace]:
    from fastapi.testclient import TestClient

    app = create_app(inbox_settings)
    inbox = app.state.ctx.inbox
    inbox.add_user("sato", "counsellor", PASSWORD, "ja")
    inbox.add_user("tanaka", "counsellor", PASSWORD, "ja")
    inbox.add_user("smith", "counsellor", PASSWORD, "en")
    inbox.add_user("kimura", "supervisor", PASSWORD, "ja")
    with TestClient(app) as client:
        yield SimpleNamespace(app=app, client=client, db=app.state.ctx.db, inbox=inbox)


class Counsellor:
    """A counsellor using the inbox API with their own token."""

    def __init__(self, client, name: str) -> None:  # type: ignore[no-untyped-def]
        self.client, self.name = client, name
        response = client.post("/api/inbox/login", json={"name": name, "password": PASSWORD})
        assert response.status_code == 200, response.text
        self.token = response.json()["token"]

    def call(self, method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.client.request(method, "/api/inbox" + path,
                                   headers={"Authorization": f"Bearer {self.token}"}, **kwargs)

    def get(self, path: str, **kwargs):  # type: ignore[no-untyped-def]
        response = self.call("GET", path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, expect: int = 200, **kwargs):  # type: ignore[no-untyped-def]
        response = self.call("POST", path, **kwargs)
        assert response.status_code == expect, response.text
        return response.json()
