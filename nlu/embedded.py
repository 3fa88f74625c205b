"""The embedded NLU: intent classifier, danger detector and language identifier, all offline and in-process.

The intent model is a logistic regression over character n-grams and words trained from nlu/nlu.yml's examples
(`mirai nlu train`), shipped as nlu/models/intent.json.gz. The danger detector combines the danger phrases of
bot/flows/keywords.yaml with the classifier's probability of the danger intent, with thresholds chosen for recall.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from nlu.langid import LanguageIdentifier
from nlu.linear import LinearModel, load_json_gz
from nlu.text import fold_latin, intent_features, key

NLU_DIR = Path(__file__).resolve().parent
MODELS_DIR = NLU_DIR / "models"
INTENT_MODEL = MODELS_DIR / "intent.json.gz"
DANGER_MODEL = MODELS_DIR / "danger.json.gz"
LANGID_MODEL = MODELS_DIR / "langid.json.gz"
KEYWORDS_FILE = NLU_DIR.parent / "bot" / "flows" / "keywords.yaml"
DANGER_LEXICON = NLU_DIR / "danger.yaml"
DANGER = "danger"
ORDINARY = "ordinary"  # the danger model's class of everyday talk

# P(danger) from the danger model that makes a message danger with a cue word, and without any.
DEFAULT_DANGER_THRESHOLD = 0.9
DEFAULT_DANGER_KEYWORD_THRESHOLD = 0.2


@dataclass(frozen=True)
class IntentResult:
    intent: str
    confidence: float
    ranking: list[tuple[str, float]]


class IntentClassifier:
    def __init__(self, model: LinearModel) -> None:
        self.model = model

    @classmethod
    def load(cls, path: Path = INTENT_MODEL) -> IntentClassifier:
        return cls(LinearModel.from_json(load_json_gz(path)["model"]))

    def classify(self, text: str, features: dict[str, float] | None = None) -> IntentResult:
        ranking = self.model.ranking(features or intent_features(text))
        return IntentResult(ranking[0][0], ranking[0][1], ranking)


class PhraseSet:
    """Phrases matched like the engine matches keywords: case, width and Latin accents ignored; Latin phrases
    match whole words (a word ending in * matches any ending, a lone * any one word), others anywhere."""

    def __init__(self, phrases: list[str]) -> None:
        latin: list[str] = []
        other: list[str] = []
        for phrase in phrases:
            k = fold_latin(key(str(phrase)))
            if not k:
                continue
            if k.replace("*", "").isascii():
                parts = []
                for tok in k.split():
                    if tok == "*":
                        parts.append(r"\w+")
                    elif tok.endswith("*"):
                        parts.append(re.escape(tok[:-1]) + r"\w*")
                    else:
                        parts.append(re.escape(tok))
                latin.append(r"\W+".join(parts))
            else:
                other.append(re.escape(k))
        # One alternation per set: a message is searched once, not once per phrase (longest phrases first).
        alternatives = []
        if latin:
            alternatives.append(r"(?<!\w)(?:" + "|".join(sorted(set(latin), key=len, reverse=True)) + r")(?!\w)")
        if other:
            alternatives.append("|".join(sorted(set(other), key=len, reverse=True)))
        self.pattern: re.Pattern[str] | None = re.compile("|".join(alternatives)) if alternatives else None

    @staticmethod
    def form(text: str) -> str:
        return fold_latin(key(text))

    def found_in(self, form: str) -> bool:
        return bool(self.pattern and self.pattern.search(form))

    def remove_from(self, form: str) -> str:
        return self.pattern.sub(" ", form) if self.pattern else form


def _by_language(node: object) -> list[str]:
    return [str(p) for phrases in (node or {}).values() for p in phrases or []] if isinstance(node, dict) else []


@dataclass(frozen=True)
class DangerLexicon:
    strong: PhraseSet
    cues: PhraseSet
    ordinary: PhraseSet

    @classmethod
    def load(cls, lexicon_file: Path = DANGER_LEXICON, keywords_file: Path = KEYWORDS_FILE) -> DangerLexicon:
        data = yaml.safe_load(lexicon_file.read_text(encoding="utf-8")) if lexicon_file.exists() else {}
        data = data or {}
        keywords: list[str] = []
        if keywords_file.exists():
            flows = yaml.safe_load(keywords_file.read_text(encoding="utf-8")) or {}
            keywords = _by_language((flows.get("keywords") or {}).get(DANGER))
        # The flow's danger phrases ("help me", "助けて", "socorro") are cues: taken alone they also stand in
        # "can you help me with the visa form".
        return cls(PhraseSet(_by_language(data.get("strong"))),
                   PhraseSet(_by_language(data.get("cues")) + keywords),
                   PhraseSet(_by_language(data.get("ordinary"))))


@dataclass(frozen=True)
class DangerResult:
    danger: bool
    probability: float
    strong: bool
    cue: bool


class DangerDetector:
    """Danger first, tuned for recall on the danger examples, and kept quiet on everyday talk:

    - a strong danger phrase (nlu/danger.yaml) makes a message danger;
    - a cue word ("help", "kill", "knife", the flow's danger keywords) makes it danger when the danger model (the
      intents plus a class of everyday talk) gives the danger intent at least the cue threshold;
    - without either, the danger model alone needs a much higher probability.
    Everyday figures of speech ("dying to go home", "my phone died", "笑死") are taken out before matching.
    """

    def __init__(self, model: LinearModel, lexicon: DangerLexicon, threshold: float = DEFAULT_DANGER_THRESHOLD,
                 cue_threshold: float = DEFAULT_DANGER_KEYWORD_THRESHOLD) -> None:
        self.model = model
        self.lexicon = lexicon
        self.threshold = threshold
        self.cue_threshold = cue_threshold

    @classmethod
    def load(cls, lexicon: DangerLexicon, path: Path = DANGER_MODEL) -> DangerDetector:
        data = load_json_gz(path)
        return cls(LinearModel.from_json(data["model"]), lexicon,
                   float(data.get("threshold", DEFAULT_DANGER_THRESHOLD)),
                   float(data.get("cue_threshold", DEFAULT_DANGER_KEYWORD_THRESHOLD)))

    def check(self, text: str, features: dict[str, float] | None = None) -> DangerResult:
        p = dict(self.model.ranking(features or intent_features(text))).get(DANGER, 0.0)
        form = self.lexicon.ordinary.remove_from(PhraseSet.form(text))
        strong = self.lexicon.strong.found_in(form)
        cue = strong or self.lexicon.cues.found_in(form)
        danger = strong or (cue and p >= self.cue_threshold) or p >= self.threshold
        return DangerResult(danger, p, strong, cue)


@dataclass(frozen=True)
class EmbeddedResult:
    intent: str
    confidence: float
    language: str | None
    danger: bool
    ranking: list[tuple[str, float]]


class EmbeddedNlu:
    def __init__(self, classifier: IntentClassifier, identifier: LanguageIdentifier, danger: DangerDetector) -> None:
        self.classifier = classifier
        self.identifier = identifier
        self.danger = danger

    @classmethod
    def load(cls, models_dir: Path = MODELS_DIR, keywords_file: Path = KEYWORDS_FILE) -> EmbeddedNlu:
        from nlu.langid import default_identifier

        identifier = default_identifier() if models_dir == MODELS_DIR else \
            LanguageIdentifier.load(models_dir / LANGID_MODEL.name)
        return cls(IntentClassifier.load(models_dir / INTENT_MODEL.name), identifier,
                   DangerDetector.load(DangerLexicon.load(keywords_file=keywords_file), models_dir / DANGER_MODEL.name))

    def parse(self, text: str, language_hint: str | None = None) -> EmbeddedResult:
        features = intent_features(text)
        result = self.classifier.classify(text, features)
        danger = self.danger.check(text, features)
        language = self.identifier.resolve(text, language_hint)
        return EmbeddedResult(result.intent, result.confidence, language, danger.danger, result.ranking)

    def is_danger(self, text: str) -> bool:
        return self.danger.check(text).danger


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _cached() -> EmbeddedNlu:
    return EmbeddedNlu.load()


def default_embedded() -> EmbeddedNlu:
    """The shipped models, loaded once per process."""
    with _lock:
        return _cached()
