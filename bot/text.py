"""Reading what a worker typed: cleaning, keyword matching and numbers, the same way on every channel."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

_ANSI_ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")  # terminal colour codes pasted with text
_TRAILING_PUNCT = " \t.!?。！？…~〜、,，:;：；\"'「」『』()（）"


def clean(text: str) -> str:
    """Drops control and invisible characters, unifies widths (NFKC) and spacing."""
    text = _ANSI_ESCAPE.sub("", unicodedata.normalize("NFKC", text))
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\n\t":
            kept.append(" ")
        elif cat in ("Cc", "Cs", "Co", "Cn") or (cat == "Cf" and ch not in "\u200c\u200d"):
            continue  # control, surrogate, private-use, unassigned, and format chars (bidi tricks)
        else:
            kept.append(ch)
    return re.sub(r"\s+", " ", "".join(kept)).strip()


# Keywords of 9 languages are compared with every message: their folded forms are computed once.
@lru_cache(maxsize=32768)
def _fold_latin(text: str) -> str:
    """Removes accents from Latin letters only (so 'không' matches 'khong'), leaving other scripts intact:
    Burmese and Vietnamese vowels are combining marks too, but Burmese words change meaning without them."""
    decomposed = unicodedata.normalize("NFD", text)
    out: list[str] = []
    for ch in decomposed:
        if unicodedata.category(ch) == "Mn" and out and out[-1].isascii():
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out)).replace("đ", "d").replace("Đ", "D")


@lru_cache(maxsize=32768)
def key(text: str) -> str:
    """The comparable form of a short answer: cleaned, case-folded, without end punctuation."""
    return clean(text).casefold().strip(_TRAILING_PUNCT).strip()


def loose_key(text: str) -> str:
    return _fold_latin(key(text))


def matches_any(text: str, words: Iterable[str]) -> bool:
    k, lk = key(text), loose_key(text)
    for w in words:
        wk = key(str(w))
        if wk and (wk == k or _fold_latin(wk) == lk):
            return True
    return False


def contains_any(text: str, phrases: Iterable[str]) -> bool:
    """True when one of the phrases stands in the text (words bounded for Latin scripts)."""
    latin, other = _phrase_patterns(phrases if isinstance(phrases, tuple) else tuple(str(p) for p in phrases))
    return bool((latin is not None and latin.search(loose_key(text))) or
                (other is not None and other.search(key(text))))


@lru_cache(maxsize=64)
def _phrase_patterns(phrases: tuple[str, ...]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """One alternation for the Latin phrases (compared accent-free, as whole words) and one for the others
    (anywhere in the text): the danger list is checked on every message, phrase by phrase it was the slowest
    part of a turn."""
    latin, other = set(), set()
    for p in phrases:
        pk = key(p)
        if not pk:
            continue
        if pk.isascii() or _fold_latin(pk).isascii():
            latin.add(_fold_latin(pk))
        else:
            other.add(pk)

    def alternation(words: set[str]) -> str:
        return "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))

    return (re.compile(r"(?<![a-z0-9])(?:" + alternation(latin) + r")(?![a-z0-9])") if latin else None,
            re.compile(alternation(other)) if other else None)


def ascii_digits(text: str) -> str:
    """Turns digits of any script (Myanmar ၁၂၃, Arabic-Indic, full width) into 0-9."""
    return "".join(str(unicodedata.decimal(ch)) if ch.isdigit() and not ch.isascii() and
                   unicodedata.decimal(ch, None) is not None else ch for ch in text)


def is_meaningful(text: str) -> bool:
    """True when the text has at least one letter or digit (not only emoji, symbols or punctuation)."""
    return any(unicodedata.category(ch)[0] in ("L", "N") for ch in text)


_SELECTION_SEPARATORS = re.compile(r"[\s,，、;；/・&+]+|\band\b")


def parse_selection(text: str, count: int, item_ids: list[str] | None = None) -> list[int] | None:
    """Reads a list of option numbers ("1 3 5", "1,3", "１、３", "2-4", or item ids like "3.4").

    Returns 1-based positions in order of first mention, [] for "0", or None when the text is not a list of
    numbers or names a number out of range.
    """
    body = ascii_digits(clean(text)).casefold().strip(" .。")
    if not body:
        return None
    tokens = [t.strip(".") for t in _SELECTION_SEPARATORS.split(body) if t.strip(".")]
    if not tokens:
        return None
    picked: list[int] = []
    for tok in tokens:
        if item_ids and tok in item_ids:
            picked.append(item_ids.index(tok) + 1)
            continue
        rng = re.fullmatch(r"(\d{1,3})\s*[-~〜–]\s*(\d{1,3})", tok)
        if rng:
            lo, hi = int(rng.group(1)), int(rng.group(2))
            if lo < 1 or hi > count or lo > hi:
                return None
            picked.extend(range(lo, hi + 1))
            continue
        if not re.fullmatch(r"\d{1,3}", tok):
            return None
        n = int(tok)
        if n == 0 and len(tokens) == 1:
            return []
        if n < 1 or n > count:
            return None
        picked.append(n)
    seen: list[int] = []
    for n in picked:
        if n not in seen:
            seen.append(n)
    return seen


def parse_single_number(text: str, count: int) -> int | None:
    picked = parse_selection(text, count)
    if picked is not None and len(picked) == 1:
        return picked[0]
    return None


_ROMAN = {"i": "1", "ii": "2", "iii": "3"}
# Words that only introduce a number: "số 1", "No. 1", "nº 1", "1号", "(i)".
_NUMBER_FILLERS = {"so", "no", "n", "nº", "n°", "number", "num", "#"}


def numbered_name_key(text: str) -> str:
    """A residence status as workers type it, comparable with its names: accents, case, brackets, spaces and the
    words that introduce a number ignored, Roman numerals as digits ("Thực tập kỹ năng số 1", "thuc tap ky nang 1"
    and "Technical Intern Training (i)" become "thuctapkynang1" and "technicalinterntraining1")."""
    words = re.split(r"[\s()\[\]（）.,:/\-]+", loose_key(text).replace("号", " "))
    kept = [_ROMAN.get(w, w) for w in words if w and w not in _NUMBER_FILLERS]
    return "".join(kept)
