"""Per-language accuracy of an `NluService` on a held-out file in Rasa format (`mirai nlu eval`).

Language identification is measured two ways:
- `lang`: the message alone, no hint (`detect_language`'s situation: a first message), against the language the
  text is written in: the worker's (the file's) unless the example says otherwise (metadata `text_lang`: a
  Vietnamese worker's "unsubscribe" is English, a Spanish-speaking worker's "konbanwa" Japanese; nlu/DATA.md);
  None (unsure) is a miss;
- `lang in conv.`: as in a conversation, the worker's language given as the hint: the answer must stay in it
  unless the message is clearly in another language (a Spanish-speaking worker typing "unsubscribe" or
  "arigatou" still gets Spanish);
- `switch`: the hint is another language than the message's (the next one in the list), so the identifier has
  to notice the change; a message that cannot tell (English words, romaji) keeps the wrong hint and counts as a miss.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from nlu.data import LANGUAGES, Example
from nlu.service import NluService


@dataclass
class LanguageScore:
    total: int = 0
    intent_ok: int = 0
    lang_ok: int = 0
    lang_conv_ok: int = 0
    switch_ok: int = 0
    danger_total: int = 0
    danger_caught: int = 0
    seconds: list[float] = field(default_factory=list)

    def rate(self, n: int) -> float:
        return n / self.total if self.total else 0.0


def evaluate(service: NluService, examples: Iterable[Example]) -> dict[str, LanguageScore]:
    scores: dict[str, LanguageScore] = {}
    for e in examples:
        lang = e.lang or "?"
        s = scores.setdefault(lang, LanguageScore())
        start = time.perf_counter()
        result = service.interpret(e.text)
        s.seconds.append(time.perf_counter() - start)
        s.total += 1
        s.intent_ok += result.intent == e.intent
        s.lang_ok += result.language == e.language
        if e.lang in LANGUAGES:
            s.lang_conv_ok += service.embedded.identifier.resolve(e.text, e.lang) == e.lang
            other = LANGUAGES[(LANGUAGES.index(e.lang) + 1) % len(LANGUAGES)]
            s.switch_ok += service.embedded.identifier.resolve(e.text, other) == e.lang
        if e.intent == "danger":
            s.danger_total += 1
            s.danger_caught += result.danger
    return dict(sorted(scores.items(), key=lambda kv: LANGUAGES.index(kv[0]) if kv[0] in LANGUAGES else 99))


def format_table(scores: dict[str, LanguageScore], backend: str) -> str:
    head = (f"{'lang':<5} {'n':>4}  {'intent':>7}  {'lang':>7}  {'lang in conv.':>13}  {'switch':>7}  "
            f"{'danger':>7}   backend: {backend}")
    lines = [head, "-" * len(head)]
    total = LanguageScore()
    for lang, s in scores.items():
        lines.append(_row(lang, s))
        for name in ("total", "intent_ok", "lang_ok", "lang_conv_ok", "switch_ok", "danger_total", "danger_caught"):
            setattr(total, name, getattr(total, name) + getattr(s, name))
    lines.append("-" * len(head))
    lines.append(_row("all", total))
    return "\n".join(lines)


def _row(lang: str, s: LanguageScore) -> str:
    danger = f"{s.danger_caught}/{s.danger_total}" if s.danger_total else "-"
    return (f"{lang:<5} {s.total:>4}  {s.rate(s.intent_ok):>7.1%}  {s.rate(s.lang_ok):>7.1%}  "
            f"{s.rate(s.lang_conv_ok):>13.1%}  {s.rate(s.switch_ok):>7.1%}  {danger:>7}")
