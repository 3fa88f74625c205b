"""`NluService`: the one entry point the bot uses to understand a message, on the embedded NLU or a Rasa server.

With the Rasa backend, each message is POSTed to `{rasa_url}/model/parse`; when the server is unreachable,
answers an error or garbage, or takes longer than the timeout, the embedded classifier answers instead and a
warning is logged, so a reply is never held up by more than the timeout. Danger is always decided by the
embedded detector too (a Rasa model's danger intent can only add to it), and the language always comes from
the embedded identifier.
"""
from __future__ import annotations

import functools
import gc
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import httpx

from nlu.embedded import DANGER, EmbeddedNlu, default_embedded

log = logging.getLogger("mirai.nlu")

BACKENDS = ("embedded", "rasa")


@dataclass(frozen=True)
class Interpretation:
    intent: str
    confidence: float
    language: str | None
    danger: bool
    backend: str  # "embedded", "rasa", or "embedded-fallback" when Rasa did not answer in time

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class NluSettings(Protocol):
    nlu_backend: str
    rasa_url: str
    nlu_timeout_seconds: float


class RasaUnavailable(Exception):
    pass


class RasaClient:
    """A small synchronous client for a Rasa server's HTTP API, with one hard deadline per request."""

    def __init__(self, url: str, timeout: float, transport: httpx.BaseTransport | None = None) -> None:
        if not url:
            raise ValueError("the rasa backend needs RASA_URL (e.g. http://127.0.0.1:5005)")
        self.url = url.rstrip("/")
        self.timeout = timeout
        # Connect, read and pool waits each bounded; the total is checked again below.
        self._client = httpx.Client(timeout=httpx.Timeout(timeout), transport=transport,
                                    limits=httpx.Limits(max_keepalive_connections=4, max_connections=8))

    def parse(self, text: str) -> tuple[str, float]:
        start = time.monotonic()
        try:
            response = self._client.post(f"{self.url}/model/parse", json={"text": text})
            response.raise_for_status()
            data = response.json()
            intent = data["intent"]
            name, confidence = intent["name"], float(intent["confidence"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise RasaUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(name, str) or not name:
            raise RasaUnavailable("the answer has no intent name")
        if time.monotonic() - start > self.timeout:
            raise RasaUnavailable(f"answered after {time.monotonic() - start:.3f} s (timeout {self.timeout} s)")
        return name, confidence

    def close(self) -> None:
        self._client.close()


_frozen = False


def _freeze_loaded_models() -> None:
    """Moves everything alive now (the loaded models: ~100k dict entries) out of the garbage collector's sight, once
    per process, so that its full collections do not walk them in the middle of a parse (a p99 outlier of ~10 ms)."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


SHORT_TEXT = 40  # characters: answers and short requests, the texts that come again and again


class NluService:
    def __init__(self, backend: str = "embedded", rasa_url: str = "", timeout: float = 0.5,
                 embedded: EmbeddedNlu | None = None, transport: httpx.BaseTransport | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown NLU backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.timeout = timeout
        self.embedded = embedded or default_embedded()
        _freeze_loaded_models()
        self.rasa = RasaClient(rasa_url, timeout, transport) if backend == "rasa" else None
        # The request runs on a worker thread so that the caller's wait has one hard deadline, whatever phase
        # (connect, send, read) the server is stuck in; httpx's own timeouts end the thread soon after.
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rasa-nlu") if self.rasa else None
        # Most of what workers type is short and said again by thousands of others ("2", "yes", "はい",
        # "200000 yen"): the classifier reads each such text once per language. Longer texts are not kept.
        self._embedded_short = functools.lru_cache(maxsize=8192)(self._embedded)

    @classmethod
    def from_settings(cls, settings: NluSettings, **kwargs: Any) -> NluService:
        return cls(settings.nlu_backend, settings.rasa_url, settings.nlu_timeout_seconds, **kwargs)

    def interpret(self, text: str, language_hint: str | None = None) -> Interpretation:
        text = text or ""
        if self.rasa is None or self._pool is None:
            if len(text) <= SHORT_TEXT:
                return self._embedded_short(text, language_hint)
            return self._embedded(text, language_hint)
        deadline = time.monotonic() + self.timeout
        future = self._pool.submit(self.rasa.parse, text)
        local = self.embedded.parse(text, language_hint)  # meanwhile: danger, language and the fallback
        try:
            intent, confidence = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except (RasaUnavailable, FutureTimeout) as exc:
            reason = exc if isinstance(exc, RasaUnavailable) else f"no answer within {self.timeout} s"
            log.warning("Rasa NLU at %s did not answer (%s): the embedded classifier answers", self.rasa.url,
                        reason)
            return Interpretation(local.intent, local.confidence, local.language, local.danger,
                                  "embedded-fallback")
        return Interpretation(intent, confidence, local.language, local.danger or intent == DANGER, "rasa")

    def forget_short_texts(self) -> None:
        """Drops the short texts read so far (a worker asked to be erased: their words leave memory too)."""
        self._embedded_short.cache_clear()

    @property
    def short_texts_remembered(self) -> int:
        return self._embedded_short.cache_info().currsize

    def _embedded(self, text: str, language_hint: str | None) -> Interpretation:
        local = self.embedded.parse(text, language_hint)
        return Interpretation(local.intent, local.confidence, local.language, local.danger, "embedded")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self.rasa is not None:
            self.rasa.close()
