"""An employer's HR manager logs in and reads their own employer's report, and nothing else: not another
employer's report, not the office statistics, and no conversation, queue or audit entry of the inbox."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT
from tests.inbox.test_access import inbox_endpoints
from tests.reports.conftest import ACME, PASSWORD, SMALL, Reader


def test_an_employer_reads_only_its_own_report(reports_app):
    acme = Reader(reports_app.client, "acme-hr")
    assert acme.get("/api/reports/me").json()["employer_code"] == ACME
    assert acme.get(f"/api/reports/employers/{ACME}").json()["respondents"] == 30
    assert acme.get(f"/api/reports/employers/{ACME.lower()}").json()["employer_code"] == ACME
    for path in (f"/api/reports/employers/{SMALL}", f"/api/reports/employers/{SMALL}.csv",
                 "/api/reports/employers/NOBODY-00", "/api/reports/office", "/api/reports/office.csv"):
        assert acme.call("GET", path).status_code == 403, path


def test_an_employer_token_opens_no_inbox_endpoint(reports_app):
    acme = Reader(reports_app.client, "acme-hr")
    endpoints = inbox_endpoints(reports_app.app)
    assert len(endpoints) >= 12
    for method, path in endpoints:
        response = acme.call(method, path, json={"text": "x", "to": "sato", "category": "labour"})
        assert response.status_code == 403, (method, path, response.status_code)


def test_supervisors_read_any_report_and_counsellors_none(reports_app):
    kimura, sato = Reader(reports_app.client, "kimura"), Reader(reports_app.client, "sato")
    assert kimura.get(f"/api/reports/employers/{ACME}").json()["respondents"] == 30
    assert kimura.get(f"/api/reports/employers/{SMALL}").json()["too_few_responses"] is True
    assert kimura.get("/api/reports/office").json()["handoffs"] == 0
    for path in (f"/api/reports/employers/{ACME}", "/api/reports/office"):
        assert sato.call("GET", path).status_code == 403
    assert reports_app.client.get(f"/api/reports/employers/{ACME}").status_code == 401


def test_a_case_cannot_be_transferred_to_an_employer_account(reports_app):
    assert "acme-hr" not in {u.name for u in reports_app.inbox.users()}


def test_report_reads_are_in_the_audit_log(reports_app):
    Reader(reports_app.client, "acme-hr").get(f"/api/reports/employers/{ACME}")
    audit = Reader(reports_app.client, "kimura").get("/api/inbox/audit").json()
    assert any(e["action"] == "read_report" and e["user"] == "acme-hr" and e["detail"] == {"employer_code": ACME}
               for e in audit)


def test_the_command_line_adds_an_employer_account(database_url):
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    added = subprocess.run([sys.executable, "-m", "bot.cli", "users", "add", "beta-hr", "--role", "employer",
                            "--employer-code", "beta-02", "--password-stdin"], input=PASSWORD + "\n", env=env,
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    assert "employer BETA-02" in added.stdout
    refused = subprocess.run([sys.executable, "-m", "bot.cli", "users", "add", "gamma-hr", "--role", "employer",
                              "--password-stdin"], input=PASSWORD + "\n", env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and "employer code" in refused.stderr
