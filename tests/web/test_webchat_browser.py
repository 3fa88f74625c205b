"""A worker on a phone does the whole sheet in the web chat, in Vietnamese, in a real Chromium."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        if os.getenv("MIRAI_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required here (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium fonts-noto-cjk fonts-noto-core)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
            "--disable-background-networking", "--disable-component-update"])
        yield b
        b.close()


def options_for(page, question: str):  # type: ignore[no-untyped-def]
    box = page.locator(f'.options[data-question="{question}"]').last
    box.locator("button:not([disabled])").first.wait_for(timeout=10_000)
    return box


def click(page, question: str, *option_ids: str) -> None:  # type: ignore[no-untyped-def]
    box = options_for(page, question)
    for option_id in option_ids:
        box.locator(f'button[data-option="{option_id}"]').click()


def type_answer(page, question: str, text: str) -> None:  # type: ignore[no-untyped-def]
    page.locator(f'.msg.bot[data-question="{question}"]').last.wait_for(timeout=10_000)
    page.fill("#input", text)
    page.click("#send")


def test_a_worker_completes_the_sheet_in_the_web_chat(browser, live_server, book):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN", is_mobile=True)
    page = context.new_page()
    page.goto(live_server)

    click(page, "language", "vi")
    click(page, "consent", "agree")
    click(page, "employer_code", "skip")
    click(page, "residence_status", "technical_intern_2")
    click(page, "prefecture", "23")
    click(page, "Q1", "1.5", "done")
    type_answer(page, "Q2", "80 triệu đồng")
    click(page, "Q3", "3.1", "3.4", "3.9")
    page.screenshot(path=str(ARTIFACTS / "webchat-q3-checklist.png"))
    click(page, "Q3", "done")
    for qid in ("Q4", "Q5", "Q6", "Q7", "Q8", "Q9", "Q10"):
        click(page, qid, "yes")
    click(page, "Q11", "none")
    type_answer(page, "Q12", "Công ty giữ hộ chiếu của tôi.")
    click(page, "Q13", "no")

    result = page.locator(".msg.result").last
    result.wait_for(timeout=10_000)
    assert result.get_attribute("data-level") == "critical"
    assert book.t("result_level_critical", "vi") in result.inner_text()
    assert book.indicators["retention_of_identity_documents"]("vi") in result.inner_text()
    click(page, "counsellor_offer", "yes")
    page.get_by_text(book.t("handoff_recorded", "vi")).last.wait_for(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "webchat-result.png"), full_page=False)

    # Closing and reopening the page shows the conversation, and navigation buttons speak Vietnamese.
    page.reload()
    page.locator(".msg.result").first.wait_for(timeout=10_000)
    assert page.locator("#navigation button").first.inner_text() == book.keywords["back"]["vi"][0]
    context.close()


def test_the_language_picker_switches_the_conversation(browser, live_server, book):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    page = context.new_page()
    page.goto(live_server)
    click(page, "language", "en")
    options_for(page, "consent")
    page.select_option("#language", "my")
    page.get_by_text(book.t("privacy_notice", "my")[:30]).last.wait_for(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "webchat-burmese.png"))
    context.close()
