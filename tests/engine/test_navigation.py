"""A worker moves around the sheet: back, skip, stop and resume, menu, help, another language, a person."""
from __future__ import annotations

import pytest

from bot.flowbook import LANGUAGES
from tests.chat import Chat


def at_q4(book, lang="en") -> Chat:
    chat = Chat(book, lang)
    chat.through_onboarding()
    chat.press("1.5")
    chat.say("50万円")
    chat.press("3.2")
    assert chat.question == "Q4"
    return chat


@pytest.mark.parametrize("lang", LANGUAGES)
def test_back_returns_to_the_previous_question_and_a_new_answer_replaces_the_old(book, lang):
    chat = at_q4(book, lang)
    chat.say(chat.word("back"))
    assert chat.question == "Q3"
    chat.say("1")
    assert chat.question == "Q4"
    assert chat.state.answers["Q3"] == ["3.1"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_skip_moves_on_and_records_the_question_as_skipped(book, lang):
    chat = at_q4(book, lang)
    chat.say(chat.word("skip"))
    assert chat.question == "Q5"
    assert chat.state.answers["Q4"] == "skipped"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_stop_pauses_and_any_later_message_resumes_at_the_same_question(book, lang):
    chat = at_q4(book, lang)
    chat.say(chat.word("stop"))
    assert chat.state.paused and chat.question is None
    assert chat.effects_of("opt_out")[-1]["value"] is True
    chat.say("hello?")
    assert chat.question == "Q4"
    assert book.t("welcome_back", lang) in chat.last[0].text
    assert chat.state.answers["Q2"]["jpy"] == 500_000, "answers given before the pause are kept"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_menu_offers_to_continue_where_the_worker_was(book, lang):
    chat = at_q4(book, lang)
    chat.say(chat.word("menu"))
    assert chat.question == "menu"
    assert [o.id for o in chat.asking.options][:2] == ["continue", "restart"]
    chat.press("continue")
    assert chat.question == "Q4"


def test_restarting_from_the_menu_begins_a_new_sheet(book):
    chat = at_q4(book)
    chat.press("cmd:menu")
    chat.press("restart")
    assert chat.question == "Q1" and chat.state.answers == {}
    assert chat.effects_of("sheet_abandoned")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_help_explains_and_asks_the_same_question_again(book, lang):
    chat = at_q4(book, lang)
    chat.say(chat.word("help"))
    assert book.t("help", lang) in chat.last[0].text
    assert chat.question == "Q4"


def test_changing_language_mid_sheet_asks_the_same_question_in_the_new_language(book):
    chat = at_q4(book, "en")
    chat.say("language")
    assert chat.question == "language"
    chat.say("5")  # Tagalog
    assert chat.state.language == "tl"
    assert chat.question == "Q4"
    assert book.question("Q4").text("tl") in chat.asking.text


def test_the_web_pages_language_picker_switches_at_once(book):
    chat = at_q4(book, "en")
    chat.press("set_language:my")
    assert chat.question == "Q4"
    assert book.question("Q4").text("my") in chat.asking.text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_asking_for_a_person_records_a_handoff_and_the_sheet_goes_on(book, lang):
    chat = at_q4(book, lang)
    chat.say(chat.word("talk_to_person"))
    assert chat.effects_of("handoff") == [{"priority": "normal", "reason": "asked", "language": lang}]
    assert book.t("handoff_recorded", lang) in chat.last[0].text
    assert chat.question == "Q4"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_danger_words_interrupt_everything_with_emergency_numbers_and_an_urgent_case(book, lang):
    chat = at_q4(book, lang)
    phrase = book.keywords["danger"][lang][0]
    chat.say(f"{phrase}")
    assert chat.effects_of("handoff")[0]["priority"] == "urgent"
    assert "110" in chat.last[0].text and "119" in chat.last[0].text
    assert "Q4" not in chat.state.answers, "a cry for help is never taken as an answer"
    chat.say(chat.word("yes"))
    assert chat.state.answers["Q4"] == "yes", "the sheet is still there afterwards"


def test_buttons_for_commands_work_like_the_words(book):
    chat = at_q4(book)
    chat.press("cmd:back")
    assert chat.question == "Q3"
    chat.press("cmd:skip")
    assert chat.question == "Q4"


def test_back_at_the_first_step_says_so(book):
    chat = Chat(book, None)
    chat.say("back")
    assert book.t("at_first_question", "en") in chat.last[0].text
    assert chat.question == "language"


def test_consent_cannot_be_skipped_and_declining_stores_no_answers(book):
    chat = Chat(book)
    chat.say("skip")
    assert chat.question == "consent"
    chat.press("decline")
    assert chat.question == "menu"
    chat.press("start")
    assert chat.question == "consent", "the sheet starts only after agreement"
    assert not chat.effects_of("answer")


def test_optional_onboarding_answers_are_kept_on_the_worker(book):
    chat = Chat(book, "ja")
    chat.press("agree")
    chat.say("abc-123")
    assert chat.question == "residence_status"
    chat.say("特定技能1号")
    chat.say("愛知")
    assert chat.question == "Q1"
    profile = {k: v for e in chat.effects_of("profile") for k, v in e.items()}
    assert profile == {"language": "ja", "consent": True, "employer_code": "ABC-123", "residence_status": "specified_skilled_1",
                       "prefecture": "23"}


def test_a_code_that_is_not_a_code_is_asked_again(book):
    chat = Chat(book)
    chat.press("agree")
    chat.say("my company is bad")
    assert chat.question == "employer_code"
    assert book.t("employer_code_invalid", "en") in chat.last[0].text


def test_stickers_and_photos_get_a_polite_answer_and_the_same_question(book):
    from bot.messages import InboundEvent, InboundKind

    chat = at_q4(book, "id")
    chat.event(InboundEvent(kind=InboundKind.MEDIA))
    assert book.t("media_not_understood", "id") in chat.last[0].text
    assert chat.question == "Q4"


def test_writing_in_a_language_at_the_language_question_chooses_it(book):
    from bot.messages import InboundEvent, InboundKind

    chat = Chat(book, None)
    chat.event(InboundEvent(kind=InboundKind.TEXT, text="Xin chào", detected_language="vi"))
    assert chat.state.language == "vi" and chat.question == "consent"


@pytest.mark.parametrize("lang, typed, status", [
    ("vi", "thực tập sinh kỹ năng 1", "technical_intern_1"),
    ("vi", "thuc tap ky nang so 2", "technical_intern_2"),
    ("id", "magang 3", "technical_intern_3"),
    ("id", "Ginou Jisshu 1", "technical_intern_1"),
    ("id", "tokutei ginou 2", "specified_skilled_2"),
    ("en", "technical intern training 2", "technical_intern_2"),
    ("tl", "TITP 1", "technical_intern_1"),
    ("zh", "实习生2号", "technical_intern_2"),
    ("ja", "技能実習 3号", "technical_intern_3"),
    ("pt", "estagio tecnico 1", "technical_intern_1"),
    ("es", "SSW 1", "specified_skilled_1"),
])
def test_a_residence_status_typed_the_way_workers_say_it_is_understood(book, lang, typed, status):
    """Nobody types "Thực tập kỹ năng số 1" letter for letter: the word workers use ("thực tập sinh"), no accents,
    no "số", a digit for the Roman numeral, or the Japanese name in Latin letters is enough."""
    chat = Chat(book, lang)
    chat.press("agree")
    chat.press("skip")
    assert chat.question == "residence_status"
    chat.say(typed)
    assert chat.question == "prefecture", f"{typed!r} was not understood"
    assert {k: v for e in chat.effects_of("profile") for k, v in e.items()}["residence_status"] == status


def test_a_status_named_without_its_number_is_asked_again_not_guessed(book):
    chat = Chat(book, "en")
    chat.press("agree")
    chat.press("skip")
    chat.say("technical intern training")
    assert chat.question == "residence_status"
    assert "residence_status" not in {k for e in chat.effects_of("profile") for k in e}


@pytest.mark.parametrize("lang, nothing", [("vi", "không"), ("id", "tidak ada"), ("en", "nothing"), ("ja", "いいえ")])
def test_no_at_the_question_about_other_troubles_is_nothing_to_tell_not_a_story(book, lang, nothing):
    """Q12 asks for other troubles in the worker's own words; "no" there is not a story for a counsellor to read."""
    from tests.engine.test_bad_input import chat_at

    chat = chat_at(book, "Q12")
    chat.state.language = lang
    chat.say(nothing)
    assert chat.question == "Q13"
    assert chat.state.answers["Q12"] == "skipped"
