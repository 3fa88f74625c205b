from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from admin_api.app import create_app
from bot.settings import Settings
from tests.servers import serving


@pytest.fixture
def app(database_url: str):  # type: ignore[no-untyped-def]
    return create_app(Settings(database_url=database_url))


@pytest.fixture
def client(app) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture
def live_server(tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """`mirai serve` in a thread on a free port, on its own SQLite database."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}"))
    with serving(app) as base:
        yield base
