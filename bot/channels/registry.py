"""The one list of messaging channels. Adding a channel: write its module, add one line here."""
from __future__ import annotations

from bot.channels.base import Channel
from bot.channels.line import LineChannel
from bot.channels.messenger import MessengerChannel
from bot.channels.telegram import TelegramChannel
from bot.settings import Settings

CHANNEL_TYPES: dict[str, type[Channel]] = {
    "line": LineChannel,
    "telegram": TelegramChannel,
    "messenger": MessengerChannel,
}


def build_channels(settings: Settings) -> dict[str, Channel]:
    """Every known channel, configured from settings (check `.enabled()` before use)."""
    return {name: cls(settings) for name, cls in CHANNEL_TYPES.items()}
