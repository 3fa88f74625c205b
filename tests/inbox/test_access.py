"""Nobody reads a worker's conversation without logging in, a stale token opens nothing, and only supervisors
read the audit trail of who read what."""
from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.inbox import _token_hash
from bot.service import utcnow
from bot.store.models import StaffToken
from tests.inbox.conftest import PASSWORD, Counsellor
from tests.inbox.test_handoff_to_counsellor import worker_asks_for_a_counsellor


def inbox_endpoints(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Every inbox endpoint, as the app documents it in its OpenAPI."""
    return [(method.upper(), path.replace("{handoff_id}", "1"))
            for path, operations in app.openapi()["paths"].items()
            if path.startswith("/api/inbox") and path != "/api/inbox/login"
            for method in operations]


def test_no_endpoint_answers_without_a_valid_token(served):
    endpoints = inbox_endpoints(served.app)
    assert len(endpoints) >= 12
    for method, path in endpoints:
        for headers in ({}, {"Authorization": "Bearer not-a-real-token"}, {"Authorization": "Basic c2F0bzp4"}):
            response = served.client.request(method, path, headers=headers, json={"text": "x", "to": "x",
                                                                                     "category": "labour"})
            assert response.status_code == 401, (method, path, headers, response.status_code)


def test_an_expired_token_is_refused(served):
    sato = Counsellor(served.client, "sato")
    assert sato.call("GET", "/me").status_code == 200
    with served.db.session() as s:
        row = s.get(StaffToken, _token_hash(sato.token))
        row.expires_at = utcnow() - timedelta(seconds=1)
        s.add(row)
    assert sato.call("GET", "/me").status_code == 401
    assert sato.call("GET", "/conversations").status_code == 401


def test_a_wrong_password_gets_no_token(served):
    response = served.client.post("/api/inbox/login", json={"name": "sato", "password": "guess-guess-guess"})
    assert response.status_code == 401 and "token" not in response.json()
    assert served.client.post("/api/inbox/login", json={"name": "nobody", "password": PASSWORD}).status_code == 401


def test_only_supervisors_read_the_audit_log_and_it_records_who_read_what(served, fakes, book):
    worker_asks_for_a_counsellor(served, fakes, book)
    sato, kimura = Counsellor(served.client, "sato"), Counsellor(served.client, "kimura")
    case_id = sato.get("/conversations")[0]["id"]
    sato.post(f"/conversations/{case_id}/claim")
    sato.get(f"/conversations/{case_id}")
    sato.post(f"/conversations/{case_id}/reply", json={"text": "こんにちは"})
    sato.post(f"/conversations/{case_id}/transfer", json={"to": "tanaka"})

    assert sato.call("GET", "/audit").status_code == 403
    entries = kimura.get("/audit")
    done = [(e["user"], e["action"], e["handoff_id"]) for e in reversed(entries) if e["handoff_id"] == case_id]
    assert done == [("sato", "claim", case_id), ("sato", "read_transcript", case_id), ("sato", "reply", case_id),
                    ("sato", "transfer", case_id)]
    assert Counsellor(served.client, "tanaka").get(f"/conversations/{case_id}")["assigned_to"] == "tanaka"


def test_malformed_requests_get_400_and_change_nothing(served, fakes, book):
    worker_asks_for_a_counsellor(served, fakes, book)
    sato = Counsellor(served.client, "sato")
    case_id = sato.get("/conversations")[0]["id"]
    sato.post(f"/conversations/{case_id}/claim")
    assert sato.call("POST", f"/conversations/{case_id}/reply", json={"txt": "x"}).status_code == 400
    assert sato.call("POST", f"/conversations/{case_id}/reply", content=b"{oops").status_code == 400
    assert sato.call("POST", f"/conversations/{case_id}/category", json={"category": "cooking"}).status_code == 400
    assert sato.call("GET", "/conversations", params={"status": "sleeping"}).status_code == 400
    assert sato.call("POST", "/conversations/99999/claim").status_code == 404
    assert [m for m in sato.get(f"/conversations/{case_id}")["transcript"] if m["from_counsellor"]] == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_administrator_adds_a_counsellor_from_the_command_line(database_url, tmp_path):
    mirai = str(Path(sys.executable).parent / "mirai")
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    added = subprocess.run([mirai, "users", "add", "yamada", "--role", "counsellor", "--password-stdin"],
                           input="a long enough password\n", capture_output=True, text=True, env=env, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    again = subprocess.run([mirai, "users", "add", "yamada", "--role", "counsellor", "--password-stdin"],
                           input="a long enough password\n", capture_output=True, text=True, env=env, cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr
    short = subprocess.run([mirai, "users", "add", "suzuki", "--role", "admin", "--password-stdin"],
                           input="short\n", capture_output=True, text=True, env=env, cwd=tmp_path)
    assert short.returncode == 2 and "10 characters" in short.stderr

    from admin_api.app import create_app
    from bot.settings import Settings
    from fastapi.testclient import TestClient

    with TestClient(create_app(Settings(database_url=database_url))) as client:
        response = client.post("/api/inbox/login", json={"name": "yamada", "password": "a long enough password"})
        assert response.status_code == 200 and response.json()["user"]["role"] == "counsellor"
