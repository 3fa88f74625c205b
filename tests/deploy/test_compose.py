"""docker-compose.yml validates and describes the production stack of docs/operations.md.

No Docker engine runs on the test machines, but a compose client validates and resolves the file offline:
the `docker compose` plugin when it is installed, otherwise Debian's `docker-compose` 1.29
(scripts/install-system-deps.sh installs it). Without either client these tests are skipped with the reason;
with MIRAI_REQUIRE_DOCKER_CLIENT=1 (CI) they fail instead.

The client runs with a minimal environment and an empty --env-file, so neither the developer's shell nor an
.env file in the checkout can change the outcome.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PASSWORD = "test-password-0123456789abcdef"


def compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.fixture(scope="module")
def client() -> list[str]:
    found = compose_client()
    if found is None:
        reason = ("no docker compose client is installed (neither the `docker compose` plugin nor Debian's "
                  "docker-compose; scripts/install-system-deps.sh installs it)")
        if os.getenv("MIRAI_REQUIRE_DOCKER_CLIENT", "") not in ("", "0"):
            pytest.fail(f"MIRAI_REQUIRE_DOCKER_CLIENT is set but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


def run_config(client: list[str], tmp_path: Path, env: dict[str, str], *options: str,
               profiles: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", str(tmp_path)),
               "LANG": "C.UTF-8", **env}
    args = [*client]
    for profile in profiles:
        args += ["--profile", profile]
    args += ["--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), "config", *options]
    return subprocess.run(args, capture_output=True, text=True, env=environ, cwd=tmp_path, timeout=120)


def resolved(client: list[str], tmp_path: Path, env: dict[str, str] | None = None,
             profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    done = run_config(client, tmp_path, {"POSTGRES_PASSWORD": PASSWORD, **(env or {})}, profiles=profiles)
    assert done.returncode == 0, f"compose config failed:\n{done.stderr}"
    return yaml.safe_load(done.stdout)


def words(value: Any) -> str:
    """A command, entrypoint or health check test as one string, whichever form the client printed."""
    return " ".join(value) if isinstance(value, list) else str(value)


def depends(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on", {})
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def published(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(published, target) pairs: the legacy client prints "ip:published:target/proto", the plugin mappings."""
    pairs = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            pairs.append((str(port.get("published", "")), str(port["target"])))
        else:
            parts = str(port).split("/")[0].split(":")
            pairs.append((parts[-2] if len(parts) > 1 else "", parts[-1]))
    return pairs


def assert_health_check(service: dict[str, Any], name: str, *needles: str) -> str:
    check = service.get("healthcheck")
    assert check and not check.get("disable"), f"{name} has no health check"
    test = words(check["test"])
    for needle in needles:
        assert needle in test, f"{name}'s health check does not use {needle!r}: {test}"
    return test


def test_the_compose_file_validates(client: list[str], tmp_path: Path) -> None:
    done = run_config(client, tmp_path, {"POSTGRES_PASSWORD": PASSWORD}, "-q")
    assert done.returncode == 0, f"{' '.join(client)} config -q rejected docker-compose.yml:\n{done.stderr}"


def test_the_stack_has_its_services_with_health_checks(client: list[str], tmp_path: Path) -> None:
    services = resolved(client, tmp_path)["services"]
    assert {"postgres", "api", "worker", "scheduler", "rasa"} <= set(services)

    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    assert postgres["environment"]["POSTGRES_PASSWORD"] == PASSWORD
    assert_health_check(postgres, "postgres", "pg_isready")
    data = [v for v in postgres["volumes"] if (v["target"] if isinstance(v, dict) else v.split(":")[1])
            == "/var/lib/postgresql/data"]
    assert data, "postgres keeps its data in a container layer"
    source = data[0]["source"] if isinstance(data[0], dict) else data[0].split(":")[0]
    assert not source.startswith("/"), f"postgres data is a host folder, not a named volume: {source}"

    api, worker = services["api"], services["worker"]
    assert words(api["command"]) == "mirai serve --host 0.0.0.0"
    assert str(api["environment"]["RUN_WORKERS_IN_PROCESS"]).lower() == "false", "the api must not dispatch"
    assert depends(api)["postgres"] == "service_healthy"
    assert ("8000", "8000") in published(api)
    assert_health_check(api, "api", "/healthz")

    assert words(worker["command"]) == "mirai dispatch"
    assert worker["image"] == api["image"], "the worker runs the api's image"
    assert depends(worker)["postgres"] == "service_healthy"
    assert_health_check(worker, "worker")
    replicas = int(worker.get("deploy", {}).get("replicas", 1))
    if replicas > 1:  # several dispatchers are safe because the outbox locks each worker's sends
        outbox = (ROOT / "bot" / "outbox.py").read_text()
        assert "pg_try_advisory_lock" in outbox, "worker replicas > 1 without per-worker locks in the outbox"

    scheduler = services["scheduler"]
    assert words(scheduler["command"]) == "mirai scheduler" and scheduler["image"] == api["image"]
    assert str(api["environment"]["RUN_SCHEDULER_IN_PROCESS"]).lower() == "false", "one place runs the scheduler"
    assert depends(scheduler)["postgres"] == "service_healthy"
    assert_health_check(scheduler, "scheduler")

    for name in ("api", "worker", "scheduler"):
        env = services[name]["environment"]
        url = env["DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and f":{PASSWORD}@postgres:5432/" in url, url
        assert env["NLU_BACKEND"] == "rasa" and env["RASA_URL"] == "http://rasa:5005"

    rasa = services["rasa"]
    assert re.fullmatch(r"rasa/rasa:3\.6\.\d+", rasa["image"]), rasa["image"]
    start = words(rasa.get("entrypoint", [])) + " " + words(rasa.get("command", []))
    assert "rasa train nlu" in start and "run --enable-api" in start, start
    mounts = [v["source"] if isinstance(v, dict) else v.split(":")[0] for v in rasa.get("volumes", [])]
    assert any(Path(m) == ROOT / "nlu" for m in mounts), f"rasa does not mount ./nlu: {mounts}"
    assert_health_check(rasa, "rasa", "5005")

    if "scheduler" in services:  # only once the command exists (the nudges issue)
        assert "scheduler" in (ROOT / "bot" / "cli.py").read_text()


def test_secrets_and_settings_come_from_the_environment(client: list[str], tmp_path: Path) -> None:
    given = {"LINE_CHANNEL_SECRET": "line-secret", "LINE_CHANNEL_ACCESS_TOKEN": "line-token",
             "TELEGRAM_BOT_TOKEN": "123:abc", "TELEGRAM_WEBHOOK_SECRET": "tg-secret",
             "MESSENGER_APP_SECRET": "app-secret", "MESSENGER_VERIFY_TOKEN": "verify",
             "MESSENGER_PAGE_ACCESS_TOKEN": "page-token", "TRANSLATOR": "libre",
             "LIBRETRANSLATE_URL": "http://libretranslate:5000", "DEEPL_API_KEY": "deepl-key"}
    services = resolved(client, tmp_path, given)["services"]
    for name in ("api", "worker", "scheduler"):
        env = services[name]["environment"]
        for key, value in given.items():
            assert env[key] == value, f"{name}: {key} is not passed through"
    # Unset, a channel's credentials are empty (the channel is off) rather than missing or a placeholder.
    env = resolved(client, tmp_path)["services"]["api"]["environment"]
    assert env["LINE_CHANNEL_SECRET"] in ("", None) and env["TRANSLATOR"] == "none"


def test_libretranslate_is_an_optional_profile(client: list[str], tmp_path: Path) -> None:
    without = resolved(client, tmp_path)["services"]
    if "libretranslate" in without:  # docker-compose 1.29 prints it, marked with its profile
        assert without["libretranslate"].get("profiles") == ["translation"]
    service = resolved(client, tmp_path, profiles=("translation",))["services"]["libretranslate"]
    assert service["image"].startswith("libretranslate/libretranslate")
    assert service.get("profiles") == ["translation"]
    assert_health_check(service, "libretranslate")


def test_a_missing_postgres_password_is_refused_with_a_clear_message(client: list[str], tmp_path: Path) -> None:
    done = run_config(client, tmp_path, {}, "-q")
    assert done.returncode != 0, "compose accepted the file without POSTGRES_PASSWORD"
    assert "set POSTGRES_PASSWORD" in done.stderr + done.stdout, done.stderr


def test_the_image_is_slim_runs_unprivileged_and_checks_its_health() -> None:
    text = DOCKERFILE.read_text().replace("\\\n", " ")  # continuation lines joined
    stages = re.split(r"(?m)^FROM\s", text)
    final = stages[-1]
    assert "python:3.11-slim" in text, "not the slim Python 3.11 image"
    user = re.findall(r"(?m)^USER\s+(\S+)", final)
    assert user and user[-1].split(":")[0] not in ("root", "0"), "the server image runs as root"
    assert re.search(r"(?m)^HEALTHCHECK\s.*/healthz", final)
    assert re.search(r'(?m)^CMD \["mirai", "serve", "--host", "0.0.0.0"\]', final)
    assert not re.search(r"build-essential|gcc|fonts-noto", final), "build tools or fonts in the final stage"
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "data", "test-artifacts", ".git"} <= ignored
