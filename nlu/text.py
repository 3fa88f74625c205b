"""Text normalisation and features shared by the embedded models (pure Python, no dependencies).

Japanese, Chinese and Burmese have no spaces between words, so every model reads character n-grams of each
space-separated chunk (like Rasa's `CountVectorsFeaturizer` with `analyzer: char_wb`) plus whole words.
"""
from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[^\W_]+")
_TRAILING_PUNCT = " .,!?;:。、！？…~〜-—'\"“”‘’()（）「」『』[]"


@lru_cache(maxsize=1024)
def normalize(text: str) -> str:
    """NFKC, case-folded, without control or invisible characters, spaces collapsed (cached: the intent, danger
    and language models each normalise the same message)."""
    text = unicodedata.normalize("NFKC", text or "")
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\n\t\r":
            kept.append(" ")
        elif cat in ("Cc", "Cs", "Co", "Cn") or (cat == "Cf" and ch not in "\u200c\u200d"):
            continue
        else:
            kept.append(ch)
    return _SPACES.sub(" ", "".join(kept)).strip().casefold()


@lru_cache(maxsize=16384)
def fold_latin(text: str) -> str:
    """Removes accents from Latin letters only ('không' -> 'khong'); Burmese and other marks are kept."""
    decomposed = unicodedata.normalize("NFD", text)
    out: list[str] = []
    for ch in decomposed:
        if unicodedata.category(ch) == "Mn" and out and out[-1].isascii():
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out)).replace("đ", "d")


def key(text: str) -> str:
    """The comparable form of a phrase: normalised, without end punctuation."""
    return normalize(text).strip(_TRAILING_PUNCT).strip()


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def char_wb_ngrams(text: str, lo: int, hi: int) -> list[str]:
    """Character n-grams inside each space-separated chunk, padded with a space on both sides."""
    grams: list[str] = []
    for chunk in text.split(" "):
        if not chunk:
            continue
        padded = f" {chunk} "
        size = len(padded)
        for n in range(lo, hi + 1):
            if n > size:
                break
            grams.extend(padded[i:i + n] for i in range(size - n + 1))
    return grams


def script_of(ch: str) -> str:
    """A coarse script class for language identification."""
    o = ord(ch)
    if 0x1000 <= o <= 0x109F or 0xAA60 <= o <= 0xAA7F or 0xA9E0 <= o <= 0xA9FF:
        return "mymr"
    if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9F:
        return "kana"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "han"
    if ch.isalpha() and o < 0x2500:
        return "latn"
    return ""


@lru_cache(maxsize=1024)
def scripts(text: str) -> frozenset[str]:
    return frozenset(s for s in map(script_of, text) if s)


def danger_features(text: str) -> dict[str, float]:
    """Sparse, L2-normalised features of one message for the danger model.

    Latin accents are folded (workers often type without them), character n-grams of 1-4 inside words, whole
    words and word pairs (Burmese: syllables and syllable pairs); each group is normalised on its own so long and short messages weigh alike.
    """
    norm = fold_latin(normalize(text))
    return _word_and_gram_groups(norm, words(norm))


# The intent model's "words" of Chinese characters or kana longer than this are left out: Japanese and Chinese
# have no spaces, so such a "word" is mostly a whole sentence, a feature that only memorises its example (the
# character n-grams carry these languages); likewise Burmese runs longer than MAX_BURMESE_WORD.
MAX_CJK_WORD = 4
MAX_BURMESE_WORD = 6
ACCENTED_WORD_WEIGHT = 0.5


def _short_enough(token: str) -> bool:
    found = scripts(token)
    if "han" in found or "kana" in found:
        return len(token) <= MAX_CJK_WORD
    if "mymr" in found:
        return len(token) <= MAX_BURMESE_WORD
    return True


def intent_features(text: str) -> dict[str, float]:
    """Sparse, L2-normalised features of one message for the intent model (chosen by cross-validation on
    nlu/train/, `python -m nlu.crossval`).

    Latin accents are folded (workers often type without them), character n-grams of 1-4 inside words, whole
    words (long runs of Chinese characters, kana or Burmese left out) and word pairs, Burmese syllables and
    syllable pairs, and the words with their accents when the message has any (Vietnamese tones tell words apart);
    each group is normalised on its own so long and short messages weigh alike.
    """
    raw = normalize(text)
    norm = fold_latin(raw)
    feats = _word_and_gram_groups(norm, [t for t in words(norm) if t.isascii() or _short_enough(t)])
    if norm != raw:
        add_group(feats, ("a" + t for t in words(raw)), ACCENTED_WORD_WEIGHT)
    return feats


def _word_and_gram_groups(norm: str, toks: list[str]) -> dict[str, float]:
    """The groups both models share: character n-grams of 1-4 inside words, the words and word pairs, and
    Burmese syllables and syllable pairs."""
    feats: dict[str, float] = {}
    add_group(feats, ("c" + g for g in char_wb_ngrams(norm, 1, 4)), 1.0)
    add_group(feats, ("w" + t for t in toks), 0.7)
    add_group(feats, ("b" + a + " " + b for a, b in zip(toks, toks[1:])), 0.5)
    if any("\u1000" <= ch <= "\u109f" for ch in norm):
        syllables = burmese_syllables(norm)
        add_group(feats, ("s" + s for s in syllables if s != " "), 0.7)
        add_group(feats, ("t" + a + b for a, b in zip(syllables, syllables[1:])), 0.5)
    return feats


# A Burmese syllable starts at a consonant (or digit) that is not stacked under the previous one (virama U+1039)
# and does not itself close a syllable (asat U+103A, or a virama stacking the next consonant).
_BURMESE_SYLLABLE_START = re.compile(r"(?<!\u1039)([\u1000-\u1021\u103f\u1040-\u1049])(?![\u103a\u1039])")


def burmese_syllables(text: str) -> list[str]:
    """Burmese text cut into syllables (chunks between spaces are kept apart by a " " item)."""
    out: list[str] = []
    for chunk in text.split(" "):
        if out:
            out.append(" ")
        out.extend(_BURMESE_SYLLABLE_START.sub(r" \1", chunk).split())
    return out


def add_group(feats: dict[str, float], names, weight: float) -> None:  # type: ignore[no-untyped-def]
    group = set(names)
    if not group:
        return
    value = weight / math.sqrt(len(group))
    for name in group:
        feats[name] = feats.get(name, 0.0) + value
