from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from admin_api.app import create_app
from bot.settings import Settings
from tests.pgserver import free_port


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
    port = free_port()
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)
