"""The first message's language is guessed offline, so the bot can greet a worker in their own words."""
from __future__ import annotations

import pytest

from nlu.data import TEST_DIR, read_examples
from nlu.langid import detect_language, resolve_language
from nlu.text import key
from nlu.training import langid_messages


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


@pytest.mark.parametrize("text, lang", [
    ("kyou wa zangyou ga arimasu ka", "ja"),  # romaji
    ("sumimasen, byouin wa doko desu ka", "ja"),
    ("thank you 谢谢你", "zh"),  # Latin words do not tell Japanese from Chinese
    ("thank you ありがとう", "ja"),
    ("thanks for the quick answer", "en"),
    ("obrigado pela ajuda", "pt"),
    ("gracias por la ayuda", "es"),
])
def test_romaji_and_mixed_scripts(text, lang):
    assert detect_language(text) == lang


@pytest.mark.parametrize("text, hint", [
    ("nihongo de onegaishimasu", "vi"),  # romaji is typed by workers of every language: no switch to kana
    ("arigatou gozaimasu", "pt"),
    ("unsubscribe", "es"),
])
def test_romaji_and_english_commands_keep_the_conversation_language(text, hint):
    assert resolve_language(text, hint) == hint


def test_the_language_identifier_corpus_holds_no_held_out_message():
    held_out = {key(e.text) for e in read_examples(TEST_DIR)}
    written = {key(t) for t, _ in langid_messages()}
    assert not written & held_out
