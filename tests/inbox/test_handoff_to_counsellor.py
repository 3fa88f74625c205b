"""A Vietnamese worker on LINE asks for a counsellor at the end of the sheet; a Japanese counsellor claims the
conversation, reads it in Japanese, answers in Japanese, and the worker reads the answer in Vietnamese."""
from __future__ import annotations

import threading

from sqlmodel import select

from bot.store.models import HandoffRequest
from tests.channels.conftest import settled
from tests.channels.test_line import LineWorker
from tests.fakes.signing import line_text_event
from tests.inbox.conftest import Counsellor

USER = "U9d1f2e3c4b5a69788796a5b4c3d2e1f0"
PASSPORT = "Công ty giữ hộ chiếu của tôi."
PASSPORT_JA = "会社にパスポートを取り上げられています。"
UNPAID = "Tôi chưa được trả lương ba tháng."
UNPAID_JA = "3か月間給料が支払われていません。"
REPLY_JA = "ご相談ありがとうございます。明日お電話してもよろしいですか。"
REPLY_VI = "Cảm ơn bạn đã liên hệ. Ngày mai tôi gọi điện cho bạn được không?"


def worker_asks_for_a_counsellor(served, fakes, book) -> LineWorker:  # type: ignore[no-untyped-def]
    fakes.line.profiles[USER] = {"displayName": "Lan", "language": "vi"}
    worker = LineWorker(served, fakes.line, USER)
    worker.follow()
    worker.press("vi")
    worker.press("agree")
    worker.press("skip")
    worker.say("2")
    worker.say("Aichi")
    worker.say("5")
    worker.say("80 triệu")
    worker.say("4 9")
    for _ in range(7):
        worker.press("no")
    worker.press("none")
    worker.say(PASSPORT)
    told = worker.press("yes")  # Q13: "do you want to talk to a counsellor?"
    texts = [m["text"] for m in told]
    assert any(book.t("handoff_recorded", "vi") in t for t in texts)
    assert any(t.startswith(book.t("counsellors_open", "vi", hours="").split("(")[0]) for t in texts), \
        "the worker is told when counsellors answer"
    return worker


def test_a_counsellor_answers_a_vietnamese_worker_in_japanese(served, fakes, book):
    worker = worker_asks_for_a_counsellor(served, fakes, book)

    sato = Counsellor(served.client, "sato")
    queue = sato.get("/conversations")
    assert [(c["status"], c["language"], c["channel"]) for c in queue] == [("waiting", "vi", "line")]
    case_id = queue[0]["id"]
    assert queue[0]["priority"] == "critical" and "retention_of_identity_documents" in \
        " ".join(queue[0]["summary"]["indicators"]) or queue[0]["summary"]["indicators"]

    case = sato.post(f"/conversations/{case_id}/claim")
    assert case["status"] == "assigned" and case["assigned_to"] == "sato"
    shown = {m["text"]: m for m in sato.get(f"/conversations/{case_id}")["transcript"]}
    assert shown[PASSPORT]["translation"] == {"text": PASSPORT_JA, "language": "ja", "translated": True}

    before = len(fakes.line.messages_to(USER))
    sent = sato.post(f"/conversations/{case_id}/reply", json={"text": REPLY_JA})
    assert sent["text"] == REPLY_VI and sent["translated"] is True
    settled(served.db)
    assert [m["text"] for m in fakes.line.messages_to(USER)[before:]] == [REPLY_VI]

    quiet = worker.say(UNPAID)  # the counsellor holds the conversation: the bot keeps quiet
    assert quiet == []
    transcript = sato.get(f"/conversations/{case_id}")["transcript"]
    assert transcript[-1]["text"] == UNPAID and transcript[-1]["translation"]["text"] == UNPAID_JA
    assert transcript[-2]["from_counsellor"] and transcript[-2]["text"] == REPLY_JA
    assert transcript[-2]["sent_text"] == REPLY_VI

    sato.post(f"/conversations/{case_id}/notes", json={"text": "明日電話する。パスポートの件は監理団体にも確認。"})
    sato.post(f"/conversations/{case_id}/category", json={"category": "labour", "subcategory": "wages"})
    sato.post(f"/conversations/{case_id}/resolve")
    settled(served.db)
    assert fakes.line.messages_to(USER)[-1]["text"] == book.t("counsellor_closed_case", "vi")

    back = worker.say("menu")
    assert back, "after the case is resolved the bot answers again"
    assert sato.get("/conversations") == []
    resolved = sato.get("/conversations", params={"status": "resolved"})
    assert resolved[0]["category"] == "labour" and resolved[0]["subcategory"] == "wages"


def test_a_counsellor_who_reads_english_sees_english(served, fakes, book):
    worker_asks_for_a_counsellor(served, fakes, book)
    smith = Counsellor(served.client, "smith")
    case_id = smith.get("/conversations")[0]["id"]
    transcript = smith.get(f"/conversations/{case_id}")["transcript"]
    passport = next(m for m in transcript if m["text"] == PASSPORT)
    assert passport["translation"]["language"] == "en" and passport["translation"]["translated"]


def test_two_counsellors_claiming_at_the_same_moment_exactly_one_wins(served, fakes, book):
    worker_asks_for_a_counsellor(served, fakes, book)
    sato, tanaka = Counsellor(served.client, "sato"), Counsellor(served.client, "tanaka")
    case_id = sato.get("/conversations")[0]["id"]
    users = {u.name: u for u in served.inbox.users()}
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def claim(name: str) -> None:
        start.wait()
        try:
            served.inbox.claim(case_id, users[name])
            outcomes[name] = "won"
        except Exception as exc:  # noqa: BLE001 (the loser's exception is the point)
            outcomes[name] = type(exc).__name__

    threads = [threading.Thread(target=claim, args=(n,)) for n in ("sato", "tanaka")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["Conflict", "won"]
    winner = next(n for n, o in outcomes.items() if o == "won")
    loser = Counsellor(served.client, "tanaka" if winner == "sato" else "sato")
    assert loser.call("POST", f"/conversations/{case_id}/claim").status_code == 409
    assert loser.call("POST", f"/conversations/{case_id}/reply", json={"text": "こんにちは"}).status_code == 403
    with served.db.session() as s:
        assert s.exec(select(HandoffRequest)).one().assigned_to == users[winner].id


def test_when_translation_is_down_the_reply_still_goes_out_marked_untranslated(served, fakes, book, libre):
    worker_asks_for_a_counsellor(served, fakes, book)
    sato = Counsellor(served.client, "sato")
    case_id = sato.get("/conversations")[0]["id"]
    libre.down = True
    sato.post(f"/conversations/{case_id}/claim")

    sent = sato.post(f"/conversations/{case_id}/reply", json={"text": REPLY_JA})
    assert sent["translated"] is False and sent["text"] == REPLY_JA
    settled(served.db)
    assert fakes.line.messages_to(USER)[-1]["text"] == REPLY_JA, "delivered in the original rather than not at all"
    passport = next(m for m in sato.get(f"/conversations/{case_id}")["transcript"] if m["text"] == PASSPORT)
    assert passport["translation"]["translated"] is False, "shown, and marked untranslated"


def test_a_cry_for_help_reaches_the_bot_even_while_a_counsellor_holds_the_conversation(served, fakes, book):
    worker = worker_asks_for_a_counsellor(served, fakes, book)
    sato = Counsellor(served.client, "sato")
    case_id = sato.get("/conversations")[0]["id"]
    sato.post(f"/conversations/{case_id}/claim")
    answer = worker.say("cứu tôi, họ đang đánh tôi")
    assert answer and "110" in answer[0]["text"]
    case = sato.get("/conversations")[0]
    assert case["priority"] == "urgent" and case["status"] == "assigned", "the same case, now urgent"


def test_several_messages_in_one_webhook_while_a_counsellor_holds_the_conversation_all_reach_the_counsellor(
        served, fakes, book):
    """LINE puts messages written in quick succession into one webhook: they are stepped together, and each
    goes to the counsellor's transcript, none is answered by the bot."""
    worker = worker_asks_for_a_counsellor(served, fakes, book)
    sato = Counsellor(served.client, "sato")
    case_id = sato.get("/conversations")[0]["id"]
    sato.post(f"/conversations/{case_id}/claim")
    before = len(fakes.line.messages_to(USER))

    assert worker.post(line_text_event(USER, UNPAID), line_text_event(USER, PASSPORT)) == 200
    settled(served.db)

    assert fakes.line.messages_to(USER)[before:] == [], "the bot keeps quiet while the counsellor holds it"
    assert [m["text"] for m in sato.get(f"/conversations/{case_id}")["transcript"][-2:]] == [UNPAID, PASSPORT]
