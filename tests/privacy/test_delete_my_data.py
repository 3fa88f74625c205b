"""A worker can say "delete my data" in their own language at any time. After one confirmation they are told
their data is being deleted, the message reaches them, and then nothing that was theirs is left: not what they
wrote, not their answers, not the counsellor's notes about them, not their LINE id. Totals without names stay."""
from __future__ import annotations

import re

import pytest
from sqlmodel import select

from bot.engine import COMMANDS
from bot.flowbook import LANGUAGES
from bot.service import ConversationService
from bot.store.models import DiagnosisResult, HandoffRequest, OutboxMessage, Worker
from nlu.service import NluService
from tests.channels.conftest import fakes, settled  # noqa: F401 (fixtures)
from tests.chat import Chat
from tests.inbox.conftest import Counsellor, inbox_settings, libre, served  # noqa: F401 (fixtures)
from tests.inbox.test_handoff_to_counsellor import (
    PASSPORT,
    REPLY_JA,
    REPLY_VI,
    UNPAID,
    USER,
    worker_asks_for_a_counsellor,
)
from tests.privacy.conftest import Clock, ServiceWorker, every_stored_value, raw_database_bytes

NOTE = "明日電話する。パスポートの件は監理団体にも確認。"
DISPLAY_NAME = re.compile(r"\bLan\b")  # the worker's LINE display name, as the fake LINE profile gives it


def test_a_vietnamese_worker_on_line_is_forgotten_after_talking_to_a_counsellor(served, fakes, book):
    worker = worker_asks_for_a_counsellor(served, fakes, book)
    sato = Counsellor(served.client, "sato")
    case_id = sato.get("/conversations")[0]["id"]
    sato.post(f"/conversations/{case_id}/claim")
    sato.post(f"/conversations/{case_id}/reply", json={"text": REPLY_JA})
    sato.post(f"/conversations/{case_id}/notes", json={"text": NOTE})
    worker.say(UNPAID)  # the counsellor holds the conversation: this one is for them

    asked = worker.say("xóa dữ liệu của tôi")  # even while a counsellor holds the conversation
    assert asked[-1]["text"].startswith(book.t("erase_confirm", "vi"))
    told = worker.press("erase_yes")
    assert [m["text"] for m in told] == [book.t("erase_done", "vi")], "the last words reach the worker"
    settled(served.db)

    secrets = [USER, PASSPORT, UNPAID, REPLY_JA, REPLY_VI, NOTE, "80 triệu", "xóa dữ liệu"]
    stored = every_stored_value(served.db)
    for secret in secrets:
        assert not [v for v in stored if secret in v], f"{secret!r} is still stored"
    assert not [v for v in stored if DISPLAY_NAME.search(v)]

    with served.db.session() as s:
        (erased,) = s.exec(select(Worker)).all()
        results = s.exec(select(DiagnosisResult)).all()
        handoffs = s.exec(select(HandoffRequest)).all()
        last_words = s.exec(select(OutboxMessage).where(OutboxMessage.source == "erasure")).all()
    assert erased.channel_user_id.startswith("erased:") and not erased.reachable and erased.opted_out
    assert erased.employer_code is None and erased.prefecture is None and erased.residence_status is None
    assert [(r.level, r.worker_id) for r in results] == [("critical", erased.id)], "the totals keep the result"
    assert results[0].indicators, "with its indicators"
    assert [(h.status, h.summary) for h in handoffs] == [("resolved", {})]
    assert last_words and all(r.status == "sent" and r.recipient == "erased:" and r.payload == {} for r in last_words)
    assert sato.get("/conversations", params={"status": "waiting"}) == []

    if served.db.url.startswith("sqlite"):
        raw = raw_database_bytes(served.db)
        for secret in secrets:
            assert secret.encode() not in raw, f"{secret!r} is in the database file"

    again = worker.say("xin chào")  # a new person: welcomed, asked for consent again
    assert again[0]["text"] == book.t("welcome", "vi")
    with served.db.session() as s:
        newcomer = s.exec(select(Worker).where(Worker.channel_user_id == USER)).one()
    assert newcomer.id != erased.id and newcomer.consent is None


def test_a_portuguese_worker_in_the_web_chat_confirms_and_only_nameless_totals_stay(database, book):
    service = ConversationService(database, book, clock=Clock())
    worker = ServiceWorker(service, "web-pt-4411")
    worker.follow("pt")
    worker.sheet_with_free_text(book, "O meu chefe ficou com o meu passaporte")
    worker.say("Apagar os meus dados")
    assert worker.question == "erase_confirm"
    told = worker.say("sim")
    assert [o.text for o in told] == [book.t("erase_done", "pt")]
    assert service.history("web", "web-pt-4411") == []

    stored = every_stored_value(database)
    for secret in ("web-pt-4411", "passaporte", "Apagar os meus dados"):
        assert not [v for v in stored if secret in v], f"{secret!r} is still stored"
    with database.session() as s:
        (result,) = s.exec(select(DiagnosisResult)).all()
        (erased,) = s.exec(select(Worker)).all()
    assert result.worker_id == erased.id and erased.channel_user_id.startswith("erased:"), \
        "the result still counts, linked to nobody"


def test_the_classifier_does_not_keep_an_erased_workers_words_in_memory_either(database, book):
    nlu = NluService()
    service = ConversationService(database, book, clock=Clock(), nlu=nlu)
    worker = ServiceWorker(service, "web-pt-5522")
    worker.follow("pt")
    worker.say("O meu chefe bateu-me")
    assert nlu.short_texts_remembered > 0
    worker.say("Apagar os meus dados")
    worker.say("sim")
    assert nlu.short_texts_remembered == 0


def test_saying_no_keeps_everything_and_goes_back_to_the_question(book):
    chat = Chat(book, "es")
    chat.through_onboarding()
    chat.press("none")  # Q1
    assert chat.question == "Q2"
    chat.say("borrar mis datos")
    assert chat.question == "erase_confirm" and chat.effects_of("erase") == []
    chat.press("erase_no")
    assert chat.last[0].text == book.t("erase_cancelled", "es")
    assert chat.question == "Q2" and chat.effects_of("erase") == []
    assert chat.state.answers == {"Q1": []}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_words_for_delete_my_data_ask_for_confirmation_in_every_language(book, lang):
    chat = Chat(book, lang)
    chat.through_onboarding()
    for words in book.keywords["delete_data"][lang]:
        chat.say(words)
        assert chat.question == "erase_confirm", (lang, words)
        assert [o.label for o in chat.asking.options] == [book.t("option_erase_yes", lang),
                                                          book.t("option_erase_no", lang)]
    chat.press("erase_yes")
    assert chat.effects_of("erase") == [{}]
    assert chat.last[0].text == book.t("erase_done", lang)


def test_telegram_has_a_delete_command():
    from bot.channels.telegram import COMMANDS as TELEGRAM_COMMANDS

    assert TELEGRAM_COMMANDS["/delete"] == "delete_data" and "delete_data" in COMMANDS


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_privacy_notice_tells_the_words_that_delete_and_how_long_text_is_kept(book, lang):
    notice = book.t("privacy_notice", lang)
    assert any(words in notice for words in book.keywords["delete_data"][lang]), lang
