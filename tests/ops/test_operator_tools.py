"""What the person on call sees: readiness, the figures Prometheus scrapes, and `mirai doctor` in plain words."""
from __future__ import annotations

import os
import re
import time
import subprocess
import sys
from pathlib import Path

import pytest

from tests.channels.conftest import LINE_SECRET, settled
from tests.fakes.signing import line_text_event, line_webhook

MIRAI = str(Path(sys.executable).parent / "mirai")


def test_ready_only_when_the_database_answers_with_a_current_schema(served):
    assert served.client.get("/healthz").json() == {"status": "ok"}
    assert served.client.get("/readyz").status_code == 200
    served.db.engine.dispose()
    with served.db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    not_ready = served.client.get("/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["reason"] == "migrations pending"


def test_metrics_expose_webhooks_sends_queue_depth_and_waiting_handoffs(served, fakes):
    user = "U0000000000000000000000000000c003"
    body, headers = line_webhook([line_text_event(user, "talk to a person",
                                                  reply_token=fakes.line.issue_reply_token(user))], LINE_SECRET)
    assert served.client.post("/webhooks/line", content=body, headers=headers).status_code == 200
    assert served.client.post("/webhooks/line", content=body, headers=headers).status_code == 200
    forged, forged_headers = line_webhook([line_text_event(user, "x")], "not-the-secret")
    served.client.post("/webhooks/line", content=forged, headers=forged_headers)
    settled(served.db)

    text = served.client.get("/metrics").text
    figures = dict(re.findall(r"^(\w+(?:\{[^}]*\})?) (\S+)$", text, re.M))
    assert figures['mirai_webhooks_received_total{channel="line",outcome="stored"}'] == "1"
    assert figures['mirai_webhooks_received_total{channel="line",outcome="duplicate"}'] == "1"
    assert figures['mirai_webhooks_received_total{channel="line",outcome="rejected_403"}'] == "1"
    assert int(figures['mirai_sends{channel="line",status="sent"}']) >= 1
    assert figures["mirai_outbox_depth"] == "0" and figures["mirai_inbound_queue_depth"] == "0"
    assert float(figures["mirai_oldest_waiting_handoff_seconds"]) >= 0
    assert figures["mirai_scheduler_leader"] == "0", "this app was told not to run the scheduler"

    # Two apps that run the scheduler on one database: the first leads, the second stands by.
    from fastapi.testclient import TestClient

    from admin_api.app import create_app

    with_scheduler = served.app.state.ctx.settings.model_copy(update={"run_scheduler_in_process": True})
    with TestClient(create_app(with_scheduler)) as first:
        deadline = time.monotonic() + 10
        while "mirai_scheduler_leader 1" not in first.get("/metrics").text:
            assert time.monotonic() < deadline, "the first app never led"
            time.sleep(0.05)
        with TestClient(create_app(with_scheduler)) as second:
            time.sleep(0.5)
            assert re.search(r"^mirai_scheduler_leader 0$", second.get("/metrics").text, re.M)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_doctor_names_a_missing_channel_secret_and_an_unreachable_database(database_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url}
    not_migrated = subprocess.run([MIRAI, "doctor"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert not_migrated.returncode == 1 and "run `mirai migrate`" in not_migrated.stdout
    subprocess.run([MIRAI, "migrate"], check=True, capture_output=True, cwd=tmp_path, env=env)
    healthy = subprocess.run([MIRAI, "doctor"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "Nothing wrong found" in healthy.stdout

    broken = subprocess.run([MIRAI, "doctor"], capture_output=True, text=True, cwd=tmp_path, env={
        **os.environ, "DATABASE_URL": "postgresql+psycopg://mirai:secret@127.0.0.1:9/mirai",
        "LINE_CHANNEL_ACCESS_TOKEN": "token-without-its-secret"})
    assert broken.returncode == 1
    assert "cannot reach the database at postgresql+psycopg://mirai:***@127.0.0.1:9/mirai" in broken.stdout
    assert "secret" not in broken.stdout.replace("SECRET", ""), "the password is never printed"
    assert "LINE: half configured: LINE_CHANNEL_SECRET is not set" in broken.stdout
