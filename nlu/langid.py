"""Guesses the language of a short message offline, for choosing the language of the answer.

Scripts decide what they can (Burmese letters are Burmese, kana is Japanese); Chinese characters without kana and
all Latin-script messages (English, Tagalog, Indonesian, Portuguese, Spanish, Vietnamese with or without its
accents, romanised Burmese, Japanese in romaji) go to a character n-gram model trained on the NLU data, the bot's
own texts in 9 languages, the portal articles and short messages and romaji written for it (nlu/train/langid/;
`mirai nlu train`; shipped in nlu/models/langid.json.gz). In a message with Chinese characters only those decide
between Japanese and Chinese (the Latin words of "thank you 哦" say nothing about it).

`detect_language(text)` returns None when unsure: the bot then asks the worker to choose.
`resolve_language(text, hint)` is what a conversation uses: the worker's current language (the hint) is kept
unless the message is clearly in another one. Workers of every language type "hello", "unsubscribe" or
"arigatou"; such messages must not switch a Vietnamese conversation to English.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from nlu.linear import LinearModel, load_json_gz
from nlu.text import add_group, char_wb_ngrams, fold_latin, normalize, script_of, scripts, words

MODEL_PATH = Path(__file__).resolve().parent / "models" / "langid.json.gz"
LANGUAGES = ("ja", "en", "zh", "vi", "tl", "id", "my", "pt", "es")
_HAN_LANGUAGES = ("ja", "zh")

# Below this probability, a guess without a hint is "unsure" (None).
MIN_CONFIDENCE = 0.4
MIN_LATIN_LETTERS = 3
# With a hint, a Latin-script message switches language only on strong evidence (see resolve_language).
SWITCH_CONFIDENCE = 0.8
HINT_KEEP_PROBABILITY = 0.05
SWITCH_MIN_WORDS = 3


def langid_features(text: str) -> dict[str, float]:
    norm = normalize(text)
    feats: dict[str, float] = {}
    add_group(feats, ("c" + g for g in char_wb_ngrams(norm, 1, 4)), 1.0)
    add_group(feats, ("w" + w for w in words(fold_latin(norm))), 1.0)
    return feats


@dataclass(frozen=True)
class LanguageGuess:
    language: str | None
    confidence: float
    scores: dict[str, float]


class LanguageIdentifier:
    def __init__(self, model: LinearModel) -> None:
        self.model = model

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> LanguageIdentifier:
        return cls(LinearModel.from_json(load_json_gz(path)))

    def guess(self, text: str) -> LanguageGuess:
        """The most likely language and the probabilities, restricted by the scripts in the text."""
        norm = normalize(text)
        found = scripts(norm)
        if not found:
            return LanguageGuess(None, 0.0, {})
        if "mymr" in found:
            return LanguageGuess("my", 1.0, {"my": 1.0})
        if "kana" in found:
            return LanguageGuess("ja", 1.0, {"ja": 1.0})
        if "han" in found:
            # Japanese or Chinese: only the CJK characters tell; the Latin words in "thank you 哦" do not.
            han = "".join(ch if script_of(ch) != "latn" else " " for ch in norm)
            ranking = [(lang, p) for lang, p in self.model.ranking(langid_features(han)) if lang in _HAN_LANGUAGES]
        else:
            ranking = self.model.ranking(langid_features(norm))
        total = sum(p for _, p in ranking) or 1.0
        scores = {lang: p / total for lang, p in ranking}
        best = max(scores, key=scores.__getitem__)
        return LanguageGuess(best, scores[best], scores)

    def detect(self, text: str) -> str | None:
        guess = self.guess(text)
        if guess.language is None or guess.confidence < MIN_CONFIDENCE:
            return None
        norm = normalize(text)
        if scripts(norm) == {"latn"} and sum(ch.isalpha() for ch in norm) < MIN_LATIN_LETTERS:
            return None  # "ok", "hi", "po": typed in every language
        return guess.language

    def resolve(self, text: str, hint: str | None) -> str | None:
        """The language of the answer: the hint unless the message is clearly in another language."""
        if hint not in LANGUAGES:
            return self.detect(text)
        guess = self.guess(text)
        if guess.language is None or guess.language == hint:
            return hint
        found = scripts(normalize(text))
        if "mymr" in found or "kana" in found:
            return guess.language  # written in another script than the hint's: an unmistakable switch
        if "han" in found:
            if hint in _HAN_LANGUAGES:  # kanji alone fit both Japanese and Chinese: keep the conversation's
                return hint if guess.scores.get(hint, 0.0) >= HINT_KEEP_PROBABILITY else guess.language
            return guess.language
        # Latin script: loanwords, romaji and English commands are typed in every language. Romaji never switches
        # to Japanese (a worker who types "nihongo de onegaishimasu" on a Latin keyboard reads no kana): the
        # choice is among the languages written in Latin letters, and a switch needs strong evidence.
        latin = {lang: p for lang, p in guess.scores.items() if lang not in _HAN_LANGUAGES}
        total = sum(latin.values())
        if not total:
            return hint
        best = max(latin, key=latin.__getitem__)
        if (best != hint and latin[best] / total >= SWITCH_CONFIDENCE
                and latin.get(hint, 0.0) / total < HINT_KEEP_PROBABILITY
                and len(words(normalize(text))) >= SWITCH_MIN_WORDS):
            return best
        return hint


_lock = threading.Lock()
_default: LanguageIdentifier | None = None


def default_identifier() -> LanguageIdentifier:
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = LanguageIdentifier.load()
    return _default


def detect_language(text: str) -> str | None:
    """The language of a short message, or None when unsure (no letters, or no language stands out)."""
    return default_identifier().detect(text or "")


def resolve_language(text: str, hint: str | None) -> str | None:
    return default_identifier().resolve(text or "", hint)
