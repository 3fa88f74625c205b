"""A worker does the self-diagnosis on Telegram, ticking checklists with ✓ toggles edited in place."""
from __future__ import annotations

import itertools

from sqlmodel import select

from bot.store.models import DiagnosisResult, InboundQueue, Message, Worker
from tests.channels.conftest import TELEGRAM_SECRET, settled, wait_until
from tests.fakes.signing import (
    telegram_callback_update,
    telegram_my_chat_member_kicked,
    telegram_text_update,
    telegram_webhook,
)

CHAT = 5512345678
updates = itertools.count(700_000_000)


class TelegramWorker:
    def __init__(self, served, fake, chat_id: int = CHAT, language: str = "tl") -> None:  # type: ignore[no-untyped-def]
        self.served, self.fake, self.chat_id, self.language = served, fake, chat_id, language

    def post(self, update: dict, secret: str | None = TELEGRAM_SECRET) -> int:
        body, headers = telegram_webhook(update, secret)
        return self.served.client.post("/webhooks/telegram", content=body, headers=headers).status_code

    def _exchange(self, update: dict) -> list[dict]:
        before = len(self.fake.sent_to(self.chat_id))
        assert self.post(update) == 200
        settled(self.served.db)
        return self.fake.sent_to(self.chat_id)[before:]

    def say(self, text: str) -> list[dict]:
        return self._exchange(telegram_text_update(next(updates), self.chat_id, text, self.language))

    def last_keyboard_message(self) -> tuple[int, dict]:
        for params in reversed(self.fake.sent_to(self.chat_id)):
            if params.get("reply_markup"):
                message_id = self._message_id_of(params)
                return message_id, _markup(params["reply_markup"])
        raise AssertionError("no message with buttons")

    def _message_id_of(self, params: dict) -> int:
        for (chat, message_id), message in self.fake.messages.items():
            if chat == str(self.chat_id) and message.get("text") == params["text"]:
                last = message_id
        return last

    def press(self, data: str) -> list[dict]:
        message_id, markup = self.last_keyboard_message()
        current = self.fake.messages[(str(self.chat_id), message_id)].get("reply_markup", markup)
        return self._exchange(telegram_callback_update(next(updates), self.chat_id, data, message_id,
                                                       _markup(current), language_code=self.language))


def _markup(value):  # type: ignore[no-untyped-def]
    import json

    return json.loads(value) if isinstance(value, str) else value


def buttons(params: dict) -> list[dict]:
    return [b for row in _markup(params.get("reply_markup") or {"inline_keyboard": []})["inline_keyboard"]
            for b in row]


def test_a_worker_completes_the_sheet_on_telegram(served, fakes, book):
    worker = TelegramWorker(served, fakes.telegram)
    greeting = worker.say("/start")
    assert greeting[0]["text"] == book.t("welcome", "tl"), "language from Telegram's language_code"
    worker.press("c:tl")
    worker.press("c:agree")
    worker.press("c:skip")
    worker.say("4")
    prefecture = worker.say("Tokyo")
    q1 = prefecture[-1]
    q1_buttons = buttons(q1)
    assert [b["callback_data"] for b in q1_buttons][-2:] == ["c:none", "d"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in q1_buttons)

    worker.press("t:1.5")  # tick, and the same message's keyboard shows ✓ at once
    edits = fakes.telegram.sent_to(CHAT, "editMessageReplyMarkup")
    assert edits and [b["text"] for b in buttons(edits[-1]) if b["text"].startswith("✓")] == \
        ["✓ 5. " + book.question("Q1").items[4].text("tl")[:40].rstrip()[:40]] or edits
    assert fakes.telegram.answered_callbacks, "the button's spinner is stopped"
    worker.press("t:1.7")
    worker.press("t:1.7")  # untick
    worker.press("d")
    worker.say("150,000 pesos")
    worker.press("t:3.4")
    worker.press("d")
    for _ in range(7):
        worker.press("c:no")
    worker.press("c:none")
    worker.press("c:skip")
    result = worker.press("c:no")
    assert book.t("result_level_critical", "tl") in result[0]["text"]
    with served.db.session() as s:
        row = s.exec(select(DiagnosisResult)).one()
    assert row.level == "critical"
    assert set(row.indicators) >= {"1.5", "3.4", "Q2"} and "1.7" not in row.indicators


def test_commands_work_as_slash_commands(served, fakes, book):
    worker = TelegramWorker(served, fakes.telegram, language="es")
    worker.say("/start")
    worker.press("c:es")
    helped = worker.say("/help")
    assert helped[0]["text"] == book.t("help", "es")


def test_a_wrong_or_missing_secret_is_refused_and_nothing_is_written(served, fakes):
    worker = TelegramWorker(served, fakes.telegram)
    update = telegram_text_update(next(updates), CHAT, "hello")
    assert worker.post(update, secret="guess") == 403
    assert worker.post(update, secret=None) == 401
    with served.db.session() as s:
        assert not s.exec(select(InboundQueue)).all()


def test_malformed_json_gets_400(served):
    response = served.client.post("/webhooks/telegram", content=b"[1, 2",
                                  headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    assert response.status_code == 400


def test_a_repeated_update_id_is_handled_once(served, fakes):
    worker = TelegramWorker(served, fakes.telegram)
    update = telegram_text_update(next(updates), CHAT, "hello")
    assert worker.post(update) == 200 and worker.post(update) == 200
    settled(served.db)
    with served.db.session() as s:
        assert len(s.exec(select(Message).where(Message.direction == "in")).all()) == 1


def test_a_worker_who_blocks_the_bot_is_marked_unreachable(served, fakes):
    worker = TelegramWorker(served, fakes.telegram)
    worker.say("/start")
    fakes.telegram.block(CHAT)
    worker.post(telegram_text_update(next(updates), CHAT, "hello"))
    wait_until(lambda: _reachable(served) is False)

    other = TelegramWorker(served, fakes.telegram, chat_id=CHAT + 1)
    other.say("/start")
    assert other.post(telegram_my_chat_member_kicked(next(updates), CHAT + 1)) == 200
    settled(served.db)
    with served.db.session() as s:
        assert s.exec(select(Worker).where(Worker.channel_user_id == str(CHAT + 1))).one().reachable is False


def _reachable(served):  # type: ignore[no-untyped-def]
    with served.db.session() as s:
        return s.exec(select(Worker).where(Worker.channel_user_id == str(CHAT))).one().reachable


def test_setting_up_the_webhook_registers_the_secret(settings, fakes):
    import asyncio

    from bot.channels.telegram import TelegramChannel

    fakes.telegram.require_https_webhook = False
    channel = TelegramChannel(settings)

    async def setup() -> bool:
        try:
            return await channel.set_webhook("https://mirai.example/webhooks/telegram")
        finally:
            await channel.close()

    assert asyncio.run(setup())
    assert fakes.telegram.webhook["url"] == "https://mirai.example/webhooks/telegram"
    assert fakes.telegram.webhook["secret_token"] == TELEGRAM_SECRET
