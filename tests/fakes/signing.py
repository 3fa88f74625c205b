"""Signed webhook requests as LINE, Telegram and Messenger send them, and realistic event builders.

A builder of a whole request returns ``(body_bytes, headers)``; post exactly those bytes (the signature is
over the raw body)::

    body, headers = line_webhook([line_text_event(user, "xin chào", reply_token=fake.issue_reply_token(user))],
                                 channel_secret="secret")
    client.post("/webhooks/line", content=body, headers=headers)
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import secrets
import time
from typing import Any

__all__ = [
    "DEFAULT_LINE_DESTINATION", "DEFAULT_PAGE_ID", "DEFAULT_TELEGRAM_BOT_ID",
    "line_signature", "messenger_signature", "line_webhook", "telegram_webhook", "messenger_webhook",
    "line_user_id", "ulid", "line_text_event", "line_postback_event", "line_follow_event",
    "line_unfollow_event", "line_sticker_event", "telegram_user", "telegram_bot_user", "telegram_text_update",
    "telegram_callback_update", "telegram_my_chat_member_kicked", "messenger_text_event",
    "messenger_quick_reply_event", "messenger_postback_event",
]

DEFAULT_LINE_DESTINATION = "U8189cf6745fc0d808977bdb0b9f22995"  # the bot's own user id (U + 32 hex)
DEFAULT_PAGE_ID = "104365498226374"
DEFAULT_TELEGRAM_BOT_ID = 7000000001  # matches FakeTelegram's default token "7000000001:..."
DEFAULT_TELEGRAM_BOT_USERNAME = "mirai_test_bot"


def _now_ms() -> int:
    return int(time.time() * 1000)


# ---- signatures ------------------------------------------------------------------------------------


def line_signature(body: bytes, channel_secret: str) -> str:
    """``X-Line-Signature``: base64 of HMAC-SHA256 of the raw body keyed with the channel secret."""
    digest = hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def messenger_signature(body: bytes, app_secret: str) -> str:
    """``X-Hub-Signature-256``: ``sha256=`` + hex HMAC-SHA256 of the raw body keyed with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def messenger_signature_sha1(body: bytes, app_secret: str) -> str:
    """The legacy ``X-Hub-Signature`` header Meta still sends alongside the SHA-256 one."""
    return "sha1=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


# ---- whole webhook requests ------------------------------------------------------------------------


def line_webhook(
    events: list[dict[str, Any]], channel_secret: str, destination: str = DEFAULT_LINE_DESTINATION
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"destination": destination, "events": events}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")
    return body, {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "LineBotWebhook/2.0",
        "X-Line-Signature": line_signature(body, channel_secret),
    }


def telegram_webhook(update: dict[str, Any], secret_token: str | None) -> tuple[bytes, dict[str, str]]:
    """Telegram signs nothing: it sends the ``secret_token`` given to setWebhook back in a header."""
    body = json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if secret_token is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
    return body, headers


def messenger_webhook(
    events: list[dict[str, Any]], app_secret: str, page_id: str = DEFAULT_PAGE_ID
) -> tuple[bytes, dict[str, str]]:
    """``events``: messaging events (each gets its own entry, as Meta batches them) or whole entries
    (dicts with a ``messaging`` key), in any mix.

    Like Meta's own payloads the body escapes non-ASCII characters (``\\u00e0``) and slashes (``\\/``):
    a receiver that re-serialises the JSON before checking the signature fails, as it would in production.
    """
    entries = []
    for ev in events:
        if "messaging" in ev:
            entries.append(ev)
        else:
            entries.append({"id": page_id, "time": ev.get("timestamp", _now_ms()), "messaging": [ev]})
    body = json.dumps({"object": "page", "entry": entries}, ensure_ascii=True, separators=(",", ":"))
    body_bytes = body.replace("/", "\\/").encode("ascii")
    return body_bytes, {
        "Content-Type": "application/json",
        "X-Hub-Signature": messenger_signature_sha1(body_bytes, app_secret),
        "X-Hub-Signature-256": messenger_signature(body_bytes, app_secret),
    }


# ---- LINE events -----------------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_line_message_ids = itertools.count(int.from_bytes(os.urandom(3), "big") + 500_000_000_000_000_000)


def ulid(ms: int | None = None) -> str:
    """A ULID such as LINE's ``webhookEventId`` (26 Crockford base-32 characters, time-ordered)."""
    value = ((ms if ms is not None else _now_ms()) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def line_user_id() -> str:
    """A random, well-formed LINE user id (``U`` + 32 lower-case hex digits)."""
    return "U" + secrets.token_hex(16)


def _line_base(event_type: str, user_id: str, webhook_event_id: str | None, redelivery: bool,
               timestamp: int | None) -> dict[str, Any]:
    ts = timestamp if timestamp is not None else _now_ms()
    return {
        "type": event_type,
        "mode": "active",
        "timestamp": ts,
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": webhook_event_id or ulid(ts),
        "deliveryContext": {"isRedelivery": redelivery},
    }


def _reply_token(reply_token: str | None) -> str:
    return reply_token or secrets.token_hex(16)


def line_text_event(
    user_id: str, text: str, reply_token: str | None = None, webhook_event_id: str | None = None,
    redelivery: bool = False, *, message_id: str | None = None, timestamp: int | None = None,
) -> dict[str, Any]:
    """A ``message`` event with a text message. Pass ``reply_token=fake.issue_reply_token(user_id)``
    when the adapter will reply (a made-up token gets ``Invalid reply token`` from FakeLine)."""
    event = _line_base("message", user_id, webhook_event_id, redelivery, timestamp)
    event["replyToken"] = _reply_token(reply_token)
    event["message"] = {
        "type": "text",
        "id": message_id or str(next(_line_message_ids)),
        "quoteToken": "q3Plxr4AgKd" + secrets.token_urlsafe(60),
        "markAsReadToken": "30yhdy232" + secrets.token_urlsafe(30),
        "text": text,
    }
    return event


def line_postback_event(
    user_id: str, data: str, reply_token: str | None = None, webhook_event_id: str | None = None,
    redelivery: bool = False, *, params: dict[str, str] | None = None, timestamp: int | None = None,
) -> dict[str, Any]:
    event = _line_base("postback", user_id, webhook_event_id, redelivery, timestamp)
    event["replyToken"] = _reply_token(reply_token)
    event["postback"] = {"data": data}
    if params:
        event["postback"]["params"] = params
    return event


def line_follow_event(
    user_id: str, reply_token: str | None = None, webhook_event_id: str | None = None,
    redelivery: bool = False, *, is_unblocked: bool = False, timestamp: int | None = None,
) -> dict[str, Any]:
    """Added as a friend (``is_unblocked=True``: unblocked after a block)."""
    event = _line_base("follow", user_id, webhook_event_id, redelivery, timestamp)
    event["replyToken"] = _reply_token(reply_token)
    event["follow"] = {"isUnblocked": is_unblocked}
    return event


def line_unfollow_event(
    user_id: str, webhook_event_id: str | None = None, redelivery: bool = False, *, timestamp: int | None = None,
) -> dict[str, Any]:
    """Blocked the account. No reply token: nothing can be sent to this user any more."""
    return _line_base("unfollow", user_id, webhook_event_id, redelivery, timestamp)


def line_sticker_event(
    user_id: str, package_id: str = "446", sticker_id: str = "1988", reply_token: str | None = None,
    webhook_event_id: str | None = None, redelivery: bool = False, *, keywords: list[str] | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    event = _line_base("message", user_id, webhook_event_id, redelivery, timestamp)
    event["replyToken"] = _reply_token(reply_token)
    event["message"] = {
        "type": "sticker",
        "id": str(next(_line_message_ids)),
        "quoteToken": "q3Plxr4AgKd" + secrets.token_urlsafe(60),
        "markAsReadToken": "30yhdy232" + secrets.token_urlsafe(30),
        "stickerId": sticker_id,
        "packageId": package_id,
        "stickerResourceType": "STATIC",
        "keywords": keywords if keywords is not None else ["Happy", "Hello", "Hi", "greeting"],
    }
    return event


# ---- Telegram updates ------------------------------------------------------------------------------


def telegram_user(user_id: int, language_code: str | None = "vi", first_name: str = "Lan",
                  last_name: str | None = "Nguyen", username: str | None = None) -> dict[str, Any]:
    user: dict[str, Any] = {"id": int(user_id), "is_bot": False, "first_name": first_name}
    if last_name:
        user["last_name"] = last_name
    if username:
        user["username"] = username
    if language_code:
        user["language_code"] = language_code
    return user


def telegram_bot_user(bot_id: int = DEFAULT_TELEGRAM_BOT_ID, username: str = DEFAULT_TELEGRAM_BOT_USERNAME,
                      first_name: str = "Mirai") -> dict[str, Any]:
    return {"id": bot_id, "is_bot": True, "first_name": first_name, "username": username}


def _private_chat(user: dict[str, Any]) -> dict[str, Any]:
    chat = {k: user[k] for k in ("id", "first_name", "last_name", "username") if k in user}
    chat["type"] = "private"
    return chat


def telegram_text_update(
    update_id: int, chat_id: int, text: str, language_code: str | None = "vi", *,
    message_id: int | None = None, date: int | None = None, first_name: str = "Lan",
) -> dict[str, Any]:
    """A private-chat text message; a leading ``/command`` gets its ``bot_command`` entity as Telegram
    adds it."""
    user = telegram_user(chat_id, language_code, first_name=first_name)
    message: dict[str, Any] = {
        "message_id": message_id if message_id is not None else update_id % 100000 + 1,
        "from": user,
        "chat": _private_chat(user),
        "date": date if date is not None else int(time.time()),
        "text": text,
    }
    if text.startswith("/"):
        command = text.split()[0]
        message["entities"] = [{"offset": 0, "length": len(command.encode("utf-16-le")) // 2,
                                "type": "bot_command"}]
    return {"update_id": update_id, "message": message}


def telegram_callback_update(
    update_id: int, chat_id: int, data: str, message_id: int, reply_markup: dict[str, Any] | None = None,
    *, text: str = "…", language_code: str | None = "vi", bot_id: int = DEFAULT_TELEGRAM_BOT_ID,
    callback_id: str | None = None, date: int | None = None,
) -> dict[str, Any]:
    """A press on an inline button of the bot's message ``message_id`` (``reply_markup``: that message's
    ``{"inline_keyboard": [...]}``)."""
    user = telegram_user(chat_id, language_code)
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": telegram_bot_user(bot_id),
        "chat": _private_chat(user),
        "date": date if date is not None else int(time.time()) - 30,
        "text": text,
    }
    if reply_markup is not None:
        message["reply_markup"] = reply_markup
    return {
        "update_id": update_id,
        "callback_query": {
            "id": callback_id or str(int.from_bytes(os.urandom(8), "big") >> 1),
            "from": user,
            "message": message,
            "chat_instance": str(-(int.from_bytes(os.urandom(8), "big") >> 1)),
            "data": data,
        },
    }


def telegram_my_chat_member_kicked(
    update_id: int, chat_id: int, *, bot_id: int = DEFAULT_TELEGRAM_BOT_ID, date: int | None = None,
    language_code: str | None = "vi",
) -> dict[str, Any]:
    """The user blocked the bot (status ``kicked``); Telegram sends it as a ``my_chat_member`` update."""
    user = telegram_user(chat_id, language_code)
    bot = telegram_bot_user(bot_id)
    return {
        "update_id": update_id,
        "my_chat_member": {
            "chat": _private_chat(user),
            "from": user,
            "date": date if date is not None else int(time.time()),
            "old_chat_member": {"user": bot, "status": "member"},
            "new_chat_member": {"user": bot, "status": "kicked", "until_date": 0},
        },
    }


# ---- Messenger messaging events --------------------------------------------------------------------


def _mid() -> str:
    return "m_" + secrets.token_urlsafe(66)


def _messenger_base(psid: str, page_id: str, timestamp: int | None) -> dict[str, Any]:
    return {
        "sender": {"id": str(psid)},
        "recipient": {"id": page_id},
        "timestamp": timestamp if timestamp is not None else _now_ms(),
    }


def messenger_text_event(psid: str, text: str, mid: str | None = None, *, page_id: str = DEFAULT_PAGE_ID,
                         timestamp: int | None = None) -> dict[str, Any]:
    event = _messenger_base(psid, page_id, timestamp)
    event["message"] = {"mid": mid or _mid(), "text": text}
    return event


def messenger_quick_reply_event(psid: str, text: str, payload: str, mid: str | None = None, *,
                                page_id: str = DEFAULT_PAGE_ID, timestamp: int | None = None) -> dict[str, Any]:
    """A tap on a quick reply: ``text`` is the button's title, ``payload`` what the bot put in it."""
    event = _messenger_base(psid, page_id, timestamp)
    event["message"] = {"mid": mid or _mid(), "text": text, "quick_reply": {"payload": payload}}
    return event


def messenger_postback_event(psid: str, title: str, payload: str, mid: str | None = None, *,
                             page_id: str = DEFAULT_PAGE_ID, timestamp: int | None = None) -> dict[str, Any]:
    """A tap on a postback button (button template, persistent menu or Get Started)."""
    event = _messenger_base(psid, page_id, timestamp)
    event["postback"] = {"mid": mid or _mid(), "title": title, "payload": payload}
    return event
