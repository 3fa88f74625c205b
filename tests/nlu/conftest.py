"""A real Rasa 3.6 server for the NLU tests: its environment (scripts/rasa-env.sh, built by `make test`), a model
trained from nlu/ (cached by a hash of nlu/*.yml, so reruns start at once) and `rasa run --enable-api` on a free
loopback port, stopped by its process id at the end of the session.

When the environment cannot be had, the Rasa tests are skipped with the reason; with MIRAI_REQUIRE_RASA=1 (CI)
they fail instead.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nlu.rasa import RasaServer, RasaUnavailableError, rasa_env, train_model

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _unavailable(reason: str) -> None:
    if os.getenv("MIRAI_REQUIRE_RASA"):
        pytest.fail(f"MIRAI_REQUIRE_RASA is set but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rasa_venv() -> Path:
    try:
        # Built by `make test` (the rasa-env prerequisite); under MIRAI_REQUIRE_RASA build it here if missing.
        return rasa_env(build=bool(os.getenv("MIRAI_REQUIRE_RASA")))
    except RasaUnavailableError as exc:
        _unavailable(f"no Rasa environment: {exc}")
        raise


@pytest.fixture(scope="session")
def rasa_model(rasa_venv: Path) -> Path:
    return train_model(rasa_venv, log=lambda msg: print(msg, flush=True))


@pytest.fixture(scope="session")
def rasa_server(rasa_venv: Path, rasa_model: Path) -> Iterator[RasaServer]:
    ARTIFACTS.mkdir(exist_ok=True)
    server = RasaServer(rasa_venv, rasa_model, log_file=ARTIFACTS / "rasa-server.log")
    try:
        server.start()
    except RuntimeError as exc:
        _unavailable(f"the Rasa server did not start: {exc}")
    yield server
    server.stop()
