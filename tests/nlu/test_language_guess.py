"""The first message's language is guessed offline, so the bot can greet a worker in their own words."""
from __future__ import annotations

import pytest

from nlu.langid import detect_language


@pytest.mark.parametrize("text, lang", [
    ("こんにちは、相談したいです", "ja"),
    ("给料が払われない", "ja"),
    ("我的工资没有发", "zh"),
    ("Xin chào, tôi cần giúp đỡ", "vi"),
    ("xin chao toi khong hieu", "vi"),
    ("Magandang umaga po", "tl"),
    ("Halo, saya mau tanya", "id"),
    ("မင်္ဂလာပါ", "my"),
    ("Olá, tudo bem?", "pt"),
    ("Hola, buenos días", "es"),
    ("Hello, I need help", "en"),
])
def test_short_greetings_are_recognised(text, lang):
    assert detect_language(text) == lang


@pytest.mark.parametrize("text", ["", "123", "😀", "ok"])
def test_unsure_guesses_are_left_to_the_worker(text):
    assert detect_language(text) is None
