"""A worker goes through the self-diagnosis sheet and hears what their answers mean."""
from __future__ import annotations

import pytest

from bot.flowbook import LANGUAGES
from bot.messages import OutboundKind
from tests.chat import Chat


def test_a_worker_with_no_problems_hears_that_nothing_was_found(book):
    chat = Chat(book)
    chat.through_onboarding()
    chat.safe_sheet()
    result = chat.result()
    assert result.level == "none"
    assert result.indicators == []
    assert chat.effects_of("sheet_completed")[0]["level"] == "none"
    assert not chat.effects_of("handoff"), "nobody is sent to a counsellor who did not ask"
    assert chat.question == "menu"


@pytest.mark.parametrize("item", ["3.4", "3.9"])
def test_documents_kept_or_violence_is_critical_and_a_counsellor_is_offered(book, item):
    chat = Chat(book)
    chat.through_onboarding()
    chat.press("none")  # Q1
    chat.say("0")  # Q2
    chat.press(item)  # Q3
    for _ in range(7):  # Q4..Q10, the safe way
        q = book.question(chat.question)
        chat.press("no" if q.risk_answer == "yes" else "yes")
    chat.press("none")  # Q11
    chat.press("skip")  # Q12
    chat.press("no")  # Q13: does not ask for a counsellor...
    result = chat.result()
    assert result.level == "critical"
    assert item in result.indicators
    assert chat.question == "counsellor_offer", "...but a critical result still offers one, gently"
    chat.press("yes")
    handoff = chat.effects_of("handoff")
    assert handoff and handoff[0]["priority"] == "critical"


def test_declining_the_offer_still_gives_the_desk_contacts(book):
    chat = Chat(book)
    chat.through_onboarding()
    chat.say("1")  # Q1: brought by force
    chat.say("0")
    chat.press("none")
    while chat.question != "Q11":
        q = book.question(chat.question)
        chat.press("no" if q.risk_answer == "yes" else "yes")
    chat.press("none")
    chat.press("skip")
    chat.press("no")
    assert chat.question == "counsellor_offer"
    chat.say(chat.word("no"))
    texts = " ".join(o.text for o in chat.last)
    assert "0120-279-338" in texts and "0120-76-2029" in texts
    assert not chat.effects_of("handoff")
    assert chat.question == "menu"


def test_wanting_to_consult_at_q13_hands_over_even_when_nothing_else_is_wrong(book):
    chat = Chat(book)
    chat.through_onboarding()
    for q in book.questions[:-1]:
        if q.type == "checklist":
            chat.press("none")
        elif q.type == "amount":
            chat.say("0")
        elif q.type == "free_text":
            chat.press("skip")
        else:
            chat.press("no" if q.risk_answer == "yes" else "yes")
    chat.say("yes")
    assert chat.result().level == "none"
    handoff = chat.effects_of("handoff")
    assert [h["reason"] for h in handoff] == ["q13_yes"] and handoff[0]["priority"] == "normal"


def test_a_high_fee_counts_as_debt_bondage_and_is_shown_in_yen(book):
    chat = Chat(book, "vi")
    chat.through_onboarding()
    chat.press("none")
    chat.say("80 triệu đồng")
    in_yen = round(80_000_000 * book.currencies.by_code("VND").jpy_per_unit)
    assert f"{in_yen:,}".replace(",", ".") in chat.last[0].text  # shown in yen at the dated rate, so the worker can check it
    answers = chat.effects_of("answer")
    assert answers[-1]["value"]["currency"] == "VND" and answers[-1]["raw"] == "80 triệu đồng"
    while chat.question != "Q13":
        q = book.question(chat.question)
        if q.type == "checklist":
            chat.press("none")
        elif q.type == "free_text":
            chat.press("skip")
        else:
            chat.press("no" if q.risk_answer == "yes" else "yes")
    chat.press("no")
    result = chat.result()
    assert result.level == "high" and result.indicators == ["Q2"]


def test_a_small_fee_is_a_medium_risk(book):
    chat = Chat(book)
    chat.through_onboarding()
    chat.press("none")
    chat.say("$500")
    while chat.question != "Q13":
        q = book.question(chat.question)
        if q.type == "checklist":
            chat.press("none")
        elif q.type == "free_text":
            chat.press("skip")
        else:
            chat.press("no" if q.risk_answer == "yes" else "yes")
    chat.press("no")
    assert chat.result().level == "medium"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_result_speaks_the_workers_language(book, lang):
    chat = Chat(book, lang)
    chat.through_onboarding()
    chat.press("3.9")  # not a Q1 item: asked again
    assert chat.question == "Q1"
    chat.press("1.3")
    chat.say("0")
    chat.press("none")
    while chat.question != "Q11":
        q = book.question(chat.question)
        chat.press("no" if q.risk_answer == "yes" else "yes")
    chat.press("none")
    chat.press("skip")
    chat.press("no")
    result = chat.result()
    assert result.language == lang
    assert book.indicators["physical_sexual_violence"](lang) in result.text
    assert book.t("result_level_critical", lang) in result.text


def test_the_first_question_asks_for_the_language_when_none_is_known(book):
    chat = Chat(book, lang=None)
    assert chat.question == "language"
    assert [o.id for o in chat.asking.options] == list(LANGUAGES)
    chat.say("Tiếng Việt")
    assert chat.state.language == "vi"
    assert chat.question == "consent"
    assert book.t("privacy_notice", "vi") in chat.asking.text


def test_every_question_is_asked_in_the_spec_order_with_numbered_options(book):
    chat = Chat(book)
    chat.through_onboarding()
    seen = []
    while chat.question and chat.question.startswith("Q"):
        asking = chat.asking
        seen.append(asking.question)
        for i, option in enumerate(asking.options, 1):
            assert f"{i}. {option.label}" in asking.text
        q = book.question(asking.question)
        if q.type == "checklist":
            assert asking.kind is OutboundKind.MULTISELECT and asking.options[-1].id == "none"
            assert [o.id for o in asking.options[:-1]] == [i.id for i in q.items]
            chat.press("none")
        elif q.type == "amount":
            chat.say("0")
        elif q.type == "free_text":
            assert [o.id for o in asking.options] == ["skip"]
            chat.press("skip")
        else:
            chat.press("no" if q.risk_answer == "yes" or q.id == "Q13" else "yes")
    assert seen == [f"Q{i}" for i in range(1, 14)]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_to_anything_else_after_the_result_ends_the_talk_kindly_and_yes_shows_the_menu(book, lang):
    """After the result the bot asks whether it can help with anything else. "No" gets a thank-you and the door
    left open, not a list of articles about the word "no"; "yes" gets the menu."""
    chat = Chat(book, lang)
    chat.through_onboarding()
    chat.safe_sheet()
    assert chat.question == "menu"
    goodbye = chat.say(chat.word("no"))
    assert [o.text for o in goodbye] == [book.t("goodbye", lang)]
    again = chat.say(chat.word("yes"))
    assert again[-1].question == "menu" and again[-1].kind is OutboundKind.CHOICE
