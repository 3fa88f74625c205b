"""The Rasa server takes its time over one worker's words: meanwhile LINE keeps delivering other workers'
messages, and each must still be stored and acknowledged at once (LINE gives up on a slow webhook and, after
a few, on the bot). The NLU reads a text before the transaction that steps it, so no database lock waits for it."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from admin_api.app import create_app
from bot.store.models import InboundQueue
from tests.channels.conftest import LINE_SECRET, channel_settings, settled, wait_until
from tests.fakes.rasa import answer_parse
from tests.fakes.signing import line_text_event, line_webhook


class ThinkingRasa:
    """A Rasa server that answers only once it is told to."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.answer = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.asked.set()
                outer.answer.wait(30)
                answer_parse(self, "greet", 0.99)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ThinkingRasa:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.answer.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rasa() -> Iterator[ThinkingRasa]:
    with ThinkingRasa() as server:
        yield server


def test_other_workers_are_acknowledged_while_the_nlu_thinks(database_url, fakes, rasa):
    settings = channel_settings(database_url, fakes, nlu_backend="rasa", rasa_url=rasa.url, nlu_timeout_seconds=8)
    with TestClient(create_app(settings)) as client:
        body, headers = line_webhook([line_text_event("U" + "a" * 32, "hello")], LINE_SECRET)
        assert client.post("/webhooks/line", content=body, headers=headers).status_code == 200
        assert rasa.asked.wait(10), "the pipeline never asked the NLU"

        answers: list[int] = []
        for n in range(3):
            body, headers = line_webhook([line_text_event(f"U{n:032x}", "hello")], LINE_SECRET)
            poster = threading.Thread(target=lambda b=body, h=headers: answers.append(
                client.post("/webhooks/line", content=b, headers=h).status_code), daemon=True)
            poster.start()
            poster.join(4)  # below the NLU's 8 s: a webhook waiting for it would still be hanging here
        rasa.answer.set()
        assert answers == [200, 200, 200], "webhooks waited for the NLU"

        db = client.app.state.ctx.db  # type: ignore[attr-defined]
        settled(db, timeout=30)
        with db.session() as s:
            assert {row.status for row in s.exec(select(InboundQueue)).all()} == {"done"}
        wait_until(lambda: len(fakes.line.requests) >= 4)
