"""The embedded NLU on the held-out set (nlu/test/), language by language: what the bot ships offline."""
from __future__ import annotations

import pytest

from nlu.data import LANGUAGES, TEST_DIR, read_examples
from nlu.evaluate import LanguageScore, evaluate, format_table
from nlu.service import NluService


@pytest.fixture(scope="module")
def scores() -> dict[str, LanguageScore]:
    service = NluService("embedded")
    result = evaluate(service, read_examples(TEST_DIR))
    print("\n" + format_table(result, "embedded"))
    return result


@pytest.mark.parametrize("lang", LANGUAGES)
def test_intent_accuracy_is_at_least_90_percent(scores, lang):
    s = scores[lang]
    assert s.total >= 200
    assert s.rate(s.intent_ok) >= 0.90, f"{lang}: {s.intent_ok}/{s.total}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_language_is_kept_or_recognised_in_a_conversation_at_least_97_percent(scores, lang):
    """With the worker's language as the hint, as the bot asks: English words and romaji typed by a Vietnamese
    worker keep the conversation in Vietnamese."""
    s = scores[lang]
    assert s.rate(s.lang_conv_ok) >= 0.97, f"{lang}: {s.lang_conv_ok}/{s.total}"


# Measured with the language model averaged over two shuffle seeds (nlu.training.LANGID_SEEDS): the lowest are
# en 221/227 (97.4 %), pt and es 218/224 (97.3 %): each the least count that passes: one more miss in
# any of them fails this test.
@pytest.mark.parametrize("lang", LANGUAGES)
def test_language_of_a_message_alone_is_recognised_at_least_97_percent(scores, lang):
    """Without a hint (a first message), against the language the text is written in: the worker's, except for
    the examples written entirely in another language ("unsubscribe" or the romaji "konbanwa" in the Spanish
    file), marked `text_lang` in nlu/test/ (listed in nlu/DATA.md). Unsure (None) counts as a miss."""
    s = scores[lang]
    assert s.rate(s.lang_ok) >= 0.97, f"{lang}: {s.lang_ok}/{s.total}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_change_of_language_is_noticed_despite_the_hint(scores, lang):
    """The hint is another language: the identifier is not merely echoing it."""
    s = scores[lang]
    assert s.rate(s.switch_ok) >= 0.75, f"{lang}: {s.switch_ok}/{s.total}"
