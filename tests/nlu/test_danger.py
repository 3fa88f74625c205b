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
def test_every_danger_utterance_is_caught_and_no_ordinary_message_is_flagged(lang):
    """The held-out lists (nlu/test/<lang>.yml's danger intent, nlu/test/ordinary/<lang>.txt): every danger
    utterance caught and no ordinary message flagged, with at least 50 ordinary messages per language (measured:
    211/211 caught, 0/594 flagged)."""
    assert len(ORDINARY[lang]) >= 50
    assert not _missed(lang), _missed(lang)
    assert not _flagged(lang), _flagged(lang)


@pytest.mark.parametrize("text", [
    "từ từ thôi", "dạo này bận quá", "em bị cảm, sổ mũi", "tô cansada, só quero dormir", "patayin mo ang ilaw",
    "meeting pukul 3 sore", "in the game he stabbed me lol", "the news said a man was stabbed", "matei uma barata",
    "有事打我电话", "部屋の鍵をなくした", "ayúdame a llenar el formulario", "tulungan mo ako mag-fill up ng form",
])
def test_words_that_only_look_like_danger_in_another_language_or_a_frame_are_not_danger(text):
    assert not default_embedded().is_danger(text)


@pytest.mark.parametrize("text", [
    "em sợ lắm, nó cầm dao", "bị chồng đánh", "e muon tu tu", "he's hitting me, this is not a joke",
    "ngar thay tot mal", "私を助けて", "殴られた、冗談じゃない", "socorro, me machucando", "cứu em với",
])
def test_danger_written_loosely_is_still_danger(text):
    assert default_embedded().is_danger(text)


def test_in_a_conversation_an_everyday_help_me_goes_on_and_a_cry_for_help_reaches_a_person(tmp_path, book):
    """The engine's own danger phrases ("help me") also occur in everyday requests: with the NLU reading the
    message, its detector decides, so a worker asking for help with a form is not treated as an emergency."""
    from tests.nlu.test_conversation_with_each_backend import conversation, say, to_the_menu

    service = conversation(tmp_path, NluService("embedded"))
    to_the_menu(service, "w-form")
    form = say(service, "w-form", "can you help me with the visa form")
    assert all(book.t("danger", "en", helplines=book.helpline_text("en")) != o.text for o in form)
    assert form[-1].question != "counsellor_offer"

    to_the_menu(service, "w-hit")
    cry = say(service, "w-hit", "help me they are hitting me")
    assert cry[0].text == book.t("danger", "en", helplines=book.helpline_text("en"))


BLIND_DIR = TEST_DIR.parent / "blind"


def _blind(kind: str, lang: str) -> list[str]:
    return [line.strip() for line in (BLIND_DIR / kind / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
            if line.strip()]


def test_on_the_blind_lists_the_detector_stays_at_the_level_measured_there():
    """nlu/blind/ was written without seeing the detector or the other lists (see its README), so it shows how
    the detector does on messages nobody tuned it for: far from perfect, and the figure to improve. Measured
    2026-11-24: 215/270 caught (79.6 %), 20/540 ordinary messages flagged (3.7 %)."""
    detector = default_embedded()
    caught = sum(detector.is_danger(t) for lang in LANGUAGES for t in _blind("danger", lang))
    flagged = sum(detector.is_danger(t) for lang in LANGUAGES for t in _blind("ordinary", lang))
    assert sum(len(_blind("danger", lang)) for lang in LANGUAGES) == 270
    assert sum(len(_blind("ordinary", lang)) for lang in LANGUAGES) == 540
    assert caught >= 210, f"{caught}/270 caught"
    assert flagged <= 24, f"{flagged}/540 flagged"
