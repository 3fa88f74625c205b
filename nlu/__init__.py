"""Understanding of free text: intents, language and danger, on the embedded models or a Rasa server.

    import nlu
    nlu.interpret("tiền lương chưa trả", language_hint="vi")
    # Interpretation(intent='ask_article', confidence=0.93, language='vi', danger=False, backend='embedded')

The backend comes from the settings (NLU_BACKEND=embedded|rasa, RASA_URL, NLU_TIMEOUT_SECONDS); `configure()`
replaces the process-wide service (tests, or a caller that builds its own `NluService`).
"""
from __future__ import annotations

import threading

from nlu.service import Interpretation, NluService

__all__ = ["Interpretation", "NluService", "configure", "get_service", "interpret"]

_lock = threading.Lock()
_service: NluService | None = None


def get_service() -> NluService:
    """The process-wide service, built from the settings on first use."""
    global _service
    if _service is None:
        with _lock:
            if _service is None:
                # Read lazily: the settings live with the app, and nlu/ is usable without them (NluService(...)).
                from bot.settings import get_settings

                _service = NluService.from_settings(get_settings())
    return _service


def configure(service: NluService | None) -> None:
    """Uses this service from now on (None: build it again from the settings on next use)."""
    global _service
    with _lock:
        old, _service = _service, service
    if old is not None and old is not service:
        old.close()


def interpret(text: str, language_hint: str | None = None) -> Interpretation:
    return get_service().interpret(text, language_hint)
