"""Workers of two employers who completed the self-diagnosis (written through the repository layer and scored
by the real scorer), consultations handled through the real inbox service, and the accounts that read them."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from admin_api.app import create_app
from bot.flowbook import FlowBook
from bot.inbox import InboxService
from bot.scoring import score
from bot.settings import Settings
from bot.store.db import Database
from bot.store.repository import ConversationRepository

PASSWORD = "correct horse battery"
ACME = "ACME-01"  # 30 workers
SMALL = "TINY-09"  # 9 workers
Q3_2026 = datetime(2026, 8, 3, 1, 0, tzinfo=UTC)
Q4_2026 = datetime(2026, 10, 12, 1, 0, tzinfo=UTC)

# What a worker with no trouble answers; each worker below changes a few answers.
ALL_WELL: dict[str, Any] = {"Q1": [], "Q2": {"amount": 0, "currency": "JPY", "jpy": 0}, "Q3": [], "Q4": "yes",
                            "Q5": "no", "Q6": "yes", "Q7": "yes", "Q8": "yes", "Q9": "yes", "Q10": "no", "Q11": [],
                            "Q12": "", "Q13": "no"}


@dataclass
class Worker:
    user_id: str
    answers: dict[str, Any]
    completed_at: datetime
    language: str = "vi"
    residence_status: str | None = "technical_intern_2"
    prefecture: str | None = "23"


def complete_sheets(db: Database, book: FlowBook, employer_code: str, workers: list[Worker]) -> None:
    """Each worker gives their employer code, answers the 13 questions and completes the sheet, as the
    conversation service would record it."""
    for w in workers:
        with db.session() as s:
            repo = ConversationRepository(s)
            worker = repo.worker_for_update("line", w.user_id, w.language, w.completed_at - timedelta(minutes=10))
            worker.employer_code, worker.residence_status, worker.prefecture = \
                employer_code, w.residence_status, w.prefecture
            worker.consent, worker.consent_at = True, w.completed_at - timedelta(minutes=10)
            s.add(worker)
            s.flush()
            repo.start_session(worker, w.completed_at - timedelta(minutes=8))
            for question_id, value in w.answers.items():
                repo.record_answer(worker, question_id, value, str(value), w.completed_at - timedelta(minutes=1))
            result = score(book, w.answers)
            repo.complete_session(worker, result.level, result.indicator_ids,
                                  [f.model_dump() for f in result.findings], w.answers["Q2"].get("jpy"),
                                  w.completed_at)
            repo.write_new_rows()


def acme_workers() -> list[Worker]:
    """30 workers at ACME: 14 answered in 2026-Q3, 16 in 2026-Q4. Two of them (both in Q4) say their passport
    is kept by someone else; many work long overtime; about half were not told the job conditions."""
    workers = []
    for i in range(30):
        answers = dict(ALL_WELL)
        if i % 2 == 0:
            answers["Q4"] = "no"  # not told the conditions before starting (deception, medium)
        if i % 3 != 0:
            answers["Q11"] = ["11.1"]  # overtime beyond 45 hours
        if i % 5 == 0:
            answers["Q2"] = {"amount": 6000, "currency": "USD", "jpy": 900_000}
        if i in (20, 27):
            answers["Q3"] = ["3.4"]  # passport kept: the rare answer that must stay hidden
        moment = (Q3_2026 if i < 14 else Q4_2026) + timedelta(hours=i)
        workers.append(Worker(f"U-acme-{i:02d}", answers, moment, language=("vi", "id", "my", "tl")[i % 4]))
    return workers


def small_workers() -> list[Worker]:
    return [Worker(f"U-tiny-{i}", {**ALL_WELL, "Q3": ["3.4"] if i == 0 else []}, Q4_2026 + timedelta(hours=i))
            for i in range(9)]


def report_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, office_hours="mon-sun 00:00-23:59", run_workers_in_process=False)


def add_accounts(inbox: InboxService) -> None:
    inbox.add_user("sato", "counsellor", PASSWORD, "ja")
    inbox.add_user("kimura", "supervisor", PASSWORD, "ja")
    inbox.add_user("acme-hr", "employer", PASSWORD, "ja", employer_code=ACME)
    inbox.add_user("tiny-hr", "employer", PASSWORD, "ja", employer_code=SMALL)


@pytest.fixture
def reports_app(database_url: str, book: FlowBook) -> Iterator[SimpleNamespace]:
    from fastapi.testclient import TestClient

    app = create_app(report_settings(database_url))
    ctx = app.state.ctx
    add_accounts(ctx.inbox)
    complete_sheets(ctx.db, book, ACME, acme_workers())
    complete_sheets(ctx.db, book, SMALL, small_workers())
    with TestClient(app) as client:
        yield SimpleNamespace(app=app, client=client, db=ctx.db, inbox=ctx.inbox)


class Reader:
    """Someone who logs in and reads reports with their own token."""

    def __init__(self, client, name: str) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        response = client.post("/api/inbox/login", json={"name": name, "password": PASSWORD})
        assert response.status_code == 200, response.text
        self.headers = {"Authorization": f"Bearer {response.json()['token']}"}

    def call(self, method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.client.request(method, path, headers=self.headers, **kwargs)

    def get(self, path: str, **kwargs):  # type: ignore[no-untyped-def]
        response = self.call("GET", path, **kwargs)
        assert response.status_code == 200, response.text
        return response
