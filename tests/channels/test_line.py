"""A worker does the self-diagnosis on LINE: only signed webhooks in, only LINE API calls out."""
from __future__ import annotations

import json

from sqlmodel import select

from bot.flowbook import LANGUAGE_NAMES, LANGUAGES
from bot.store.models import DiagnosisResult, HandoffRequest, InboundQueue, Message, OutboxMessage, Worker
from tests.channels.conftest import LINE_SECRET, settled
from tests.fakes.signing import (
    line_follow_event,
    line_postback_event,
    line_sticker_event,
    line_text_event,
    line_unfollow_event,
    line_webhook,
)

USER = "U4af4980629a1b2c3d4e5f60718293a4b"


class LineWorker:
    def __init__(self, served, fake, user_id: str = USER) -> None:  # type: ignore[no-untyped-def]
        self.served, self.fake, self.user_id = served, fake, user_id

    def post(self, *events: dict) -> int:
        body, headers = line_webhook(list(events), LINE_SECRET)
        return self.served.client.post("/webhooks/line", content=body, headers=headers).status_code

    def _exchange(self, make_event) -> list[dict]:  # type: ignore[no-untyped-def]
        before = len(self.fake.messages_to(self.user_id))
        token = self.fake.issue_reply_token(self.user_id)
        assert self.post(make_event(token)) == 200
        settled(self.served.db)
        return self.fake.messages_to(self.user_id)[before:]

    def follow(self) -> list[dict]:
        return self._exchange(lambda token: line_follow_event(self.user_id, reply_token=token))

    def say(self, text: str) -> list[dict]:
        return self._exchange(lambda token: line_text_event(self.user_id, text, reply_token=token))

    def press(self, option_id: str) -> list[dict]:
        return self._exchange(lambda token: line_postback_event(self.user_id, f"choice:{option_id}",
                                                                reply_token=token))


def quick_reply_data(message: dict) -> list[str]:
    return [i["action"]["data"] for i in message.get("quickReply", {}).get("items", [])]


def test_a_worker_completes_the_sheet_on_line(served, fakes, book):
    fakes.line.profiles[USER] = {"displayName": "Lan", "language": "vi"}
    worker = LineWorker(served, fakes.line)

    greeting = worker.follow()
    assert greeting[0]["text"] == book.t("welcome", "vi"), "the profile's language is used from the first word"
    assert quick_reply_data(greeting[-1]) == [f"choice:{code}" for code in LANGUAGES]
    assert [i["action"]["label"] for i in greeting[-1]["quickReply"]["items"]] == \
        [LANGUAGE_NAMES[c] for c in LANGUAGES]

    assert quick_reply_data(worker.press("vi")[-1]) == ["choice:agree", "choice:decline"]
    worker.press("agree")
    residence = worker.press("skip")[-1]
    assert quick_reply_data(residence) == ["choice:skip"], "36 statuses do not fit 13 quick replies: typed"
    assert "\n2. " in residence["text"]
    worker.say("2")
    q1 = worker.say("Aichi")[-1]
    assert book.question("Q1").text("vi") in q1["text"] and quick_reply_data(q1) == ["choice:none"]
    worker.say("5")
    worker.say("80 triệu")
    worker.say("4 9")
    for _ in range(7):
        worker.press("yes")
    worker.press("none")
    worker.say("Công ty giữ hộ chiếu của tôi")
    result = worker.press("no")
    assert book.t("result_level_critical", "vi") in result[0]["text"]
    assert quick_reply_data(result[-1]) == ["choice:yes", "choice:no"], "the counsellor is offered"
    worker.press("yes")

    replies = fakes.line.calls("/v2/bot/message/reply")
    assert replies and not fakes.line.calls("/v2/bot/message/push"), "every answer went out as a free reply"
    for call in replies:
        assert 1 <= len(call.json["messages"]) <= 5
        for m in call.json["messages"]:
            assert len(m["text"]) <= 5000
            items = m.get("quickReply", {}).get("items", [])
            assert len(items) <= 13 and all(len(i["action"]["label"]) <= 20 for i in items)
    with served.db.session() as s:
        result_row = s.exec(select(DiagnosisResult)).one()
        assert result_row.level == "critical" and {"3.4", "3.9", "1.5", "Q2"} <= set(result_row.indicators)
        assert s.exec(select(HandoffRequest)).one().channel == "line"
        assert not s.exec(select(OutboxMessage).where(OutboxMessage.status != "sent")).all()


def test_a_forged_or_missing_signature_is_refused_and_nothing_is_written(served, fakes):
    body, headers = line_webhook([line_text_event(USER, "hello")], "not-the-secret")
    assert served.client.post("/webhooks/line", content=body, headers=headers).status_code == 403
    del headers["X-Line-Signature"]
    assert served.client.post("/webhooks/line", content=body, headers=headers).status_code == 401
    with served.db.session() as s:
        assert not s.exec(select(InboundQueue)).all() and not s.exec(select(Worker)).all()
    assert not fakes.line.requests


def test_malformed_json_with_a_valid_signature_gets_400(served):
    from tests.fakes.signing import line_signature

    body = b'{"destination": "U1", "events": [ {'
    response = served.client.post("/webhooks/line", content=body,
                                  headers={"X-Line-Signature": line_signature(body, LINE_SECRET)})
    assert response.status_code == 400
    with served.db.session() as s:
        assert not s.exec(select(InboundQueue)).all()


def test_events_we_do_not_serve_are_skipped_and_a_body_without_an_event_list_gets_400(served):
    """LINE also sends events that are not a person talking to us (a group message without a sender, a beacon,
    a new event type): those are acknowledged and dropped, while the worker's message beside them is kept."""
    from tests.fakes.signing import line_signature

    text = json.loads(line_webhook([line_text_event(USER, "hello")], LINE_SECRET)[0])["events"][0]
    group = {**text, "webhookEventId": "01GROUPNOSENDER", "source": {"type": "group", "groupId": "C1"}}
    beacon = {**text, "type": "beacon", "webhookEventId": "01BEACON", "beacon": {"hwid": "d41d8cd98f", "type": "enter"}}
    body = json.dumps({"destination": "U1", "events": [group, beacon, text]}).encode()
    response = served.client.post("/webhooks/line", content=body,
                                  headers={"X-Line-Signature": line_signature(body, LINE_SECRET)})
    assert response.status_code == 200 and response.json() == {"received": 1, "stored": 1}
    for shape in ({"destination": "U1"}, {"events": {"type": "message"}}, {"events": ["hello"]}):
        body = json.dumps(shape).encode()
        response = served.client.post("/webhooks/line", content=body,
                                      headers={"X-Line-Signature": line_signature(body, LINE_SECRET)})
        assert response.status_code == 400, shape
    with served.db.session() as s:
        assert [row.provider_event_id for row in s.exec(select(InboundQueue))] == [text["webhookEventId"]]


def test_a_body_larger_than_any_webhook_gets_413_even_when_signed(served):
    from tests.fakes.signing import line_signature

    padding = "x" * 1_200_000
    body = json.dumps({"destination": "U1", "events": [], "padding": padding}).encode()
    response = served.client.post("/webhooks/line", content=body,
                                  headers={"X-Line-Signature": line_signature(body, LINE_SECRET)})
    assert response.status_code == 413
    with served.db.session() as s:
        assert not s.exec(select(InboundQueue)).all()


def test_the_webhook_endpoints_are_documented_for_operators(served):
    paths = served.client.get("/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/webhooks/{name}"])
    assert served.client.put("/webhooks/line", content=b"{}").status_code == 405


def test_a_redelivered_event_is_handled_once(served, fakes):
    worker = LineWorker(served, fakes.line)
    event = line_text_event(USER, "hello", reply_token=fakes.line.issue_reply_token(USER))
    redelivered = {**event, "deliveryContext": {"isRedelivery": True}}
    assert worker.post(event) == 200
    assert worker.post(redelivered) == 200
    settled(served.db)
    with served.db.session() as s:
        assert len(s.exec(select(Message).where(Message.direction == "in")).all()) == 1
    assert len(fakes.line.calls("/v2/bot/message/reply")) == 1


def test_an_expired_reply_token_falls_back_to_a_push_with_a_retry_key(served, fakes):
    worker = LineWorker(served, fakes.line)
    token = fakes.line.issue_reply_token(USER)
    fakes.line.expire_reply_token(token)
    worker.post(line_text_event(USER, "hello", reply_token=token))
    settled(served.db)
    pushes = fakes.line.calls("/v2/bot/message/push")
    assert len(pushes) == 1 and pushes[0].headers.get("x-line-retry-key")
    assert fakes.line.messages_to(USER), "the worker still got the answer"


def test_stickers_get_a_polite_answer_and_unfollow_marks_the_worker_unreachable(served, fakes, book):
    fakes.line.profiles[USER] = {"displayName": "Lan", "language": "id"}
    worker = LineWorker(served, fakes.line)
    worker.follow()
    worker.press("id")
    answer = worker._exchange(lambda token: line_sticker_event(USER, reply_token=token))
    assert answer[0]["text"] == book.t("media_not_understood", "id")
    assert worker.post(line_unfollow_event(USER)) == 200
    settled(served.db)
    with served.db.session() as s:
        assert s.exec(select(Worker)).one().reachable is False


def test_a_channel_without_credentials_answers_404(database_url):
    from fastapi.testclient import TestClient

    from admin_api.app import create_app
    from bot.settings import Settings

    app = create_app(Settings(database_url=database_url))
    with TestClient(app) as client:
        body, headers = line_webhook([line_text_event(USER, "hello")], LINE_SECRET)
        assert client.post("/webhooks/line", content=body, headers=headers).status_code == 404
        assert client.post("/webhooks/telegram", content=b"{}").status_code == 404
        assert client.get("/webhooks/messenger").status_code == 404
