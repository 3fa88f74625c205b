"""The web chat's JSON API, as the page uses it; bad requests get a clear 400 and change nothing."""
from __future__ import annotations

from sqlmodel import select

from bot.store.models import Message

USER = "a1b2c3d4e5f6a7b8c9d0"


def post(client, **body):
    return client.post("/api/webchat/events", json={"user_id": USER, **body})


def test_opening_the_page_greets_and_asks_for_consent_in_the_pages_language(client, book):
    reply = post(client, kind="follow", language="pt").json()
    assert reply["language"] == "pt"
    assert reply["messages"][-1]["question"] == "language"
    assert {n["id"] for n in reply["navigation"]} >= {"cmd:back", "cmd:skip", "cmd:menu", "cmd:help"}


def test_answers_by_button_and_by_text_move_the_sheet(client):
    post(client, kind="follow", language="en")
    assert post(client, kind="text", text="English").json()["messages"][-1]["question"] == "consent"
    assert post(client, kind="choice", choice_ids=["agree"]).json()["messages"][-1]["question"] == "employer_code"


def test_reopening_the_page_shows_the_conversation_so_far(client):
    post(client, kind="follow", language="en")
    post(client, kind="text", text="English")
    history = client.get("/api/webchat/history", params={"user_id": USER}).json()
    assert any(m["direction"] == "in" and m["text"] == "English" for m in history["messages"])


def test_malformed_requests_get_400_and_store_nothing(client, app):
    assert client.post("/api/webchat/events", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 400
    assert client.post("/api/webchat/events", json={"user_id": "short", "kind": "text"}).status_code == 400
    assert post(client, kind="teleport").status_code == 400
    assert post(client, kind="choice", choice_ids=[]).status_code == 400
    assert client.get("/api/webchat/history", params={"user_id": "../../etc"}).status_code == 400
    with app.state.ctx.db.session() as s:
        assert s.exec(select(Message)).all() == []


def test_the_chat_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/chat.js" in page.text
    assert client.get("/static/chat.js").status_code == 200
