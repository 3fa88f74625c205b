"""A fake LibreTranslate server for translation tests that drive deep-translator's real LibreTranslator.

It speaks LibreTranslate's HTTP API as LibreTranslate's own ``app.py`` does:

* ``POST /translate`` with the fields ``q`` (a text or a list of texts), ``source`` (a code or "auto"),
  ``target``, ``format`` ("text" | "html") and ``api_key``, sent as JSON, as a form, or in the query
  string (deep-translator sends them in the query string of a POST). It answers
  ``{"translatedText": "..."}``, plus ``"detectedLanguage": {"confidence": 90.0, "language": "vi"}`` when
  the source was "auto". Errors are ``{"error": "..."}`` with 400 (missing field, unsupported language or
  format), 403 (unknown API key) or 500.
* ``GET /languages``: ``[{"code": "en", "name": "English", "targets": ["es", "ja", ...]}, ...]``.

Its "translation" is a phrase book: a few sentences of a counsellor's conversation in several languages
(``PHRASEBOOK``). A known sentence comes back in the target language; any other text comes back as
``[<target>] <text>``. Burmese is missing, as on a real server with the Argos models.

    with FakeLibreTranslate() as libre:
        LibreTranslator(source="vi", target="ja", api_key="-", custom_url=libre.base_url + "/")

Test controls: ``down = True`` answers every translation with 500, ``delay_seconds`` slows every answer,
``requests`` records everything received (``translate_requests`` only the translations), ``fail_next`` scripts
other trouble (from ``FakeProvider``).
"""
from __future__ import annotations

from typing import Any

from .providers import FakeProvider, Recorded, Reply, _phrase

__all__ = ["FakeLibreTranslate", "PHRASEBOOK", "LANGUAGE_NAMES"]

# code -> the name LibreTranslate's /languages gives (Burmese "my" is deliberately absent).
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English", "ja": "Japanese", "vi": "Vietnamese", "zh": "Chinese", "tl": "Tagalog",
    "id": "Indonesian", "pt": "Portuguese", "es": "Spanish",
}

# Each entry is one sentence in several languages; the fake translates between any two of them.
PHRASEBOOK: tuple[dict[str, str], ...] = (
    {
        "vi": "Tôi chưa được trả lương ba tháng.",
        "ja": "3か月間給料が支払われていません。",
        "en": "I have not been paid for three months.",
        "zh": "我已经三个月没有拿到工资了。",
    },
    {
        "vi": "Công ty giữ hộ chiếu của tôi.",
        "ja": "会社にパスポートを取り上げられています。",
        "en": "The company is keeping my passport.",
    },
    {
        "ja": "ご相談ありがとうございます。明日お電話してもよろしいですか。",
        "vi": "Cảm ơn bạn đã liên hệ. Ngày mai tôi gọi điện cho bạn được không?",
        "en": "Thank you for contacting us. May I call you tomorrow?",
        "id": "Terima kasih telah menghubungi kami. Bolehkah saya menelepon Anda besok?",
    },
    {
        "ja": "あなたの安全が一番大切です。",
        "vi": "Sự an toàn của bạn là quan trọng nhất.",
        "en": "Your safety matters most.",
        "tl": "Ang iyong kaligtasan ang pinakamahalaga.",
    },
)


class FakeLibreTranslate(FakeProvider):
    """LibreTranslate at ``base_url`` (no trailing slash). ``api_key``: when set, the server is run with API
    keys and requires that one (a wrong key -> 403, none -> 400), like ``--api-keys --require-api-key-origin``."""

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.down = False

    # ---- test controls ---------------------------------------------------------------------------

    @property
    def translate_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path == "/translate"]

    def fields(self, req: Recorded) -> dict[str, Any]:
        """The request's fields as LibreTranslate reads them: the JSON body, or else query + form."""
        return _fields(req)

    def _reset_state(self) -> None:
        self.down = False

    # ---- protocol --------------------------------------------------------------------------------

    def _error_body(self, status: int, headers: dict[str, str]) -> Any:
        return {"error": _phrase(status)}

    def _handle(self, req: Recorded) -> Reply:
        if req.path == "/languages":
            if req.method != "GET":
                return Reply(405, {"error": "Method Not Allowed"})
            return Reply(200, [
                {"code": code, "name": name, "targets": sorted(c for c in LANGUAGE_NAMES if c != code)}
                for code, name in LANGUAGE_NAMES.items()
            ])
        if req.path == "/translate":
            if req.method != "POST":
                return Reply(405, {"error": "Method Not Allowed"})
            return self._translate(_fields(req))
        return Reply(404, {"error": "Not Found"})

    def _translate(self, f: dict[str, Any]) -> Reply:
        if self.api_key is not None:
            given = f.get("api_key")
            if given and given != self.api_key:
                return Reply(403, {"error": "Invalid API key"})
            if not given:
                return Reply(400, {"error": "Please contact the server operator to get an API key"})
        q, source, target, fmt = f.get("q"), f.get("source"), f.get("target"), f.get("format")
        for name, value in (("q", q), ("source", source), ("target", target)):
            if not value:
                return Reply(400, {"error": f"Invalid request: missing {name} parameter"})
        texts = q if isinstance(q, list) else [q]
        if source == "auto":
            detected = [_detect(str(t)) for t in texts]
        else:
            detected = [{"confidence": 100.0, "language": source} for _ in texts]
        for d in detected:
            if d["language"] not in LANGUAGE_NAMES:
                return Reply(400, {"error": f"{d['language']} is not supported"})
        if target not in LANGUAGE_NAMES:
            return Reply(400, {"error": f"{target} is not supported"})
        if (fmt or "text") not in ("text", "html"):
            return Reply(400, {"error": f"{fmt} format is not supported"})
        if self.down:
            return Reply(500, {"error": "Cannot translate text: the translation model is not loaded"})
        results = [_translate(str(t), d["language"], str(target)) for t, d in zip(texts, detected)]
        body: dict[str, Any] = {"translatedText": results if isinstance(q, list) else results[0]}
        if source == "auto":
            body["detectedLanguage"] = detected if isinstance(q, list) else detected[0]
        return Reply(200, body)


def _fields(req: Recorded) -> dict[str, Any]:
    # Flask: request.get_json() for a JSON body, else request.values (query string first, then form).
    if isinstance(req.json, dict) and "json" in req.headers.get("content-type", ""):
        return dict(req.json)
    return {**(req.form or {}), **req.query}


def _detect(text: str) -> dict[str, Any]:
    for entry in PHRASEBOOK:
        for lang, sentence in entry.items():
            if sentence == text.strip():
                return {"confidence": 90.0, "language": lang}
    return {"confidence": 0.0, "language": "en"}  # LibreTranslate's answer when it cannot tell


def _translate(text: str, source: str, target: str) -> str:
    if source == target:
        return text
    for entry in PHRASEBOOK:
        if entry.get(source) == text.strip() and target in entry:
            return entry[target]
    return f"[{target}] {text}"
