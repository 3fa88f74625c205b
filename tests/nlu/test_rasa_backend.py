"""NLU_BACKEND=rasa against a real Rasa 3.6 server trained from nlu/, and the fallback when it fails."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nlu.rasa import RasaServer, free_port
from nlu.service import NluService
from tests.fakes.rasa import answer_parse

TIMEOUT = 0.5
MARGIN = 0.15  # thread hand-over and the embedded parse; far below a second timeout


@pytest.mark.slow
@pytest.mark.parametrize("text, intent", [
    ("I want to talk to a person", "talk_to_person"),
    ("給料が払われない", "ask_article"),
    ("dừng gửi tin nhắn", "stop"),
    ("terima kasih banyak", "thanks"),
    ("quero morrer", "danger"),
    ("delete my data", "delete_my_data"),
])
def test_the_rasa_backend_answers_with_the_real_server(rasa_server, text, intent):
    service = NluService("rasa", rasa_server.url, timeout=5.0)
    try:
        result = service.interpret(text)
    finally:
        service.close()
    assert result.backend == "rasa"
    assert result.intent == intent
    assert 0.0 < result.confidence <= 1.0


@pytest.mark.slow
def test_killing_the_rasa_server_mid_conversation_falls_back_within_the_timeout(rasa_venv, rasa_model, caplog):
    server = RasaServer(rasa_venv, rasa_model).start()
    service = NluService("rasa", server.url, timeout=TIMEOUT)
    try:
        assert service.interpret("I want to talk to someone").backend == "rasa"
        server.kill()
        for text, intent in [("how do I renew my visa", "ask_article"), ("stop sending messages", "stop")]:
            start = time.monotonic()
            with caplog.at_level(logging.WARNING, logger="mirai.nlu"):
                result = service.interpret(text)
            assert time.monotonic() - start < TIMEOUT + MARGIN
            assert result.backend == "embedded-fallback"
            assert result.intent == intent
        assert "did not answer" in caplog.text
    finally:
        service.close()
        server.stop()


class _SlowRasa(BaseHTTPRequestHandler):
    delay = 3.0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        time.sleep(self.delay)
        answer_parse(self, "greet", 1.0)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowRasa)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_slow_rasa_server_never_delays_the_answer_beyond_the_timeout(slow_server, caplog):
    service = NluService("rasa", slow_server, timeout=TIMEOUT)
    try:
        start = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="mirai.nlu"):
            result = service.interpret("I want to talk to a person")
        elapsed = time.monotonic() - start
    finally:
        service.close()
    assert elapsed < TIMEOUT + MARGIN
    assert (result.backend, result.intent) == ("embedded-fallback", "talk_to_person")
    assert "did not answer" in caplog.text


def test_an_unreachable_rasa_server_falls_back_and_danger_is_still_seen():
    service = NluService("rasa", f"http://127.0.0.1:{free_port()}", timeout=TIMEOUT)
    try:
        start = time.monotonic()
        result = service.interpret("he is beating me, help")
    finally:
        service.close()
    assert time.monotonic() - start < TIMEOUT + MARGIN
    assert result.backend == "embedded-fallback" and result.danger


def test_the_backend_is_chosen_by_the_settings():
    class Settings:
        nlu_backend = "rasa"
        rasa_url = "http://127.0.0.1:5005"
        nlu_timeout_seconds = 0.2

    service = NluService.from_settings(Settings())
    assert service.backend == "rasa" and service.timeout == 0.2
    service.close()
    with pytest.raises(ValueError):
        NluService("spacy")
