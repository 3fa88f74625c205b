"""Telegram Bot API with python-telegram-bot: secret-checked webhooks in, messages and inline keyboards out.

Checklists are inline keyboards whose ✓ marks are toggled in place (the pressed message carries its own
keyboard, so toggling needs no stored state) and sent with "Done"."""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.sendrules import RateLimits
from bot.channels.base import (
    Channel,
    ParsedEvent,
    SendContext,
    SendOutcome,
    SendResult,
    WebhookRejected,
    constant_time_equal,
    shorten,
    split_text,
)
from bot.messages import InboundEvent, InboundKind, Outbound, OutboundKind

MAX_TEXT = 4096
MAX_CALLBACK_BYTES = 64
CHECK = "✓ "
COMMANDS = {"/stop": "stop", "/help": "help", "/menu": "menu", "/language": "change_language",
            "/back": "back", "/skip": "skip", "/person": "talk_to_person", "/delete": "delete_data"}
TELEGRAM_LANGUAGES = {"ja": "ja", "en": "en", "zh": "zh", "vi": "vi", "tl": "tl", "fil": "tl", "id": "id",
                      "my": "my", "pt": "pt", "es": "es"}


class TelegramChannel(Channel):
    name = "telegram"

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self._bot: Bot | None = None

    def _make_rate_limits(self) -> RateLimits:
        # Telegram: about 30 messages a second overall, evenly paced (no burst, so that no second ever holds
        # more), and no more than one a second in a chat (a short burst, such as a reply and the answer to a
        # button, is tolerated).
        return RateLimits(self.settings.telegram_rate_per_second, self.settings.telegram_chat_rate_per_second,
                          per_chat_burst=3, burst=1)

    def enabled(self) -> bool:
        return bool(self.settings.telegram_bot_token and self.settings.telegram_webhook_secret)

    # ----- webhooks ---------------------------------------------------------------------------------
    def parse_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> list[ParsedEvent]:
        secret = headers.get("x-telegram-bot-api-secret-token")
        if not secret:
            raise WebhookRejected(401, "missing X-Telegram-Bot-Api-Secret-Token")
        if not constant_time_equal(secret, self.settings.telegram_webhook_secret):
            raise WebhookRejected(403, "wrong secret token")
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or "update_id" not in data:
                raise ValueError("not an update")
            update = Update.de_json(data, None)
        except (ValueError, TypeError, KeyError) as exc:
            raise WebhookRejected(400, "malformed update") from exc
        parsed = self._parse_update(update, str(data["update_id"]))
        return [parsed] if parsed else []

    def _parse_update(self, update: Update, event_id: str) -> ParsedEvent | None:
        if update.message and update.message.from_user:
            msg = update.message
            user_id = str(msg.chat.id)
            hint = TELEGRAM_LANGUAGES.get((msg.from_user.language_code or "").split("-")[0].lower())
            if msg.text is not None:
                command = msg.text.strip().split()[0].split("@")[0].lower() if msg.text.strip() else ""
                if command == "/start":
                    event = InboundEvent(kind=InboundKind.FOLLOW, language_hint=hint)
                elif command in COMMANDS:
                    event = InboundEvent(kind=InboundKind.CHOICE, choice_ids=[f"cmd:{COMMANDS[command]}"])
                else:
                    event = InboundEvent(kind=InboundKind.TEXT, text=msg.text, language_hint=hint)
            elif msg.location is not None:
                event = InboundEvent(kind=InboundKind.LOCATION)
            else:
                event = InboundEvent(kind=InboundKind.MEDIA)
            return ParsedEvent(user_id=user_id, provider_event_id=event_id, event=event)
        if update.callback_query and update.callback_query.message:
            return self._parse_callback(update, event_id)
        if update.my_chat_member:
            status = update.my_chat_member.new_chat_member.status
            user_id = str(update.my_chat_member.chat.id)
            if status in ("kicked", "left"):
                return ParsedEvent(user_id=user_id, provider_event_id=event_id,
                                   event=InboundEvent(kind=InboundKind.UNFOLLOW))
        return None

    def _parse_callback(self, update: Update, event_id: str) -> ParsedEvent:
        query = update.callback_query
        assert query is not None and query.message is not None
        user_id = str(query.message.chat.id)
        data = query.data or ""
        answer = {"method": "answerCallbackQuery", "params": {"callback_query_id": query.id}}
        if data.startswith("t:"):  # a checklist toggle: redraw the keyboard, nothing for the engine yet
            markup = _keyboard_dict(query.message)
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if button.get("callback_data") == data:
                        text = button["text"]
                        button["text"] = text[len(CHECK):] if text.startswith(CHECK) else CHECK + text
            edit = {"method": "editMessageReplyMarkup",
                    "params": {"chat_id": query.message.chat.id, "message_id": query.message.message_id,
                               "reply_markup": markup}}
            return ParsedEvent(user_id=user_id, provider_event_id=event_id, local_calls=[edit, answer])
        if data == "d":  # "Done": the checked items are the answer
            checked = [b["callback_data"][2:] for row in _keyboard_dict(query.message).get("inline_keyboard", [])
                       for b in row if b.get("callback_data", "").startswith("t:") and b["text"].startswith(CHECK)]
            event = InboundEvent(kind=InboundKind.CHOICE, choice_ids=checked)
        elif data.startswith("c:"):
            event = InboundEvent(kind=InboundKind.CHOICE, choice_ids=[data[2:]])
        else:
            event = InboundEvent(kind=InboundKind.TEXT, text=data)
        return ParsedEvent(user_id=user_id, provider_event_id=event_id, event=event, local_calls=[answer])

    # ----- rendering --------------------------------------------------------------------------------
    def render(self, outbound: list[Outbound]) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []
        for out in outbound:
            pieces = split_text(out.text, MAX_TEXT)
            for piece in pieces[:-1]:
                calls.append({"method": "sendMessage", "params": {"text": piece}})
            params: dict[str, Any] = {"text": pieces[-1]}
            keyboard = self._keyboard(out)
            if keyboard:
                params["reply_markup"] = {"inline_keyboard": keyboard}
            calls.append({"method": "sendMessage", "params": params})
        return calls

    @staticmethod
    def _keyboard(out: Outbound) -> list[list[dict[str, str]]]:
        if not out.options:
            return []
        if out.kind is OutboundKind.MULTISELECT:
            rows = [[{"text": f"{i}. {shorten(o.label, 40)}", "callback_data": _data("c:" if o.id == "none" else "t:",
                                                                                        o.id)}]
                    for i, o in enumerate(out.options, 1)]
            rows.append([{"text": out.submit_label or "OK", "callback_data": "d"}])
            return rows
        short = all(len(o.label) <= 30 for o in out.options) and len(out.options) <= 10
        if short:
            return [[{"text": o.label, "callback_data": _data("c:", o.id)}] for o in out.options]
        # Long or many options: the text already numbers them; buttons carry the numbers, five to a row.
        buttons = [{"text": str(i), "callback_data": _data("c:", o.id)} for i, o in enumerate(out.options, 1)]
        return [buttons[i:i + 5] for i in range(0, len(buttons), 5)]

    # ----- sending ----------------------------------------------------------------------------------
    def _client(self) -> Bot:
        if self._bot is None:
            self._bot = Bot(self.settings.telegram_bot_token, base_url=self.settings.telegram_api_base_url)
        return self._bot

    async def send(self, payload: dict[str, Any], ctx: SendContext) -> SendResult:
        bot = self._client()
        params = dict(payload.get("params", {}))
        if payload["method"] == "sendMessage":
            params["chat_id"] = ctx.recipient
        try:
            await _call(bot, payload["method"], params)
            return SendResult(SendOutcome.SENT)
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            return SendResult(SendOutcome.RETRY, "429 too many requests", seconds)
        except Forbidden as exc:
            return SendResult(SendOutcome.UNREACHABLE, f"403 {exc.message}"[:200])
        except BadRequest as exc:
            if payload["method"] == "answerCallbackQuery" and "query is too old" in exc.message:
                return SendResult(SendOutcome.SKIPPED, "callback query too old")
            return SendResult(SendOutcome.FAILED, f"400 {exc.message}"[:200])
        except (TimedOut, NetworkError) as exc:
            return SendResult(SendOutcome.RETRY, f"network: {exc.message}"[:200])
        except TelegramError as exc:
            return SendResult(SendOutcome.RETRY, f"telegram: {exc.message}"[:200])

    async def set_webhook(self, url: str) -> bool:
        return bool(await self._client().set_webhook(
            url=url, secret_token=self.settings.telegram_webhook_secret,
            allowed_updates=["message", "callback_query", "my_chat_member"]))

    async def close(self) -> None:
        if self._bot is not None:
            await self._bot.shutdown()
            self._bot = None


async def _call(bot: Bot, method: str, params: dict[str, Any]) -> None:
    """The typed PTB method for each call we render (PTB validates and serialises them)."""
    markup = params.get("reply_markup")
    keyboard = InlineKeyboardMarkup.de_json(markup, bot) if markup else None
    if method == "sendMessage":
        await bot.send_message(chat_id=params["chat_id"], text=params["text"], reply_markup=keyboard)
    elif method == "editMessageReplyMarkup":
        await bot.edit_message_reply_markup(chat_id=params["chat_id"], message_id=params["message_id"],
                                            reply_markup=keyboard)
    elif method == "answerCallbackQuery":
        await bot.answer_callback_query(callback_query_id=params["callback_query_id"], text=params.get("text"))
    else:
        raise ValueError(f"unknown Telegram call {method!r}")


def _data(prefix: str, option_id: str) -> str:
    data = prefix + option_id
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data too long for Telegram: {data!r}")
    return data


def _keyboard_dict(message: Any) -> dict[str, Any]:
    markup = getattr(message, "reply_markup", None)
    return markup.to_dict() if markup is not None else {"inline_keyboard": []}
