"""A real Rasa Open Source 3.6 server for nlu/: its environment, a trained model and a running server.

The environment is built by scripts/rasa-env.sh in a virtual environment of its own outside the checkout (Rasa
pins pydantic 1, SQLAlchemy 1.4 and numpy 1.23, which the app cannot share). Trained models are cached under
${XDG_CACHE_HOME:-~/.cache}/mirai/rasa-models/, keyed by a hash of nlu/*.yml and the environment, so a rerun
with unchanged data starts at once.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

NLU_DIR = Path(__file__).resolve().parent
ROOT = NLU_DIR.parent
ENV_SCRIPT = ROOT / "scripts" / "rasa-env.sh"
MODEL_INPUTS = ("config.yml", "nlu.yml", "domain.yml")


class RasaUnavailableError(RuntimeError):
    """The Rasa environment is not built (or could not be); the message says why."""


def cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("MIRAI_RASA_HOME") or Path(base) / "mirai")


def rasa_env(build: bool = False) -> Path:
    """The Rasa virtual environment; with build=True it is built first when missing (minutes, once)."""
    args = ["bash", str(ENV_SCRIPT)] + ([] if build else ["--path"])
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise RasaUnavailableError(reason[-1] if reason else f"{ENV_SCRIPT} failed ({done.returncode})")
    venv = Path(done.stdout.strip().splitlines()[-1])
    if not (venv / "bin" / "rasa").exists():
        raise RasaUnavailableError(f"no rasa executable in {venv}")
    return venv


def rasa_environ() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
                "SQLALCHEMY_SILENCE_UBER_WARNING": "1"})
    return env


def model_key(venv: Path, nlu_dir: Path = NLU_DIR) -> str:
    digest = hashlib.sha256(str(venv.name).encode())
    for name in MODEL_INPUTS:
        path = nlu_dir / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
    return digest.hexdigest()[:16]


def train_model(venv: Path, nlu_dir: Path = NLU_DIR, out: Path | None = None, log=print) -> Path:  # type: ignore[no-untyped-def]
    """A model trained from nlu/config.yml and nlu/nlu.yml, from the cache when the inputs did not change."""
    models = out or cache_home() / "rasa-models"
    models.mkdir(parents=True, exist_ok=True)
    key = model_key(venv, nlu_dir)
    target = models / f"nlu-{key}.tar.gz"
    if target.exists():
        log(f"Rasa model for these nlu/ files already trained: {target}")
        return target
    log(f"training a Rasa model from {nlu_dir} (a few minutes) ...")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(dir=models) as tmp:
        cmd = [str(venv / "bin" / "rasa"), "train", "nlu", "--config", str(nlu_dir / "config.yml"),
               "--nlu", str(nlu_dir / "nlu.yml"), "--out", tmp, "--fixed-model-name", "nlu"]
        done = subprocess.run(cmd, cwd=tmp, env=rasa_environ(), capture_output=True, text=True)
        built = Path(tmp) / "nlu.tar.gz"
        if done.returncode != 0 or not built.exists():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
            raise RuntimeError(f"rasa train nlu failed ({done.returncode}):\n{tail}")
        shutil.move(str(built), target)
    log(f"trained in {time.monotonic() - start:.0f} s: {target}")
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RasaServer:
    """`rasa run --enable-api` on a loopback port, started and stopped by its own process id."""

    def __init__(self, venv: Path, model: Path, port: int | None = None, log_file: Path | None = None) -> None:
        self.venv = venv
        self.model = model
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self._log = None

    def start(self, ready_timeout: float = 240.0) -> RasaServer:
        workdir = Path(tempfile.mkdtemp(prefix="mirai-rasa-"))
        self._log = open(self.log_file or workdir / "rasa.log", "ab")  # noqa: SIM115 - closed in stop()
        cmd = [str(self.venv / "bin" / "rasa"), "run", "--enable-api", "-m", str(self.model),
               "-i", "127.0.0.1", "-p", str(self.port)]
        self.process = subprocess.Popen(cmd, cwd=workdir, env=rasa_environ(), stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rasa run exited with {self.process.returncode}; log: {self._log.name}")
            try:
                status = httpx.get(f"{self.url}/status", timeout=2)
                if status.status_code == 200 and status.json().get("model_file"):
                    return self
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"rasa run did not answer /status within {ready_timeout:.0f} s")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def kill(self) -> None:
        """Ends the server at once (SIGKILL to its own process group), as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> RasaServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
