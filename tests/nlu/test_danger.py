"""Danger takes precedence over everything: cries for help in 9 languages, and everyday talk left alone."""
from __future__ import annotations

import pytest

from nlu.data import LANGUAGES, TEST_DIR, read_examples
from nlu.embedded import default_embedded
from nlu.service import NluService

DANGER = {lang: [e.text for e in read_examples(TEST_DIR / f"{lang}.yml") if e.intent == "danger"]
          for lang in LANGUAGES}
ORDINARY = {lang: [line.strip() for line in (TEST_DIR / "ordinary" / f"{lang}.txt").read_text(encoding="utf-8")
                   .splitlines() if line.strip()] for lang in LANGUAGES}


def _missed(lang: str) -> list[str]:
    return [t for t in DANGER[lang] if not default_embedded().is_danger(t)]


def _flagged(lang: str) -> list[str]:
    return [t for t in ORDINARY[lang] if default_embedded().is_danger(t)]


@pytest.mark.parametrize("text, lang", [
    ("I want to die", "en"), ("they locked me in the room", "en"), ("死にたい", "ja"), ("救命", "zh"),
    ("cứu em với", "vi"), ("tulungan niyo po ako", "tl"), ("tolong saya dipukuli bos", "id"), ("ကယ်ပါ", "my"),
    ("quero morrer", "pt"), ("me quiero morir", "es"),
])
def test_clear_cries_for_help_are_danger_whatever_the_backend_says(text, lang):
    result = NluService("embedded").interpret(text, lang)
    assert result.danger


@pytest.mark.parametrize("text", [
    "can you help me with the visa form", "my phone died", "I'm dying to see my family", "笑死我了",
    "助けてくれてありがとう", "hp aku mati lagi", "killing time before my shift",
])
def test_everyday_figures_of_speech_are_not_danger(text):
    assert not default_embedded().is_danger(text)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_danger_recall_and_everyday_false_alarms_stay_at_the_measured_level(lang):
    """Guards the level reached on the held-out lists: at least 75 % of the danger utterances of each language
    and at most 12 % of its ordinary messages flagged (measured: 184/211 caught, 27/594 flagged)."""
    missed, flagged = _missed(lang), _flagged(lang)
    assert len(missed) <= 0.25 * len(DANGER[lang]), missed
    assert len(flagged) <= 0.12 * len(ORDINARY[lang]), flagged
    assert len(ORDINARY[lang]) >= 50


# The languages where the target is not reached yet: their test is a strict xfail (it fails the suite when it passes).
SHORT_OF_TARGET = {"ja", "en", "zh", "vi", "tl", "id", "my", "pt"}


@pytest.mark.parametrize("lang", [
    pytest.param(lang, marks=pytest.mark.xfail(strict=True, reason="target not reached yet: some held-out danger "
                                               "utterances are missed or some ordinary messages flagged"))
    if lang in SHORT_OF_TARGET else lang for lang in LANGUAGES])
def test_every_danger_utterance_is_caught_and_no_ordinary_message_is_flagged(lang):
    assert not _missed(lang) and not _flagged(lang)
