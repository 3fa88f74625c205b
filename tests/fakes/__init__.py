"""Fake messaging providers (LINE, Telegram, Messenger) and signed webhook builders for channel tests.

Recorded webhook bodies live in ``tests/fixtures/<channel>/<name>.json``; ``load_fixture`` reads one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .providers import FakeGraph, FakeLine, FakeProvider, FakeTelegram, Recorded
from .signing import line_webhook, messenger_webhook, telegram_webhook

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_path(channel: str, name: str) -> Path:
    return FIXTURES / channel / (name if name.endswith(".json") else f"{name}.json")


def load_fixture(channel: str, name: str) -> Any:
    """``load_fixture("line", "text_message")`` -> the recorded webhook body as a dict."""
    return json.loads(fixture_path(channel, name).read_text(encoding="utf-8"))


__all__ = [
    "FIXTURES", "FakeGraph", "FakeLine", "FakeProvider", "FakeTelegram", "Recorded", "fixture_path",
    "line_webhook", "load_fixture", "messenger_webhook", "telegram_webhook",
]
