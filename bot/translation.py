"""Machine translation between counsellors (Japanese, English) and workers (Vietnamese, Burmese, ...).

Translation is a help, never a gate: ``Translator.translate`` does not raise. When the provider is off,
down, slow, answers nonsense or does not know a language, the original text comes back with
``translated=False`` and the counsellor reads it as the worker wrote it.

    translator = Translator.from_settings(get_settings())
    shown = translator.translate("Tôi chưa được trả lương ba tháng.", "vi", "ja")
    shown.text, shown.translated   # -> ("3か月間給料が支払われていません。", True)

The providers are deep-translator's classes (GoogleTranslator, LibreTranslator, DeeplTranslator,
MicrosoftTranslator). They make blocking ``requests`` calls without a timeout, so every call runs in a
daemon thread and is abandoned after ``translator_timeout_seconds``; at most ``max_in_flight`` calls run at
once, so a provider that hangs cannot pile up threads. Successful answers are kept in a bounded LRU cache.

Message texts and API keys are never logged: deep-translator puts both into some exception messages.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from deep_translator import DeeplTranslator, GoogleTranslator, LibreTranslator, MicrosoftTranslator
from deep_translator.exceptions import MicrosoftAPIerror, ServerException, TooManyRequests

from bot.flowbook import LANGUAGES

log = logging.getLogger("mirai.translation")

PROVIDERS: tuple[str, ...] = ("google", "libre", "deepl", "microsoft", "none")

# Our language codes -> the code each provider takes, as listed in deep-translator's tables (constants.py;
# Microsoft's table is fetched from its /languages endpoint and lower-cased). A language missing here is
# not supported by that provider (through deep-translator) and is shown untranslated.
PROVIDER_CODES: dict[str, dict[str, str]] = {
    "google": {"ja": "ja", "en": "en", "zh": "zh-CN", "vi": "vi", "tl": "tl", "id": "id", "my": "my",
               "pt": "pt", "es": "es"},
    # deep-translator's LIBRE_LANGUAGES_TO_CODES has neither Tagalog nor Burmese.
    "libre": {"ja": "ja", "en": "en", "zh": "zh", "vi": "vi", "id": "id", "pt": "pt", "es": "es"},
    # DeepL has no Vietnamese, Tagalog or Burmese.
    "deepl": {"ja": "ja", "en": "en", "zh": "zh", "id": "id", "pt": "pt", "es": "es"},
    "microsoft": {"ja": "ja", "en": "en", "zh": "zh-hans", "vi": "vi", "tl": "fil", "id": "id", "my": "my",
                  "pt": "pt", "es": "es"},
}

DEFAULT_CACHE_SIZE = 10_000
DEFAULT_MAX_IN_FLIGHT = 16
LIBRETRANSLATE_COM = "https://libretranslate.com/"


@dataclass(frozen=True)
class Translation:
    """What to show. ``translated=False``: ``text`` is the original, unchanged (provider off or failing,
    same language, empty text, language not supported). ``source`` is our code, or "auto" when the caller
    left it to the provider; ``provider`` is the one asked (or that would have been asked), "none" when off."""

    text: str
    source: str
    target: str
    translated: bool
    provider: str


DEFAULT_COOLDOWN_SECONDS = 30.0


class _LRUCache:
    """A thread-safe, bounded least-recently-used map; ``maxsize=0`` keeps nothing."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = max(0, int(maxsize))
        self._data: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> str | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple[Any, ...], value: str) -> None:
        if not self.maxsize:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class _MicrosoftTranslator(MicrosoftTranslator):
    """deep-translator's MicrosoftTranslator downloads Microsoft's language list in every constructor (a
    request without timeout); download it once per process instead."""

    _cached_languages: ClassVar[dict[str, str] | None] = None

    def _get_supported_languages(self) -> dict[str, str]:
        cached = _MicrosoftTranslator._cached_languages
        if cached is None:  # two threads may both fetch it on a cold start; harmless
            cached = super()._get_supported_languages()
            _MicrosoftTranslator._cached_languages = cached
        return dict(cached)


class _Timeout(Exception):
    pass


def _describe(exc: BaseException) -> str:
    """Safe to log: the exception's class, plus its message only for types whose message holds neither the
    text nor a key (deep-translator's AuthorizationException quotes the key; requests errors quote URLs
    that carry both)."""
    if isinstance(exc, (ServerException, TooManyRequests, MicrosoftAPIerror, _Timeout)):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def _norm(code: str | None) -> str | None:
    return code.strip().lower() if isinstance(code, str) and code.strip() else None


class Translator:
    """Translates with one provider; built once (``from_settings``) and shared by all threads."""

    def __init__(
        self,
        provider: str = "none",
        *,
        timeout_seconds: float = 5.0,
        libretranslate_url: str = "",
        libretranslate_api_key: str = "",
        deepl_api_key: str = "",
        microsoft_translator_key: str = "",
        microsoft_translator_region: str = "",
        cache_size: int = DEFAULT_CACHE_SIZE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS,
    ) -> None:
        provider = (provider or "none").strip().lower()
        problem = None
        if provider not in PROVIDERS:
            problem = f"unknown translator {provider!r} (expected one of {', '.join(PROVIDERS)})"
        elif provider == "libre" and not (libretranslate_url.strip() or libretranslate_api_key):
            problem = "translator 'libre' needs libretranslate_url (or a libretranslate.com API key)"
        elif provider == "deepl" and not deepl_api_key:
            problem = "translator 'deepl' needs deepl_api_key"
        elif provider == "microsoft" and not microsoft_translator_key:
            problem = "translator 'microsoft' needs microsoft_translator_key"
        if problem:
            log.warning("translation is off: %s", problem)
            provider = "none"
        self.provider = provider
        self.timeout_seconds = float(timeout_seconds)
        # deep-translator appends "translate" to the base URL without a slash of its own.
        url = libretranslate_url.strip()
        self._libre_url = (url.rstrip("/") + "/") if url else LIBRETRANSLATE_COM
        self._libre_key = libretranslate_api_key
        self._deepl_key = deepl_api_key
        self._ms_key = microsoft_translator_key
        self._ms_region = microsoft_translator_region or None
        self._cache = _LRUCache(cache_size)
        self._max_in_flight = max(1, int(max_in_flight))
        self._slots = threading.BoundedSemaphore(self._max_in_flight)
        self._warned: set[tuple[str, str]] = set()
        self._warned_lock = threading.Lock()
        # After a failure the provider is left alone for a while: a transcript of fifty messages must not
        # wait fifty timeouts while the provider is down.
        self.cooldown_seconds = float(cooldown_seconds)
        self._down_until = 0.0

    @classmethod
    def from_settings(cls, settings: Any) -> Translator:
        return cls(
            settings.translator,
            timeout_seconds=settings.translator_timeout_seconds,
            libretranslate_url=settings.libretranslate_url,
            libretranslate_api_key=settings.libretranslate_api_key,
            deepl_api_key=settings.deepl_api_key,
            microsoft_translator_key=settings.microsoft_translator_key,
            microsoft_translator_region=settings.microsoft_translator_region,
            cooldown_seconds=settings.translator_cooldown_seconds,
        )

    # ---- public ------------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.provider != "none"

    def supports(self, language: str) -> bool:
        """Whether this provider translates from/to ``language`` (one of our codes)."""
        return self.enabled and _norm(language) in PROVIDER_CODES[self.provider]

    def clear_cache(self) -> None:
        self._cache.clear()

    def translate(self, text: str, source: str | None, target: str) -> Translation:
        """``text`` from ``source`` (None: let the provider detect it) into ``target``. Never raises."""
        src, tgt = _norm(source), _norm(target)
        original = Translation(text=text, source=src or "auto", target=tgt or str(target),
                               translated=False, provider=self.provider)
        try:
            return self._translate(text, src, tgt, original)
        except Exception as exc:  # the promise: a translation problem never reaches the conversation
            log.warning("translation failed (%s -> %s, %s): %s", original.source, original.target,
                        self.provider, _describe(exc))
            return original

    # ---- internals ---------------------------------------------------------------------------------

    def _translate(self, text: str, src: str | None, tgt: str | None, original: Translation) -> Translation:
        if not self.enabled or not isinstance(text, str) or not text.strip():
            return original
        if tgt is None or tgt not in LANGUAGES or (src is not None and src not in LANGUAGES):
            self._warn_once("unknown", f"{src}->{tgt}", "translation skipped: unknown language code %s -> %s",
                            src, tgt)
            return original
        if src == tgt:
            return original
        codes = PROVIDER_CODES[self.provider]
        for lang in (src, tgt):
            if lang is not None and lang not in codes:
                self._warn_once(self.provider, lang, "translation skipped: %s does not translate %r",
                                self.provider, lang)
                return original

        key = (text, src, tgt, self.provider)
        cached = self._cache.get(key)
        if cached is not None:
            return Translation(cached, original.source, tgt, True, self.provider)

        src_code = codes[src] if src is not None else None
        tgt_code = codes[tgt]
        started = time.monotonic()
        if started < self._down_until:
            return original
        try:
            answer = self._call(lambda: self._client(src_code, tgt_code).translate(text))
        except Exception as exc:
            self._down_until = time.monotonic() + self.cooldown_seconds
            log.warning("translation failed (%s -> %s, %s, %d chars, %.2fs): %s", original.source, tgt,
                        self.provider, len(text), time.monotonic() - started, _describe(exc))
            return original
        if not isinstance(answer, str) or not answer.strip():
            log.warning("translation failed (%s -> %s, %s): empty or unusable answer (%s)", original.source, tgt,
                        self.provider, type(answer).__name__)
            return original
        self._cache.put(key, answer)
        return Translation(answer, original.source, tgt, True, self.provider)

    def _client(self, source: str | None, target: str) -> Any:
        """A fresh deep-translator object per call: they keep per-call state, so sharing one between threads
        would mix requests up. ``source=None``: auto-detect."""
        if self.provider == "google":
            return GoogleTranslator(source=source or "auto", target=target)
        if self.provider == "libre":
            # LibreTranslator refuses to be built without a key, but a self-hosted server needs none: build
            # it with a placeholder, then clear it so that no api_key field is sent at all.
            client = LibreTranslator(source=source or "auto", target=target, api_key=self._libre_key or "-",
                                     use_free_api=False, custom_url=self._libre_url)
            client.api_key = self._libre_key
            return client
        if self.provider == "deepl":
            client = DeeplTranslator(source=source or "auto", target=target, api_key=self._deepl_key,
                                     use_free_api=self._deepl_key.endswith(":fx"))  # ":fx" = a DeepL Free key
        else:
            client = _MicrosoftTranslator(source=source or "auto", target=target, api_key=self._ms_key,
                                          region=self._ms_region)
        if source is None:
            # DeepL and Microsoft detect the language when no source is sent ("auto" is not a code they know);
            # requests leaves out query parameters whose value is None.
            client.source = None
        return client

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Runs ``fn`` in a daemon thread and waits at most the timeout (waiting for a free slot included).
        An abandoned call finishes (or hangs) on its own; daemon threads never hold up shutdown."""
        deadline = time.monotonic() + self.timeout_seconds
        if not self._slots.acquire(timeout=max(0.0, self.timeout_seconds)):
            raise _Timeout(f"{self.provider}: all {self._max_in_flight} slots busy with earlier calls")
        done = threading.Event()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["value"] = fn()
            except BaseException as exc:  # handed to the waiting caller
                outcome["error"] = exc
            finally:
                self._slots.release()
                done.set()

        try:
            threading.Thread(target=work, name=f"translate-{self.provider}", daemon=True).start()
        except BaseException:
            self._slots.release()
            raise
        if not done.wait(max(0.0, deadline - time.monotonic())):
            raise _Timeout(f"no answer from {self.provider} within {self.timeout_seconds:g}s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

    def _warn_once(self, kind: str, what: str, msg: str, *args: Any) -> None:
        with self._warned_lock:
            if (kind, what) in self._warned:
                return
            self._warned.add((kind, what))
        log.warning(msg, *args)


__all__ = ["PROVIDERS", "PROVIDER_CODES", "Translation", "Translator"]
