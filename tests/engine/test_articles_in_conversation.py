"""A worker asks the bot about life and work in Japan in their own words and reads the article that answers it;
after the sheet the bot points to the articles about what they answered."""
from __future__ import annotations

from bot.articles import default_library
from bot.messages import InboundEvent, InboundKind
from nlu.service import NluService
from tests.chat import Chat


def at_menu(book, lang: str) -> Chat:  # type: ignore[no-untyped-def]
    chat = Chat(book, lang)
    chat.through_onboarding()
    chat.say(chat.word("menu"))
    assert chat.question == "menu"
    return chat


def test_a_vietnamese_worker_asks_about_unpaid_wages_and_reads_the_article(book):
    chat = at_menu(book, "vi")
    chat.press("articles")
    assert chat.question == "article_question"
    offer = chat.say("công ty không trả lương 2 tháng rồi")[-1]
    assert offer.question == "article_pick"
    assert offer.options[0].id == "article:unpaid-wages"
    assert len(offer.options) <= 4 and offer.options[-1].id == "back_to_menu"
    full = chat.say("1")
    assert "Văn phòng Giám sát Tiêu chuẩn Lao động" in full[0].text
    assert book.t("article_sources", "vi") in full[0].text and "https://" in full[0].text
    assert chat.question == "article_pick", "the other articles stay on offer"
    chat.press("back_to_menu")
    assert chat.question == "menu"


def test_a_question_typed_at_the_menu_is_searched_in_burmese(book):
    chat = at_menu(book, "my")
    offer = chat.say("ဗီဇာ သက်တမ်းတိုးချင်တယ်")[-1]
    assert offer.question == "article_pick"
    assert {o.id for o in offer.options} & {"article:changing-residence-status", "article:residence-status-and-card"}


def test_after_a_result_with_unpaid_wages_the_wages_articles_are_recommended(book):
    chat = Chat(book, "en")
    chat.through_onboarding()
    for q in book.questions:
        if q.id == "Q3":
            chat.press("3.2")  # "my wages were not paid"
        elif q.type == "checklist":
            chat.press("none")
        elif q.type == "amount":
            chat.say("0")
        elif q.type == "free_text":
            chat.press("skip")
        else:
            chat.press("no" if q.risk_answer == "yes" or q.id == "Q13" else "yes")
    assert "3.2" in chat.result().indicators
    recommended = [o.text for o in chat.transcript if o.text.startswith(book.t("articles_recommended", "en"))]
    assert recommended, "the articles about unpaid wages are pointed to after the result"
    first = recommended[-1].splitlines()[1]
    assert first == "• " + default_library().get("unpaid-wages").title("en")


def test_the_nlu_sends_a_worker_who_asks_for_a_person_to_a_counsellor(book):
    chat = at_menu(book, "en")
    understood = NluService().interpret("can i speak with a real human please", "en")
    assert understood.intent == "talk_to_person"
    chat.event(InboundEvent(kind=InboundKind.TEXT, text="can i speak with a real human please",
                            intent=understood.intent, intent_confidence=understood.confidence))
    assert chat.effects_of("handoff"), "a request for a person is recorded"
