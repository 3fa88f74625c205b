"""The platform office's side: a supervisor creates a campaign through /api/campaigns, counts its audience
first, watches it go out, and cancels one planned by mistake; counsellors and strangers cannot."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from admin_api.app import create_app
from bot.flowbook import LANGUAGES
from tests.channels.conftest import channel_settings
from tests.scheduling.conftest import populate

MIRAI = str(Path(sys.executable).parent / "mirai")
PASSWORD = "a long enough password"
TEXTS = {lang: f"[{lang}] Free consultation week." for lang in LANGUAGES}


@pytest.fixture
def office(database_url, fakes):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    app = create_app(channel_settings(database_url, fakes, quiet_hours=""))
    inbox = app.state.ctx.inbox
    inbox.add_user("kimura", "supervisor", PASSWORD, "ja")
    inbox.add_user("sato", "counsellor", PASSWORD, "ja")
    with TestClient(app) as client:
        def token(name: str) -> dict[str, str]:
            answer = client.post("/api/inbox/login", json={"name": name, "password": PASSWORD}).json()
            return {"Authorization": f"Bearer {answer['token']}"}
        yield app, client, token("kimura"), token("sato")


def test_a_supervisor_counts_sends_and_follows_a_campaign(office, fakes, database_url):
    app, client, supervisor, _ = office
    vietnamese = populate(app.state.ctx.db, 20, language="vi", prefecture="23")
    populate(app.state.ctx.db, 7, language="tl", prefecture="13", start=100)

    dry = client.post("/api/campaigns", headers=supervisor, json={
        "name": "Aichi", "texts": TEXTS, "audience": {"prefectures": ["23"]}, "dry_run": True})
    assert dry.status_code == 201 and dry.json()["recipients"] == 20 and dry.json()["by_language"] == {"vi": 20}
    assert client.get("/api/campaigns", headers=supervisor).json() == [], "a dry run creates nothing"

    created = client.post("/api/campaigns", headers=supervisor, json={
        "name": "Aichi", "texts": TEXTS, "audience": {"prefectures": ["23"]}})
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    deadline = time.monotonic() + 20
    while (progress := client.get(f"/api/campaigns/{campaign_id}", headers=supervisor).json())["status"] != "done":
        assert time.monotonic() < deadline, progress
        time.sleep(0.1)
    assert (progress["sent"], progress["queued"], progress["failed"]) == (20, 0, 0)
    assert all(fakes.line.texts_to(u) == [TEXTS["vi"]] for u in vietnamese)

    shown = subprocess.run([MIRAI, "campaign", "status", str(campaign_id), "--once"], capture_output=True,
                           text=True, env={**os.environ, "DATABASE_URL": database_url}, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "100.0%" in shown.stdout and "sent 20" in shown.stdout and "(done)" in shown.stdout


def test_a_planned_campaign_can_be_cancelled_once(office):
    app, client, supervisor, _ = office
    populate(app.state.ctx.db, 3)
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    created = client.post("/api/campaigns", headers=supervisor,
                          json={"name": "later", "texts": TEXTS, "send_at": later}).json()
    assert created["status"] == "scheduled" and created["total"] == 0
    cancelled = client.post(f"/api/campaigns/{created['id']}/cancel", headers=supervisor)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/campaigns/{created['id']}/cancel", headers=supervisor)
    assert again.status_code == 409
    assert client.get("/api/campaigns/999999", headers=supervisor).status_code == 404


@pytest.mark.parametrize("body, says", [
    ({"name": "x", "texts": {k: v for k, v in TEXTS.items() if k != "my"}}, "missing in ['my']"),
    ({"name": "x", "texts": TEXTS, "audience": {"prefectures": ["99"]}}, "unknown prefectures"),
    ({"name": "x", "texts": TEXTS, "audience": {"languages": ["fr"]}}, "unknown languages"),
    ({"name": "x", "texts": TEXTS, "send_at": "2026-12-10T10:00:00"}, "time zone"),
    ({"name": "x", "texts": TEXTS, "audience": {"colour": "red"}}, "malformed"),
])
def test_a_wrong_campaign_is_refused_with_the_reason_and_creates_nothing(office, body, says):
    _, client, supervisor, _ = office
    answer = client.post("/api/campaigns", headers=supervisor, json=body)
    assert answer.status_code == 400 and says in answer.text
    assert client.get("/api/campaigns", headers=supervisor).json() == []


def test_counsellors_and_strangers_cannot_send_campaigns(office):
    _, client, _, counsellor = office
    body = {"name": "x", "texts": TEXTS}
    assert client.post("/api/campaigns", json=body).status_code == 401
    assert client.post("/api/campaigns", json=body, headers={"Authorization": "Bearer forged"}).status_code == 401
    assert client.post("/api/campaigns", json=body, headers=counsellor).status_code == 403
    assert client.get("/api/campaigns", headers=counsellor).status_code == 403
