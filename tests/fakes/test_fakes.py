"""The fakes and the webhook builders behave like the providers, as seen through the real SDKs."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid

import httpx
import pytest

from tests.fakes import FIXTURES, FakeGraph, FakeLine, FakeTelegram, load_fixture
from tests.fakes.signing import (
    line_follow_event, line_postback_event, line_sticker_event, line_text_event, line_unfollow_event, line_user_id,
    line_webhook, messenger_postback_event, messenger_quick_reply_event, messenger_text_event, messenger_webhook,
    telegram_callback_update, telegram_my_chat_member_kicked, telegram_text_update, telegram_webhook,
)

SECRET = "channel-secret-for-tests"


def _line_api(fake: FakeLine):
    messaging = pytest.importorskip("linebot.v3.messaging")
    client = messaging.ApiClient(messaging.Configuration(host=fake.base_url, access_token=fake.access_token))
    return messaging, messaging.MessagingApi(client)


def test_line_webhooks_we_build_and_record_parse_in_the_sdk():
    webhook = pytest.importorskip("linebot.v3.webhook")
    models = pytest.importorskip("linebot.v3.webhooks")
    user = line_user_id()
    events = [line_text_event(user, "Xin chào 🍎"), line_postback_event(user, "q=1&a=2"), line_follow_event(user),
              line_unfollow_event(user), line_sticker_event(user)]
    body, headers = line_webhook(events, SECRET)
    parsed = webhook.WebhookParser(SECRET).parse(body.decode("utf-8"), headers["X-Line-Signature"])
    assert [type(e) for e in parsed] == [models.MessageEvent, models.PostbackEvent, models.FollowEvent,
                                         models.UnfollowEvent, models.MessageEvent]
    assert isinstance(parsed[0].message, models.TextMessageContent) and parsed[0].message.text == "Xin chào 🍎"
    assert isinstance(parsed[4].message, models.StickerMessageContent)
    # WebhookParser quietly turns an event it cannot validate into UnknownEvent; the strict model raises.
    models.CallbackRequest.from_json(body.decode("utf-8"))
    for path in sorted((FIXTURES / "line").glob("*.json")):
        models.CallbackRequest.from_json(path.read_text(encoding="utf-8"))
    with pytest.raises(webhook.InvalidSignatureError):
        webhook.WebhookParser("another-secret").parse(body.decode("utf-8"), headers["X-Line-Signature"])


def test_telegram_updates_we_build_and_record_parse_in_ptb_without_unknown_fields():
    telegram = pytest.importorskip("telegram")
    bot = telegram.Bot("7000000001:AAHfakeTokenForMiraiTests0123456789")
    keyboard = {"inline_keyboard": [[{"text": "Có", "callback_data": "ans:q01:1"}]]}
    built = [telegram_text_update(1, 42, "/start ref"), telegram_callback_update(2, 42, "ans:q01:1", 7, keyboard),
             telegram_my_chat_member_kicked(3, 42)]
    recorded = [load_fixture("telegram", p.stem) for p in sorted((FIXTURES / "telegram").glob("*.json"))]
    for data in built + recorded:
        update = telegram.Update.de_json(json.loads(telegram_webhook(data, "s3cret")[0]), bot)
        obj = update.effective_message or update.my_chat_member
        assert update.api_kwargs == {} and obj.api_kwargs == {}, data
    cmd = telegram.Update.de_json(built[0], bot)
    assert cmd.message.entities[0].type == "bot_command" and cmd.effective_user.language_code == "vi"
    assert telegram.Update.de_json(built[2], bot).my_chat_member.new_chat_member.status == "kicked"


def test_messenger_webhook_is_signed_over_the_raw_escaped_body():
    events = [messenger_text_event("123", "Xin chào"), messenger_quick_reply_event("123", "Oo", "ans:q01:1"),
              messenger_postback_event("123", "Get Started", "GET_STARTED")]
    body, headers = messenger_webhook(events, "app-secret")
    assert headers["X-Hub-Signature-256"] == "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    assert b"\\u00e0" in body  # non-ASCII arrives escaped, as Meta sends it
    entries = json.loads(body)["entry"]
    assert [e["messaging"][0]["sender"]["id"] for e in entries] == ["123"] * 3
    for name in ("text_message", "quick_reply", "postback"):
        assert load_fixture("messenger", name)["object"] == "page"


def test_line_push_with_a_retry_key_is_delivered_once():
    fake = FakeLine(access_token="tok")
    with fake:
        messaging, api = _line_api(fake)
        user, key = line_user_id(), str(uuid.uuid4())
        push = messaging.PushMessageRequest(to=user, messages=[messaging.TextMessage(text="Q1")])

        fake.fail_next(500)  # refused: the key is not used up
        with pytest.raises(messaging.ApiException) as refused:
            api.push_message(push, x_line_retry_key=key)
        assert refused.value.status == 500 and fake.delivered == []

        fake.fail_next(500, after_delivery=True)  # delivered, but the answer is lost
        with pytest.raises(messaging.ApiException):
            api.push_message(push, x_line_retry_key=key)
        with pytest.raises(messaging.ApiException) as conflict:
            api.push_message(push, x_line_retry_key=key)
        assert conflict.value.status == 409
        assert json.loads(conflict.value.body)["message"] == "The retry key is already accepted"
        assert conflict.value.headers["x-line-accepted-request-id"]
        assert fake.texts_to(user) == ["Q1"]


def test_line_reply_token_is_valid_once_and_limits_are_checked():
    fake = FakeLine(access_token="tok")
    with fake:
        messaging, api = _line_api(fake)
        user = line_user_id()
        token = fake.issue_reply_token(user)
        too_long = messaging.QuickReply(items=[messaging.QuickReplyItem(
            action=messaging.PostbackAction(label="x" * 21, data="a=1"))])
        with pytest.raises(messaging.ApiException) as bad:
            api.reply_message(messaging.ReplyMessageRequest(
                reply_token=token, messages=[messaging.TextMessage(text="Q1", quick_reply=too_long)]))
        assert json.loads(bad.value.body)["details"][0]["property"] == "messages[0].quickReply.items[0].action.label"

        reply = messaging.ReplyMessageRequest(reply_token=token, messages=[messaging.TextMessage(text="Q1")])
        assert api.reply_message(reply).sent_messages[0].id
        with pytest.raises(messaging.ApiException) as again:
            api.reply_message(reply)
        assert json.loads(again.value.body) == {"message": "Invalid reply token"}
        assert fake.delivered == [(user, {"type": "text", "text": "Q1"})]


def test_fail_next_429_then_success():
    fake = FakeLine(access_token="tok")
    with fake:
        messaging, api = _line_api(fake)
        fake.fail_next(429, headers={"Retry-After": "2"}, path_contains="/push")
        push = messaging.PushMessageRequest(to=line_user_id(), messages=[messaging.TextMessage(text="hi")])
        with pytest.raises(messaging.ApiException) as limited:
            api.push_message(push)
        assert limited.value.status == 429 and limited.value.headers["Retry-After"] == "2"
        api.push_message(push)
        assert [r.status for r in fake.calls("/push")] == [429, 200] and len(fake.delivered) == 1


@pytest.mark.filterwarnings("ignore:Deprecated since version v22")  # PTB's own retry_after notice
def test_telegram_bot_sends_through_the_fake_and_sees_blocks_and_rate_limits():
    telegram = pytest.importorskip("telegram")

    async def story(fake: FakeTelegram) -> None:
        async with telegram.Bot(fake.token, base_url=fake.base_url + "/bot") as bot:
            keyboard = telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("Có", callback_data="a:1")]])
            message = await bot.send_message(42, "Câu 1", reply_markup=keyboard)
            assert isinstance(message, telegram.Message) and message.reply_markup == keyboard
            with pytest.raises(telegram.error.BadRequest, match="(?i)button_data_invalid"):
                await bot.send_message(42, "x", reply_markup=telegram.InlineKeyboardMarkup(
                    [[telegram.InlineKeyboardButton("x", callback_data="é" * 33)]]))
            fake.fail_next(429, headers={"Retry-After": "3"})
            with pytest.raises(telegram.error.RetryAfter) as limited:
                await bot.send_message(42, "Câu 2")
            assert "3 seconds" in str(limited.value)  # .retry_after is an int in PTB 22, a timedelta later
            fake.block(42)
            with pytest.raises(telegram.error.Forbidden):
                await bot.send_message(42, "Câu 2")

    with FakeTelegram() as fake:
        asyncio.run(story(fake))
        assert fake.delivered == [("42", "sendMessage", {
            "chat_id": "42", "text": "Câu 1", "reply_markup": {"inline_keyboard": [[{"text": "Có", "callback_data": "a:1"}]]}})]


def test_graph_outside_the_window_only_a_human_agent_tag_gets_through():
    with FakeGraph(page_access_token="pat") as fake:
        url = f"{fake.base_url}/v21.0/me/messages"
        body = {"recipient": {"id": "123"}, "messaging_type": "UPDATE", "message": {"text": "Xin chào"}}
        assert httpx.post(url, params={"access_token": "wrong"}, json=body).json()["error"]["code"] == 190
        fake.outside_window("123")
        refused = httpx.post(url, params={"access_token": "pat"}, json=body)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == 10 and refused.json()["error"]["error_subcode"] == 2018278
        tagged = {**body, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        sent = httpx.post(url, params={"access_token": "pat"}, json=tagged)
        assert sent.status_code == 200 and sent.json()["recipient_id"] == "123"
        assert fake.delivered == [("123", {"text": "Xin chào"}, "MESSAGE_TAG", "HUMAN_AGENT")]
        fake.profiles["123"] = {"locale": "vi_VN"}
        profile = httpx.get(f"{fake.base_url}/v21.0/123", params={"fields": "locale", "access_token": "pat"})
        assert profile.json() == {"id": "123", "locale": "vi_VN"}
