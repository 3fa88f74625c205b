"""Loads the conversation data (flows, texts, keywords, lists) and refuses to start on anything incomplete.

Every sentence a worker reads lives in YAML with all languages side by side; this module checks at load that
none is missing, that every checklist item has a severity and an indicator, and that placeholders agree.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel as _PydanticModel, ConfigDict, Field, field_validator, model_validator

LANGUAGES: tuple[str, ...] = ("ja", "en", "zh", "vi", "tl", "id", "my", "pt", "es")
LANGUAGE_NAMES: dict[str, str] = {
    "ja": "日本語", "en": "English", "zh": "中文", "vi": "Tiếng Việt", "tl": "Tagalog",
    "id": "Bahasa Indonesia", "my": "မြန်မာဘာသာ", "pt": "Português", "es": "Español",
}
# Other names a worker may type for a language (matched case-insensitively).
LANGUAGE_ALIASES: dict[str, tuple[str, ...]] = {
    "ja": ("japanese", "nihongo", "にほんご", "日本語", "tiếng nhật", "japonés", "japonês", "hapon"),
    "en": ("english", "英語", "英语", "tiếng anh", "inglés", "inglês", "ingles", "inggris", "အင်္ဂလိပ်"),
    "zh": ("chinese", "中文", "中国語", "汉语", "中国话", "tiếng trung", "chino", "chinês", "mandarin"),
    "vi": ("vietnamese", "tiếng việt", "tieng viet", "ベトナム語", "越南语", "vietnamita"),
    "tl": ("tagalog", "filipino", "タガログ語", "他加禄语", "tagalo"),
    "id": ("indonesian", "bahasa indonesia", "indonesia", "インドネシア語", "印尼语", "indonesio"),
    "my": ("burmese", "myanmar", "မြန်မာ", "ミャンマー語", "缅甸语", "birmano"),
    "pt": ("portuguese", "português", "portugues", "ポルトガル語", "葡萄牙语", "portugués"),
    "es": ("spanish", "español", "espanol", "スペイン語", "西班牙语", "espanhol", "castellano"),
}

Severity = Literal["critical", "high", "medium", "low"]
SEVERITY_ORDER: dict[str, int] = {"critical": 4, "high": 3, "medium": 2, "low": 1}
QuestionType = Literal["checklist", "amount", "yes_no", "yes_no_unknown", "free_text"]

DATA_DIR = Path(__file__).resolve().parent / "flows"
CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"


class FlowDataError(ValueError):
    """The data files are incomplete or inconsistent; the bot must not start on them."""


class Localized(dict[str, str]):
    """A text in every language."""

    def __call__(self, lang: str) -> str:
        return self.get(lang) or self["en"]


class BaseModel(_PydanticModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=False)


def _localized(value: object, where: str) -> Localized:
    if not isinstance(value, dict):
        raise FlowDataError(f"{where}: expected a map of languages, got {type(value).__name__}")
    missing = [lang for lang in LANGUAGES if not str(value.get(lang) or "").strip()]
    if missing:
        raise FlowDataError(f"{where}: missing translation for {', '.join(missing)}")
    placeholders = {lang: set(re.findall(r"\{(\w+)\}", str(value[lang]))) for lang in LANGUAGES}
    if len({frozenset(p) for p in placeholders.values()}) != 1:
        raise FlowDataError(f"{where}: placeholders differ between languages: {placeholders}")
    return Localized({lang: str(value[lang]).strip() for lang in LANGUAGES})


class Item(BaseModel):
    id: str
    indicator: str
    severity: Severity
    text: Localized

    @field_validator("text", mode="before")
    @classmethod
    def _all_languages(cls, v: object, info) -> Localized:  # type: ignore[no-untyped-def]
        return _localized(v, f"item {info.data.get('id')}")


class Question(BaseModel):
    id: str
    section: Literal["before", "after", "response"]
    type: QuestionType
    text: Localized
    items: list[Item] = []
    indicator: str | None = None
    severity: Severity | None = None
    risk_answer: Literal["yes", "no"] | None = None
    high_above_jpy: int | None = None
    high_severity: Severity | None = None
    handoff_answer: Literal["yes", "no"] | None = None
    optional: bool = False
    max_chars: int = 2000

    @field_validator("text", mode="before")
    @classmethod
    def _all_languages(cls, v: object, info) -> Localized:  # type: ignore[no-untyped-def]
        return _localized(v, f"question {info.data.get('id')}")

    @model_validator(mode="after")
    def _consistent(self) -> "Question":
        if self.type == "checklist" and not self.items:
            raise FlowDataError(f"{self.id}: a checklist needs items")
        if self.type in ("yes_no", "yes_no_unknown") and self.risk_answer and not (self.indicator and self.severity):
            raise FlowDataError(f"{self.id}: a risky answer needs an indicator and a severity")
        if self.type == "amount" and not (self.indicator and self.severity):
            raise FlowDataError(f"{self.id}: the fee question needs an indicator and a severity")
        return self


class ResidenceStatus(BaseModel):
    id: str
    label: Localized
    # What workers call it besides its names, in any language ("thực tập sinh 1", "magang 1", "TITP 1"); matched
    # like the names (bot.text.numbered_name_key).
    aliases: list[str] = []

    @field_validator("label", mode="before")
    @classmethod
    def _all_languages(cls, v: object, info) -> Localized:  # type: ignore[no-untyped-def]
        return _localized(v, f"residence status {info.data.get('id')}")


class Prefecture(BaseModel):
    id: str
    ja: str
    latin: str

    def label(self, lang: str) -> str:
        return self.ja if lang in ("ja", "zh") else self.latin


class Helpline(BaseModel):
    id: str
    name: Localized
    phone: str | None = None
    url: str | None = None
    source: str

    @field_validator("name", mode="before")
    @classmethod
    def _all_languages(cls, v: object, info) -> Localized:  # type: ignore[no-untyped-def]
        return _localized(v, f"helpline {info.data.get('id')}")


class Currency(BaseModel):
    code: str
    jpy_per_unit: float
    symbols: list[str] = []
    words: list[str] = []


class CurrencyTable(BaseModel):
    as_of: str
    source: str
    currencies: list[Currency]
    default_by_language: dict[str, str]

    def by_code(self, code: str) -> Currency:
        for c in self.currencies:
            if c.code == code:
                return c
        raise KeyError(code)


class Promises(BaseModel):
    """What the privacy notice tells every worker, in numbers: the settings may keep them more strictly, never
    less (see bot.privacy.broken_promises)."""

    free_text_retention_days: int = Field(gt=0)
    report_min_respondents: int = Field(ge=2)


class FlowBook(BaseModel):
    """Everything the engine needs to talk, loaded once."""

    questions: list[Question]
    promises: Promises
    texts: dict[str, Localized]
    indicators: dict[str, Localized]
    keywords: dict[str, dict[str, list[str]]]
    residence_statuses: list[ResidenceStatus]
    prefectures: list[Prefecture]
    helplines: list[Helpline]
    currencies: CurrencyTable

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(qid)

    def t(self, text_id: str, lang: str, **values: object) -> str:
        text = self.texts[text_id](lang)
        return text.format(**values) if values else text

    def helpline_text(self, lang: str) -> str:
        parts = []
        for h in self.helplines:
            if h.id in ("police", "ambulance_fire"):
                continue  # already named in the sentences that use this list
            contact = h.phone or h.url or ""
            parts.append(f"{h.name(lang)}: {contact}")
        return " / ".join(parts)


def _read(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_flowbook(data_dir: Path | None = None, content_dir: Path | None = None) -> FlowBook:
    data_dir, content_dir = data_dir or DATA_DIR, content_dir or CONTENT_DIR
    try:
        sheet = _read(data_dir / "self_diagnosis.yaml")
        ui_file = _read(data_dir / "ui.yaml")
        ui = ui_file["texts"]
        nudge_texts = _read(data_dir / "nudges.yaml")["texts"]
        if overlap := set(ui) & set(nudge_texts):
            raise FlowDataError(f"texts defined twice (ui.yaml and nudges.yaml): {sorted(overlap)}")
        ui = {**ui, **nudge_texts}
        indicators = _read(data_dir / "indicators.yaml")["indicators"]
        keywords = _read(data_dir / "keywords.yaml")["keywords"]
        statuses = _read(data_dir / "residence_statuses.yaml")["statuses"]
        prefectures = _read(data_dir / "prefectures.yaml")["prefectures"]
        currencies = _read(data_dir / "currencies.yaml")
        helplines = _read(content_dir / "helplines.yaml")["helplines"]
        book = FlowBook(
            questions=sheet["questions"],
            promises=ui_file["promises"],
            texts={k: _localized(v, f"text {k}") for k, v in ui.items()},
            indicators={k: _localized(v, f"indicator {k}") for k, v in indicators.items()},
            keywords={intent: {lang: [str(w) for w in (words or [])] for lang, words in by_lang.items()}
                      for intent, by_lang in keywords.items()},
            residence_statuses=statuses,
            prefectures=prefectures,
            helplines=helplines,
            currencies=currencies,
        )
    except FlowDataError:
        raise
    except Exception as exc:  # pydantic's ValidationError wraps our FlowDataError messages too
        raise FlowDataError(str(exc)) from exc
    _check_references(book)
    return book


def _check_references(book: FlowBook) -> None:
    ids = [q.id for q in book.questions]
    if ids != [f"Q{i}" for i in range(1, 14)]:
        raise FlowDataError(f"the sheet must have Q1..Q13 in order, got {ids}")
    for q in book.questions:
        for ind in [q.indicator, *(i.indicator for i in q.items)]:
            if ind and ind not in book.indicators:
                raise FlowDataError(f"{q.id}: unknown indicator {ind!r}")
    for intent, by_lang in book.keywords.items():
        missing = [lang for lang in LANGUAGES if not by_lang.get(lang)]
        if missing:
            raise FlowDataError(f"keywords {intent}: missing words for {', '.join(missing)}")
    for lang in LANGUAGES:
        if lang not in book.currencies.default_by_language:
            raise FlowDataError(f"currencies: no default currency for {lang}")


@lru_cache(maxsize=1)
def default_flowbook() -> FlowBook:
    return load_flowbook()
