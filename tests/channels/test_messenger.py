"""A worker does the self-diagnosis on Facebook Messenger: signed webhooks in, Send API calls out, and the
24-hour messaging window respected when the bot or a counsellor writes later."""
from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.flowbook import LANGUAGES
from bot.messages import Outbound, OutboundKind
from bot.service import utcnow
from bot.store.models import DiagnosisResult, InboundQueue, Message, OutboxMessage, Worker
from tests.channels.conftest import MESSENGER_SECRET, MESSENGER_VERIFY, settled
from tests.fakes.signing import (
    messenger_postback_event,
    messenger_quick_reply_event,
    messenger_text_event,
    messenger_webhook,
)

PSID = "6543210987654321"


class MessengerWorker:
    def __init__(self, served, fake, psid: str = PSID) -> None:  # type: ignore[no-untyped-def]
        self.served, self.fake, self.psid = served, fake, psid

    def post(self, *events: dict, secret: str = MESSENGER_SECRET) -> int:
        body, headers = messenger_webhook(list(events), secret)
        return self.served.client.post("/webhooks/messenger", content=body, headers=headers).status_code

    def _exchange(self, event: dict) -> list[dict]:
        before = len(self.fake.messages_to(self.psid))
        assert self.post(event) == 200
        settled(self.served.db)
        return self.fake.messages_to(self.psid)[before:]

    def get_started(self) -> list[dict]:
        return self._exchange(messenger_postback_event(self.psid, "Get Started", "GET_STARTED"))

    def say(self, text: str) -> list[dict]:
        return self._exchange(messenger_text_event(self.psid, text))

    def tap(self, quick_reply: dict) -> list[dict]:
        return self._exchange(messenger_quick_reply_event(self.psid, quick_reply["title"], quick_reply["payload"]))

    def tap_payload(self, message: dict, payload: str) -> list[dict]:
        for quick in message.get("quick_replies", []):
            if quick["payload"] == payload:
                return self.tap(quick)
        raise AssertionError(f"no quick reply {payload} in {message.get('quick_replies')}")


def payloads(message: dict) -> list[str]:
    return [q["payload"] for q in message.get("quick_replies", [])]


def test_a_worker_completes_the_sheet_on_messenger(served, fakes, book):
    fakes.graph.profiles[PSID] = {"locale": "pt_BR", "first_name": "Ana"}
    worker = MessengerWorker(served, fakes.graph)

    greeting = worker.get_started()
    assert greeting[0]["text"] == book.t("welcome", "pt"), "the language from the Messenger locale"
    assert payloads(greeting[-1]) == [f"c:{code}" for code in LANGUAGES]
    consent = worker.tap_payload(greeting[-1], "c:pt")
    employer = worker.tap_payload(consent[-1], "c:agree")
    residence = worker.tap_payload(employer[-1], "c:skip")
    assert payloads(residence[-1]) == ["c:skip"], "the long list of statuses is typed by number"
    worker.say("2")
    q1 = worker.say("Gunma")[-1]
    assert book.question("Q1").text("pt") in q1["text"]
    assert payloads(q1) == ["c:none"], "a checklist is answered in text: 1 3 5"
    worker.say("1 3 5")
    worker.say("R$ 20.000")
    q3 = worker.say("9")[-1]
    for _ in range(7):
        q3 = worker.tap_payload(q3, "c:no")[-1]
    q11 = worker.tap_payload(q3, "c:none")[-1]
    q13 = worker.tap_payload(q11, "c:skip")[-1]
    result = worker.tap_payload(q13, "c:no")
    assert any(book.t("result_level_critical", "pt") in m["text"] for m in result)

    for psid, message, messaging_type, tag in fakes.graph.delivered:
        assert psid == PSID and messaging_type == "RESPONSE" and tag is None
        assert len(message["text"]) <= 2000
        quick = message.get("quick_replies", [])
        assert len(quick) <= 13 and all(len(q["title"]) <= 20 for q in quick)
    with served.db.session() as s:
        row = s.exec(select(DiagnosisResult)).one()
        assert row.level == "critical" and {"1.1", "1.3", "1.5", "3.9", "Q2"} <= set(row.indicators)
        assert not s.exec(select(OutboxMessage).where(OutboxMessage.status != "sent")).all()


def test_the_webhook_verification_handshake(served):
    ok = served.client.get("/webhooks/messenger", params={
        "hub.mode": "subscribe", "hub.verify_token": MESSENGER_VERIFY, "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    wrong = served.client.get("/webhooks/messenger", params={
        "hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"})
    assert wrong.status_code == 403 and "1158201444" not in wrong.text


def test_a_forged_or_missing_signature_is_refused_and_nothing_is_written(served, fakes):
    worker = MessengerWorker(served, fakes.graph)
    assert worker.post(messenger_text_event(PSID, "olá"), secret="not-the-app-secret") == 403
    body, headers = messenger_webhook([messenger_text_event(PSID, "olá")], MESSENGER_SECRET)
    del headers["X-Hub-Signature-256"]
    assert served.client.post("/webhooks/messenger", content=body, headers=headers).status_code == 401
    with served.db.session() as s:
        assert not s.exec(select(InboundQueue)).all() and not s.exec(select(Worker)).all()
    assert not fakes.graph.requests


def test_malformed_json_with_a_valid_signature_gets_400(served):
    from tests.fakes.signing import messenger_signature

    body = b'{"object": "page", "entry": [ {'
    response = served.client.post("/webhooks/messenger", content=body,
                                  headers={"X-Hub-Signature-256": messenger_signature(body, MESSENGER_SECRET)})
    assert response.status_code == 400
    with served.db.session() as s:
        assert not s.exec(select(InboundQueue)).all()


def test_a_redelivered_message_is_handled_once(served, fakes):
    worker = MessengerWorker(served, fakes.graph)
    event = messenger_text_event(PSID, "oi")
    assert worker.post(event) == 200 and worker.post(event) == 200
    settled(served.db)
    with served.db.session() as s:
        assert len(s.exec(select(Message).where(Message.direction == "in")).all()) == 1


def test_after_24_hours_only_a_counsellor_reply_goes_out_tagged_human_agent(served, fakes):
    worker = MessengerWorker(served, fakes.graph)
    worker.get_started()
    with served.db.session() as s:
        row = s.exec(select(Worker).where(Worker.channel_user_id == PSID)).one()
        row.last_inbound_at = utcnow() - timedelta(days=2)
        s.add(row)
    fakes.graph.outside_window(PSID)
    before = len(fakes.graph.delivered)

    outbox = served.app.state.ctx.service.outbox
    with served.db.session() as s:
        row = s.exec(select(Worker).where(Worker.channel_user_id == PSID)).one()
        outbox.enqueue(s, row, [Outbound(kind=OutboundKind.TEXT, text="Reminder from the bot")], utcnow())
        outbox.enqueue(s, row, [Outbound(kind=OutboundKind.TEXT, text="Sou a conselheira Sato.")], utcnow(),
                       source="counsellor")
    served.app.state.ctx.pipeline.wake()
    settled(served.db)

    assert [(m["text"], mtype, tag) for _, m, mtype, tag in fakes.graph.delivered[before:]] == \
        [("Sou a conselheira Sato.", "MESSAGE_TAG", "HUMAN_AGENT")]
    with served.db.session() as s:
        skipped = s.exec(select(OutboxMessage).where(OutboxMessage.status == "skipped")).one()
        assert skipped.payload["message"]["text"] == "Reminder from the bot"
        assert "24-hour" in (skipped.last_error or "")


def test_a_sticker_gets_a_polite_answer(served, fakes, book):
    worker = MessengerWorker(served, fakes.graph)
    worker.get_started()
    sticker = messenger_text_event(PSID, "")
    sticker["message"] = {"mid": sticker["message"]["mid"], "sticker_id": 369239263222822,
                          "attachments": [{"type": "image", "payload": {"url": "https://scontent.example/x.png",
                                                                        "sticker_id": 369239263222822}}]}
    answer = worker._exchange(sticker)
    assert answer and answer[0]["text"], "the worker is told what the bot can read"
