"""Q2: the fee paid to come to Japan, read the many ways workers write it, converted with the dated table."""
from __future__ import annotations

import pytest

from bot.amounts import AmountParser
from tests.chat import Chat

# (typed, worker's language, value, currency)
WRITTEN_FORMS = [
    ("80 triệu", "vi", 80_000_000, "VND"),
    ("80 man yên", "vi", 800_000, "JPY"),  # 万 read aloud, as workers in Japan count yen
    ("50man", "id", 500_000, "JPY"),
    ("30 man yen", "tl", 300_000, "JPY"),
    ("80 trieu dong", "vi", 80_000_000, "VND"),
    ("80,000,000 VND", "vi", 80_000_000, "VND"),
    ("2 triệu 500 nghìn", "vi", 2_500_000, "VND"),
    ("2,5 triệu", "vi", 2_500_000, "VND"),
    ("80tr", "vi", 80_000_000, "VND"),
    ("$3,000", "en", 3_000, "USD"),
    ("US$ 2500", "en", 2_500, "USD"),
    ("about 200k yen", "en", 200_000, "JPY"),
    ("50万円", "ja", 500_000, "JPY"),
    ("約30万円", "ja", 300_000, "JPY"),
    ("1万5千円", "ja", 15_000, "JPY"),
    ("百万円", "ja", 1_000_000, "JPY"),
    ("￥４５０，０００", "ja", 450_000, "JPY"),
    ("五十万日元", "zh", 500_000, "JPY"),
    ("8万元", "zh", 80_000, "CNY"),
    ("3万人民币", "zh", 30_000, "CNY"),
    ("Rp 30.000.000", "id", 30_000_000, "IDR"),
    ("50 juta rupiah", "id", 50_000_000, "IDR"),
    ("kira-kira 40 juta", "id", 40_000_000, "IDR"),
    ("₱150,000", "tl", 150_000, "PHP"),
    ("1.5 million pesos", "tl", 1_500_000, "PHP"),
    ("150 libo", "tl", 150_000, "PHP"),
    ("၅၀ သိန်း", "my", 5_000_000, "MMK"),
    ("3 lakh kyat", "my", 300_000, "MMK"),
    ("သိန်း ၅၀", "my", 5_000_000, "MMK"),
    ("R$ 5.000", "pt", 5_000, "BRL"),
    ("100 mil reais", "pt", 100_000, "BRL"),
    ("3.000 dólares", "es", 3_000, "USD"),
    ("S/ 12,500", "es", 12_500, "PEN"),
    ("200.000 yenes", "es", 200_000, "JPY"),
    ("0", "en", 0, "JPY"),
]


@pytest.mark.parametrize("typed, lang, value, currency", WRITTEN_FORMS)
def test_written_amounts_are_understood(book, typed, lang, value, currency):
    amount = AmountParser(book.currencies).parse(typed, lang)
    assert amount is not None, typed
    assert (amount.value, amount.currency) == (value, currency)
    assert amount.jpy == round(value * book.currencies.by_code(currency).jpy_per_unit)
    assert amount.rate_date == book.currencies.as_of


def test_there_are_at_least_twenty_forms_across_languages_and_currencies():
    assert len(WRITTEN_FORMS) >= 20
    assert len({lang for _, lang, _, _ in WRITTEN_FORMS}) == 9
    assert len({cur for _, _, _, cur in WRITTEN_FORMS}) >= 8


def test_a_bare_number_is_taken_in_the_workers_usual_currency_and_said_back(book):
    amount = AmountParser(book.currencies).parse("5000000", "my")
    assert amount and amount.currency == "MMK" and amount.currency_assumed


@pytest.mark.parametrize("typed", ["banana", "12 bananas", "lots", "???", "my agent took it", "3 4 5 pesos dogs"])
def test_nonsense_is_asked_again_with_an_example(book, typed):
    chat = Chat(book, "pt")
    chat.through_onboarding()
    chat.press("none")
    chat.say(typed)
    assert chat.question == "Q2"
    assert "Q2" not in chat.state.answers
    assert book.t("amount_example", "pt") in chat.last[0].text


@pytest.mark.parametrize("lang", ["en", "ja", "vi", "es"])
def test_i_dont_know_is_an_allowed_answer(book, lang):
    chat = Chat(book, lang)
    chat.through_onboarding()
    chat.press("none")
    chat.say(book.keywords["unknown"][lang][0])
    assert chat.state.answers["Q2"] == "unknown"
    assert chat.question == "Q3"


def test_the_raw_text_and_the_parsed_value_are_both_kept(book):
    chat = Chat(book, "id")
    chat.through_onboarding()
    chat.press("none")
    chat.say("Rp 30.000.000")
    recorded = chat.effects_of("answer")[-1]
    assert recorded["raw"] == "Rp 30.000.000"
    assert recorded["value"]["currency"] == "IDR" and recorded["value"]["value"] == 30_000_000
