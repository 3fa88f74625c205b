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
from nlu.text import danger_features, fold_latin, intent_features, key

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


# Languages whose accents carry meaning: in Vietnamese the tones tell "sợ" (afraid) from "sổ" (notebook) and "số",
# "tự tử" (suicide) from "từ từ" (slowly), "máu" (blood) from "mau" (quick). Their accented phrases match only as
# written; the same phrases typed without accents are listed separately where they are unambiguous.
ACCENT_SENSITIVE = frozenset({"vi"})


def _is_latin(k: str) -> bool:
    """Latin letters only (Vietnamese ones included), so the phrase is matched as whole words."""
    return all(ord(ch) < 0x250 or 0x1E00 <= ord(ch) <= 0x1EFF for ch in k if ch.isalpha())


def _alternation(phrases: list[str], latin: bool) -> re.Pattern[str] | None:
    """One compiled alternation for a list of phrase keys, longest first: Latin ones as whole words (a word ending
    in * matches any ending, a lone * any one word), others anywhere (spaces taken out: the message is searched
    without its spaces, as Burmese, Japanese and Chinese writers space words freely)."""
    alternatives: list[str] = []
    for k in phrases:
        if latin:
            parts = []
            for tok in k.split():
                if tok == "*":
                    parts.append(r"\w+")
                elif tok.endswith("*"):
                    parts.append(re.escape(tok[:-1]) + r"\w*")
                else:
                    parts.append(re.escape(tok))
            alternatives.append(r"\W+".join(parts))
        else:
            alternatives.append(re.escape(k.replace(" ", "")))
    if not alternatives:
        return None
    body = "|".join(sorted(set(alternatives), key=len, reverse=True))
    return re.compile(r"(?<!\w)(?:" + body + r")(?!\w)" if latin else body)


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


@dataclass(frozen=True)
class Forms:
    """A message as the lexicon reads it: `raw` (normalised, accents kept), `folded` (Latin accents removed) and
    `dense` (folded, without spaces: for phrases in other scripts)."""
    raw: str
    folded: str
    dense: str

    @classmethod
    def of(cls, text: str) -> Forms:
        raw = key(text)
        folded = fold_latin(raw)
        return cls(raw, folded, folded.replace(" ", ""))


class PhraseSet:
    """Phrases matched like the engine matches keywords: case, width and Latin accents ignored (except the `exact`
    phrases, matched with their accents); Latin phrases match whole words (a word ending in * matches any ending,
    a lone * any one word), others anywhere, spaces ignored. Each kind is one compiled alternation: a message is
    searched once per kind, not once per phrase."""

    def __init__(self, phrases: list[str], exact: list[str] | None = None) -> None:
        keys = [k for k in (fold_latin(key(str(p))) for p in phrases) if k.replace("*", "").strip()]
        exact_keys = [k for k in (key(str(p)) for p in exact or []) if k.replace("*", "").strip()]
        self.latin = _alternation([k for k in keys if _is_latin(k)], latin=True)
        self.exact = _alternation([k for k in exact_keys if _is_latin(k)], latin=True)
        self.other = _alternation([k for k in keys + exact_keys if not _is_latin(k)], latin=False)

    @staticmethod
    def form(text: str) -> Forms:
        return Forms.of(text)

    def found_in(self, form: Forms) -> bool:
        return bool((self.latin and self.latin.search(form.folded)) or (self.exact and self.exact.search(form.raw))
                    or (self.other and self.other.search(form.dense)))

    def remove_from(self, form: Forms) -> Forms:
        raw, folded, dense = form.raw, form.folded, form.dense
        if self.exact:
            spans = [m.span() for m in self.exact.finditer(raw)]
            if spans:  # blanked in both forms (folding keeps the length), so "nhốt ngoài" also hides "nhot"
                raw = _blank(raw, spans)
                if len(folded) == len(form.raw):
                    folded = _blank(folded, spans)
        if self.latin:
            raw = self.latin.sub(" ", raw)  # the unaccented parts of an accented message
            folded = self.latin.sub(" ", folded)
        if self.other:
            dense = self.other.sub(" ", dense)
        return Forms(raw, folded, dense)


def _phrase_set(*nodes: object) -> PhraseSet:
    """The phrases of {language: [phrases]} mappings; accented phrases of ACCENT_SENSITIVE languages match exactly."""
    folded: list[str] = []
    exact: list[str] = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        for lang, phrases in node.items():
            for phrase in phrases or []:
                text = str(phrase)
                (exact if lang in ACCENT_SENSITIVE and fold_latin(key(text)) != key(text) else folded).append(text)
    return PhraseSet(folded, exact)


@dataclass(frozen=True)
class DangerLexicon:
    strong: PhraseSet
    cues: PhraseSet
    ordinary: PhraseSet
    frames: PhraseSet
    earnest: PhraseSet

    @classmethod
    def load(cls, lexicon_file: Path = DANGER_LEXICON, keywords_file: Path = KEYWORDS_FILE) -> DangerLexicon:
        data = yaml.safe_load(lexicon_file.read_text(encoding="utf-8")) if lexicon_file.exists() else {}
        data = data or {}
        keywords: object = {}
        if keywords_file.exists():
            flows = yaml.safe_load(keywords_file.read_text(encoding="utf-8")) or {}
            keywords = (flows.get("keywords") or {}).get(DANGER)
        # The flow's danger phrases ("help me", "助けて", "socorro") are cues: taken alone they also stand in
        # "can you help me with the visa form".
        return cls(_phrase_set(data.get("strong")), _phrase_set(data.get("cues"), keywords),
                   _phrase_set(data.get("ordinary")), _phrase_set(data.get("frames")), _phrase_set(data.get("earnest")))


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
    - without either, the danger model alone needs a much higher probability (and a message with no everyday
      figure of speech or frame in it).
    Everyday figures of speech ("dying to go home", "my phone died", "笑死") are taken out before matching, and in a
    message framed as a film, a game, the news, a joke ("lol", "kkkk", "wkwk", "😂") or a request for help with a
    task, everything goes one level down: a strong phrase only counts as a cue, and a cue as nothing (unless the
    message says it is no joke: the `earnest` phrases).
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
        p = dict(self.model.ranking(features or danger_features(text))).get(DANGER, 0.0)
        whole = Forms.of(text)
        form = self.lexicon.ordinary.remove_from(whole)
        strong = self.lexicon.strong.found_in(form)
        cue = strong or self.lexicon.cues.found_in(form)
        framed = self.lexicon.frames.found_in(self.lexicon.earnest.remove_from(whole))
        if framed:
            strong, cue = False, strong  # a film, a game, a joke: one level down
        # The model alone decides only messages that no everyday phrase or frame explains.
        alone = p >= self.threshold and not framed and form == whole
        danger = strong or (cue and p >= self.cue_threshold) or alone
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
        result = self.classifier.classify(text, intent_features(text))
        danger = self.danger.check(text, danger_features(text))
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
