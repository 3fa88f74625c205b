"""The same worker, in their own words, with the embedded classifier and with a real Rasa server: asks for a
person, asks about their visa, then says stop. With Rasa killed half-way, the embedded classifier answers and no
reply is lost or late."""
from __future__ import annotations

import time

import pytest

from bot.flowbook import default_flowbook
from bot.messages import InboundEvent, InboundKind
from bot.office import OfficeHours
from bot.service import ConversationService
from bot.store.db import Database
from nlu.rasa import RasaServer
from nlu.service import NluService

PERSON = "can i speak with a real human please"
VISA = "how can i extend my visa"
STOP = "please stop sending me messages"


def conversation(tmp_path, nlu: NluService) -> ConversationService:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'nlu.db'}")
    db.migrate()
    return ConversationService(db, default_flowbook(), office_hours=OfficeHours.parse("mon-sun 00:00-23:59",
                                                                                       "Asia/Tokyo"), nlu=nlu)


def to_the_menu(service: ConversationService, user: str) -> None:
    service.handle("web", user, InboundEvent(kind=InboundKind.FOLLOW, language_hint="en", language_chosen=True))
    for choice in ("agree", "skip", "skip", "skip"):
        service.handle("web", user, InboundEvent(kind=InboundKind.CHOICE, choice_ids=[choice]))
    asked = service.handle("web", user, InboundEvent(kind=InboundKind.TEXT, text="menu"))
    assert asked[-1].question == "menu"


def say(service: ConversationService, user: str, text: str):  # type: ignore[no-untyped-def]
    return service.handle("web", user, InboundEvent(kind=InboundKind.TEXT, text=text))


def the_story(service: ConversationService, book, user: str = "w1", midway=lambda: None):  # type: ignore[no-untyped-def]
    to_the_menu(service, user)
    person = say(service, user, PERSON)
    assert person[0].text == book.t("handoff_recorded", "en"), "a request for a person, understood"
    say(service, user, "menu")
    visa = say(service, user, VISA)
    assert visa[-1].question == "article_pick"
    assert {o.id for o in visa[-1].options} & {"article:changing-residence-status", "article:residence-status-and-card"}
    midway()
    started = time.monotonic()
    stopped = say(service, user, STOP)
    took = time.monotonic() - started
    assert stopped and stopped[0].text == book.t("stopped", "en"), "understood as stop: no more messages"
    return took


def test_the_story_with_the_embedded_classifier(tmp_path, book):
    service = conversation(tmp_path, NluService("embedded"))
    the_story(service, book)


def test_the_story_with_a_real_rasa_server(tmp_path, book, rasa_server):
    nlu = NluService("rasa", rasa_url=rasa_server.url, timeout=2.0)
    assert nlu.interpret(PERSON, "en").backend == "rasa"
    the_story(conversation(tmp_path, nlu), book)


def test_rasa_killed_mid_conversation_the_embedded_classifier_answers_in_time(tmp_path, book, rasa_venv, rasa_model):
    server = RasaServer(rasa_venv, rasa_model).start()
    try:
        nlu = NluService("rasa", rasa_url=server.url, timeout=1.0)
        took = the_story(conversation(tmp_path, nlu), book, midway=server.kill)
        assert took < 1.0 + 0.5, f"the reply after the kill took {took:.2f} s"
        assert nlu.interpret(STOP, "en").backend == "embedded-fallback"
    finally:
        server.stop()


@pytest.mark.parametrize("lang, person, stop", [
    ("pt", "quero falar com alguém", "pare de me mandar mensagens"),
    ("en", "I want to talk to a person", "please stop sending me messages"),
])
def test_at_the_privacy_notice_a_worker_asking_for_someone_or_to_stop_is_heard(tmp_path, book, lang, person, stop):
    """Before consenting, a worker writes in their own words that they want a person, or want no more messages:
    the bot does that rather than showing the privacy notice again."""
    service = conversation(tmp_path, NluService("embedded"))
    service.handle("web", "w-new", InboundEvent(kind=InboundKind.FOLLOW, language_hint=lang, language_chosen=True))
    asked = say(service, "w-new", person)
    assert asked[0].text == book.t("handoff_recorded", lang)
    assert asked[-1].question == "consent", "and the notice is still open for when they are ready"
    stopped = say(service, "w-new", stop)
    assert [o.text for o in stopped] == [book.t("stopped", lang)]
    nonsense = say(service, "w-new", "hello")
    assert nonsense[-1].question == "consent", "the notice is still waiting for an answer"


@pytest.mark.parametrize("lang, yes", [("id", "ya"), ("id", "iya"), ("es", "ya"), ("tl", "oo"), ("pt", "sim"),
                                       ("vi", "có"), ("en", "ok")])
def test_a_worker_who_answers_yes_where_no_yes_is_asked_is_not_taken_for_stop(tmp_path, book, lang, yes):
    """Indonesian "ya" is yes, but the classifier learned "ya" from Spanish "ya basta" as "stop". A worker who
    writes it at a list of things to tick is asked again; at the menu it means "yes, go on": never a pause."""
    service = conversation(tmp_path, NluService("embedded"))
    user = f"w-{lang}-{yes}"
    service.handle("web", user, InboundEvent(kind=InboundKind.FOLLOW, language_hint=lang, language_chosen=True))
    for choice in ("agree", "skip", "skip", "skip"):
        asked = service.handle("web", user, InboundEvent(kind=InboundKind.CHOICE, choice_ids=[choice]))
    assert asked[-1].question == "Q1", "the first question of the sheet: tick what happened"
    again = say(service, user, yes)
    assert book.t("stopped", lang) not in [o.text for o in again]
    assert again[0].text == book.t("reask_checklist", lang) and again[-1].question == "Q1"

    assert say(service, user, "menu")[-1].question == "menu"
    at_menu = say(service, user, yes)
    assert book.t("stopped", lang) not in [o.text for o in at_menu]
    assert at_menu[-1].question == "Q1", "back to the questions"


@pytest.mark.parametrize("lang, answer", [("vi", "80 man yên"), ("id", "tanggungan keluarga saja")])
def test_an_answer_the_classifier_mistakes_for_stop_gets_the_help_and_the_question_not_a_pause(
        tmp_path, book, lang, answer):
    """An answer the classifier never saw can look like "stop" to it (0.64-0.89 sure). At a question that must
    not pause the sheet and opt the worker out of check-ins: they get the help, which says how to pause, and the
    same question again. A plain request to stop still stops."""
    service = conversation(tmp_path, NluService("embedded"))
    user = f"w-{lang}"
    service.handle("web", user, InboundEvent(kind=InboundKind.FOLLOW, language_hint=lang, language_chosen=True))
    for choice in ("agree", "skip"):
        asked = service.handle("web", user, InboundEvent(kind=InboundKind.CHOICE, choice_ids=[choice]))
    assert asked[-1].question == "residence_status"
    guess = NluService("embedded").interpret(answer, lang)
    assert guess.intent == "stop" and guess.confidence >= 0.6, "the mistake this test is about"
    again = say(service, user, answer)
    assert [o.text for o in again][0] == book.t("help", lang)
    assert again[-1].question == "residence_status"
    stop = {"vi": "đừng nhắn tin cho tôi nữa", "id": "jangan kirim pesan lagi"}[lang]
    assert [o.text for o in say(service, user, stop)] == [book.t("stopped", lang)]
