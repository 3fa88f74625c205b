"""The scheduler: APScheduler with its jobs kept in the application database, active in exactly one process.

Any number of processes may run it (`mirai serve` does by default, `mirai scheduler` runs it alone); each
tries to become the leader (a PostgreSQL advisory lock, or an exclusive lock on a file beside the SQLite
database) and only the leader starts APScheduler. When the leader dies its lock goes with it and another
process takes over within a few seconds; the jobs, kept in `apscheduler_jobs`, carry on where they were.
The work itself is safe to repeat (nudges are logged under unique keys, a campaign starts once), so a
takeover in the middle of a run sends nothing twice.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from bot.campaigns import CampaignService
from bot.nudges import NudgePlanner
from bot.settings import Settings
from bot.store.db import Database, try_file_lock_beside
from bot.store.models import Campaign

log = logging.getLogger("mirai.scheduler")
Clock = Callable[[], datetime]
LEADER_LOCK = (7_305, 1)  # advisory lock namespace and key of the one active scheduler

# The jobs in the store name module-level functions; they act through the runtime of this process.
_ACTIVE: SchedulerRuntime | None = None


def run_nudges() -> None:
    if _ACTIVE is not None:
        _ACTIVE.nudges.run()
        _ACTIVE.wake()


def start_due_campaigns() -> None:
    if _ACTIVE is not None:
        _ACTIVE.sweep_campaigns()


def start_campaign(campaign_id: int) -> None:
    if _ACTIVE is not None and _ACTIVE.campaigns.enqueue(campaign_id) is not None:
        log.info("campaign %s started", campaign_id)
        _ACTIVE.wake()


def run_retention() -> None:
    if _ACTIVE is not None and _ACTIVE.retention is not None:
        _ACTIVE.retention()


class Leadership:
    """Held by one process at a time; released by the operating system or the server if it dies."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._connection: Any = None
        self._file: Any = None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.db.is_postgres:
            conn = self.db.engine.connect()
            got = bool(conn.exec_driver_sql("SELECT pg_try_advisory_lock(%s, %s)", LEADER_LOCK).scalar())
            conn.commit()
            if got:
                self._connection = conn
            else:
                conn.close()
            return got
        handle = try_file_lock_beside(self.db.url, "scheduler")
        if handle is None:
            return False
        self._file = handle
        return True

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    def release(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._file is not None:
            if self._file is not True:
                self._file.close()
            self._file = None


class SchedulerRuntime:
    def __init__(self, db: Database, settings: Settings, nudges: NudgePlanner, campaigns: CampaignService,
                 clock: Clock, wake: Callable[[], None] | None = None,
                 retention: Callable[[], Any] | None = None, retry_seconds: float = 5.0) -> None:
        self.db = db
        self.settings = settings
        self.nudges = nudges
        self.campaigns = campaigns
        self.clock = clock
        self._wake = wake
        self.retention = retention
        self.retry_seconds = retry_seconds
        self.leadership = Leadership(db)
        self.scheduler: BackgroundScheduler | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self.scheduler is not None

    def wake(self) -> None:
        if self._wake is not None:
            self._wake()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._campaign_for_leadership, name="mirai-scheduler", daemon=True)
        self._thread.start()

    def _campaign_for_leadership(self) -> None:
        told = False
        while not self._stop.is_set():
            try:
                if self.leadership.try_acquire():
                    self._lead()
                    return
            except Exception:  # noqa: BLE001 (a database hiccup: try again later)
                log.exception("could not ask for the scheduler's lock")
            if not told:
                log.info("another process runs the scheduler; this one stands by")
                told = True
            self._stop.wait(self.retry_seconds)

    def _lead(self) -> None:
        global _ACTIVE
        _ACTIVE = self
        interval = self.settings.scheduler_interval_seconds
        scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(engine=self.db.engine)},
                                        timezone=self.settings.timezone,
                                        job_defaults={"coalesce": True, "max_instances": 1,
                                                      "misfire_grace_time": None})
        scheduler.add_job(run_nudges, IntervalTrigger(seconds=interval), id="nudges", replace_existing=True)
        scheduler.add_job(start_due_campaigns, IntervalTrigger(seconds=max(1.0, min(interval, 15.0))),
                          id="campaigns", replace_existing=True)
        scheduler.add_job(run_retention, CronTrigger(hour=3, minute=30), id="retention", replace_existing=True)
        scheduler.start()
        self.scheduler = scheduler
        log.info("this process runs the scheduler")
        self.sweep_campaigns()

    def sweep_campaigns(self) -> None:
        """Starts what is due, and gives every future campaign its own job at its send time (kept in the job
        store, so it fires on time after a restart or a takeover)."""
        self.campaigns.start_due()
        self.wake()
        if self.scheduler is None:
            return
        now = self.clock()
        with self.db.session() as s:
            future = s.execute(select(Campaign.id, Campaign.send_at).where(  # type: ignore[call-overload]
                Campaign.status == "scheduled", Campaign.send_at > now)).all()
        for campaign_id, send_at in future:
            job_id = f"campaign-{campaign_id}"
            if self.scheduler.get_job(job_id) is None:
                when = send_at if send_at.tzinfo else send_at.replace(tzinfo=UTC)
                self.scheduler.add_job(start_campaign, DateTrigger(run_date=when), args=[campaign_id], id=job_id,
                                       replace_existing=True)

    def stop(self) -> None:
        global _ACTIVE
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        if _ACTIVE is self:
            _ACTIVE = None
        self.leadership.release()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)


def build_scheduler(settings: Settings, db: Database, service: Any, clock: Clock,
                    wake: Callable[[], None] | None = None) -> SchedulerRuntime:
    """The runtime for this process, from the conversation service (whose outbox knows the channels)."""
    from bot.privacy import purge_expired_free_text

    def retention() -> None:
        erased = purge_expired_free_text(db, clock(), settings.free_text_retention_days)
        if any(erased.values()):
            log.info("retention: erased free text older than %d days: %s", settings.free_text_retention_days,
                     erased)

    return SchedulerRuntime(db, settings, NudgePlanner(db, service, settings, clock),
                            CampaignService(db, service.outbox, settings, clock, service.book), clock, wake=wake,
                            retention=retention)
