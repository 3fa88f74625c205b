"""`mirai serve`'s background work in processes of its own: stepping stored webhook events (`mirai dispatch --role
steps`) and sending the outbox (`--role sends`).

Why processes: Python runs one thread at a time, so a web server that also steps and sends uses one CPU however
many the machine has; with its workers as child processes one `mirai serve` (what `make run` starts) uses them all.
The children are restarted when they die, stopped when `mirai serve` stops, and die with it when it is killed
(the kernel sends them SIGTERM: see ``die_with_parent``), so a killed server never leaves a process behind that
holds a SQLite database's stepping or sending lock.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

log = logging.getLogger("mirai.supervisor")

PARENT_PID_VARIABLE = "MIRAI_SUPERVISOR_PID"
ROLES = ("steps", "sends")
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Called first by a child of ``WorkerProcesses``: ask the kernel for SIGTERM when the parent dies, and leave
    at once if it died before the asking."""
    parent = os.environ.get(PARENT_PID_VARIABLE)
    if not parent:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's stop() is the only way they end
        return
    if os.getppid() != int(parent):
        raise SystemExit(0)


class WorkerProcesses:
    """Keeps one `mirai dispatch --role R` child per role running until ``stop()``."""

    RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # after quick successive deaths; a child that ran a minute starts over
    RAN_LONG_ENOUGH_SECONDS = 60.0
    STOP_TIMEOUT_SECONDS = 10.0

    def __init__(self, env: Mapping[str, str] | None = None, roles: Sequence[str] = ROLES) -> None:
        self._env = {**(env if env is not None else os.environ), PARENT_PID_VARIABLE: str(os.getpid())}
        self._roles = tuple(roles)
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._started_at: dict[str, float] = {}
        self._quick_deaths: dict[str, int] = dict.fromkeys(self._roles, 0)
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def pids(self) -> dict[str, int]:
        return {role: child.pid for role, child in self._children.items()}

    def start(self) -> None:
        for role in self._roles:
            self._spawn(role)
        # The watcher lives as long as the process: the kernel's parent-death signal follows the thread that
        # started a child, so the restarted children must be started by a thread that never ends early.
        self._watcher = threading.Thread(target=self._watch, name="mirai-worker-processes", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stopping.set()
        for child in self._children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + self.STOP_TIMEOUT_SECONDS
        for role, child in self._children.items():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("the %s process did not stop within %.0f s; killed", role, self.STOP_TIMEOUT_SECONDS)
                child.kill()
                child.wait()

    def _spawn(self, role: str) -> None:
        # A session of their own: Ctrl-C in the terminal reaches `mirai serve`, which stops them in order, instead
        # of all of them at once (the watcher would take their exit for a crash).
        self._children[role] = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "dispatch", "--role", role], env=self._env, start_new_session=True)
        self._started_at[role] = time.monotonic()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for role, child in list(self._children.items()):
                code = child.poll()
                if code is None or self._stopping.is_set():
                    continue
                ran = time.monotonic() - self._started_at[role]
                self._quick_deaths[role] = 0 if ran >= self.RAN_LONG_ENOUGH_SECONDS else self._quick_deaths[role] + 1
                delay = self.RESTART_DELAYS[min(self._quick_deaths[role], len(self.RESTART_DELAYS) - 1)]
                log.error("the %s process ended (exit code %s) after %.0f s; starting it again in %.0f s",
                          role, code, ran, delay)
                if self._stopping.wait(delay):
                    return
                self._spawn(role)
