"""Checklists work in plain text on every channel: numbers written the ways people write them."""
from __future__ import annotations

import pytest

from bot.flowbook import LANGUAGES
from tests.chat import Chat


def at_q3(book, lang="en") -> Chat:
    chat = Chat(book, lang)
    chat.through_onboarding()
    chat.press("none")
    chat.say("0")
    assert chat.question == "Q3"
    return chat


@pytest.mark.parametrize("typed, expected", [
    ("1 3 5", ["3.1", "3.3", "3.5"]),
    ("1,3", ["3.1", "3.3"]),
    ("１、３", ["3.1", "3.3"]),
    ("4, 9.", ["3.4", "3.9"]),
    ("2-4", ["3.2", "3.3", "3.4"]),
    ("3.4 3.9", ["3.4", "3.9"]),
    ("၄ ၉", ["3.4", "3.9"]),
    (" 9 ,4 ,9 ", ["3.4", "3.9"]),
    ("0", []),
    ("17", []),
])
def test_numbers_in_any_common_form_pick_the_items(book, typed, expected):
    chat = at_q3(book)
    chat.say(typed)
    assert chat.state.answers["Q3"] == expected
    assert chat.question == "Q4"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_none_in_each_language_means_nothing_applies(book, lang):
    for word in book.keywords["none"][lang]:
        chat = at_q3(book, lang)
        chat.say(word)
        assert chat.state.answers.get("Q3") == [], (lang, word)


@pytest.mark.parametrize("typed", ["1 99", "0 3", "3 17", "1 2 x", "banana"])
def test_numbers_out_of_range_or_mixed_with_none_are_asked_again(book, typed):
    chat = at_q3(book)
    chat.say(typed)
    assert "Q3" not in chat.state.answers
    assert chat.question == "Q3"


def test_buttons_send_item_ids(book):
    chat = at_q3(book)
    chat.press("3.9", "3.4")
    assert chat.state.answers["Q3"] == ["3.4", "3.9"]


@pytest.mark.parametrize("lang, no", [("vi", "không"), ("id", "tidak"), ("tl", "hindi"), ("tl", "wala"), ("en", "no"),
                                      ("es", "no"), ("pt", "não"), ("zh", "没有"), ("ja", "いいえ"), ("my", "မဟုတ်ပါ")])
def test_no_to_a_list_of_things_that_may_have_happened_means_none_of_them(book, lang, no):
    chat = at_q3(book, lang)
    chat.say(no)
    assert chat.question == "Q4"
    assert chat.state.answers["Q3"] == []
