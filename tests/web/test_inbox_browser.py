"""A counsellor on shift works the web inbox in a real Chromium: logs in, claims a waiting conversation,
reads it with its translation, answers, and resolves it; the worker's web chat shows the answer."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from admin_api.app import create_app
from bot.settings import Settings
from tests.conftest import ARTIFACTS
from tests.fakes.libretranslate import FakeLibreTranslate
from tests.servers import serving
from tests.web.test_webchat_browser import browser  # noqa: F401 (the fixture)

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
UNPAID = "Tôi chưa được trả lương ba tháng."
UNPAID_JA = "3か月間給料が支払われていません。"
REPLY_JA = "ご相談ありがとうございます。明日お電話してもよろしいですか。"
REPLY_VI = "Cảm ơn bạn đã liên hệ. Ngày mai tôi gọi điện cho bạn được không?"


@pytest.fixture
def inbox_server(tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with FakeLibreTranslate() as libre:
        app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'inbox.db'}", translator="libre",
                                  libretranslate_url=libre.base_url, inbox_poll_seconds=0.2))
        app.state.ctx.inbox.add_user("sato", "counsellor", PASSWORD, "ja")
        with serving(app) as base:
            yield base


def web_worker_asks_for_a_person(base: str) -> str:
    user = "w" + uuid.uuid4().hex[:16]

    def post(**body: object) -> dict:
        response = httpx.post(f"{base}/api/webchat/events", json={"user_id": user, **body})
        assert response.status_code == 200, response.text
        return response.json()

    post(kind="follow", language="vi")
    post(kind="choice", choice_ids=["vi"])
    post(kind="text", text=UNPAID)
    post(kind="text", text="nói chuyện với người")
    return user


def test_a_counsellor_works_a_case_in_the_web_inbox(browser, inbox_server):  # noqa: F811
    user = web_worker_asks_for_a_person(inbox_server)
    page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="ja-JP")
    page.goto(f"{inbox_server}/inbox")
    page.fill("#name", "sato")
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    page.locator(".case").first.wait_for(timeout=10_000)
    assert "VI" in page.locator(".case").first.inner_text()

    page.locator(".case").first.click()
    page.locator('[data-a="claim"]').click()
    page.locator("#compose textarea:not([disabled])").wait_for(timeout=10_000)
    transcript = page.locator("#transcript")
    transcript.get_by_text(UNPAID_JA).wait_for(timeout=10_000)
    assert UNPAID in transcript.inner_text()

    page.fill("#compose textarea", REPLY_JA)
    page.click("#compose button[type=submit]")
    transcript.get_by_text("→ " + REPLY_VI).wait_for(timeout=10_000)
    page.fill("#note-form input", "明日電話する")
    page.click("#note-form button")
    page.locator("#notes").get_by_text("明日電話する").wait_for(timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "inbox-conversation.png"), full_page=True)

    chat = httpx.get(f"{inbox_server}/api/webchat/history", params={"user_id": user}).json()["messages"]
    assert any(m.get("pushed") and m["text"] == REPLY_VI for m in chat), "the worker's web chat shows the answer"

    page.locator('[data-a="resolve"]').click()
    page.locator('[data-f="status"]').get_by_text("resolved").wait_for(timeout=10_000)
    page.select_option("#f-status", "resolved")
    # The list reloads for the new filter: wait for the resolved case, not for whatever was shown before.
    page.locator(".case", has_text="resolved").first.wait_for(timeout=10_000)
    assert "Nothing waiting" not in page.locator("#cases").inner_text()
    page.close()


def test_a_new_case_appears_in_an_open_inbox_without_reloading(browser, inbox_server):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(f"{inbox_server}/inbox")
    page.fill("#name", "sato")
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    page.locator("#cases").get_by_text("待っている相談はありません").wait_for(timeout=10_000)
    web_worker_asks_for_a_person(inbox_server)
    page.locator(".case .badge.normal").first.wait_for(timeout=10_000)
    page.close()
