"""Logs are read by operators, shipped to log services and kept for months: nothing a worker wrote and nothing
that identifies them (channel user id, chat id, name) is ever in a log record, even at DEBUG level."""
from __future__ import annotations

import logging

from tests.channels.conftest import fakes, served, settings  # noqa: F401 (fixtures)
from tests.channels.test_line import LineWorker
from tests.channels.test_telegram import TelegramWorker

LINE_USER = "U77aa88bb99cc00dd11ee22ff33aa44bb"
TELEGRAM_CHAT = 5598765432
PASSPORT = "Công ty giữ hộ chiếu của tôi từ tháng ba"
DANGER_ES = "mi jefe me pegó y tengo miedo"


def all_logged(caplog) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


def test_conversations_on_line_and_telegram_leave_no_text_or_id_in_the_logs(served, fakes, book, caplog):
    caplog.set_level(logging.DEBUG)
    fakes.line.profiles[LINE_USER] = {"displayName": "Nguyễn Thị Hoa", "language": "vi"}
    line = LineWorker(served, fakes.line, LINE_USER)
    line.follow()  # the bot asks LINE for the profile: a URL with the user id in it
    line.press("vi")
    line.press("agree")
    line.say(PASSPORT)
    line.say("xóa dữ liệu của tôi")
    line.press("erase_yes")

    telegram = TelegramWorker(served, fakes.telegram, chat_id=TELEGRAM_CHAT, language="es")
    telegram.say("/start")
    telegram.say(DANGER_ES)
    telegram.say("/delete")

    logged = all_logged(caplog)
    assert caplog.records, "the test saw the logs (DEBUG from every library)"
    for private in (LINE_USER, str(TELEGRAM_CHAT), PASSPORT, "hộ chiếu", DANGER_ES, "Nguyễn Thị Hoa",
                    fakes.telegram.token):
        assert private not in logged, f"{private!r} is in the logs"


def test_the_web_chat_user_id_in_a_query_string_is_not_in_the_access_log(served, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    # What uvicorn writes for every request (TestClient has no uvicorn in between, so the line is written here as
    # uvicorn's access logger would: same logger, same format, same arguments). Caught at that logger itself, at
    # INFO: uvicorn's own log configuration (a server started by an earlier test, at LOG_LEVEL=warning) stops it
    # propagating to the root and raises its level.
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    access = logging.getLogger("uvicorn.access")
    access.addHandler(caplog.handler)
    try:
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET",
                    "/api/webchat/history?user_id=web-2b7c9e41", "1.1", 200)
    finally:
        access.removeHandler(caplog.handler)
    logged = all_logged(caplog)
    assert "/api/webchat/history" in logged and "web-2b7c9e41" not in logged
