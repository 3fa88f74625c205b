"""Portal articles: loaded and checked at start, searched offline in all 9 languages.

Each article is one Markdown file with YAML front matter and the 9 language blocks side by side (format in
content/articles/FORMAT.md). `ArticleLibrary.load` refuses to start on a file with anything missing or unknown
and names the file and the problem.

Search is BM25 over features of the normalised text (NFKC, case-folded, Latin accents removed so "luong" finds
"lương"): character 2- and 3-grams of every run of letters (Japanese, Chinese and Burmese have no spaces between
words), plus whole words and word pairs for languages written with spaces. The title and the keywords weigh
more than the summary, the summary more than the body, and each article's English text is indexed with a low
weight too because workers mix English words into their own language. Chinese characters also count one by
one, and Burmese is cut into syllables rather than code points. The term frequencies are computed at load; a
search looks its terms up in every article (about a millisecond for the current 31 articles).
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from itertools import chain
from pathlib import Path

import yaml

from bot.flowbook import CONTENT_DIR, DATA_DIR, LANGUAGES

ARTICLES_DIR = CONTENT_DIR / "articles"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SECTIONS: tuple[str, ...] = ("before-coming", "working", "learning", "living", "help")
FRONT_MATTER_FIELDS: tuple[str, ...] = ("id", "section", "tags", "indicators", "updated", "sources", "keywords")
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_LANG_MARKER = re.compile(r"^<!--\s*lang:\s*([A-Za-z_-]*)\s*-->\s*$", re.MULTILINE)


class ArticleError(ValueError):
    """An article file is incomplete or inconsistent; the bot must not start on it."""


@dataclass(frozen=True)
class Source:
    name: str
    url: str


@dataclass(frozen=True)
class ArticleText:
    """One language block of an article."""

    title: str
    summary: str
    body: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class Article:
    """One article: its front matter, and title, summary, body and keywords in each of the 9 languages."""

    id: str
    section: str
    tags: tuple[str, ...]
    indicators: tuple[str, ...]
    updated: date
    sources: tuple[Source, ...]
    texts: dict[str, ArticleText] = field(repr=False, compare=False)  # by language
    path: Path | None = field(default=None, repr=False, compare=False)

    def text(self, language: str) -> ArticleText:
        return self.texts[language]

    def title(self, language: str) -> str:
        return self.texts[language].title

    def summary(self, language: str) -> str:
        return self.texts[language].summary

    def body(self, language: str) -> str:
        return self.texts[language].body

    def keywords(self, language: str) -> tuple[str, ...]:
        return self.texts[language].keywords


@dataclass(frozen=True)
class SearchHit:
    """An article and how well it matches (a BM25 sum for search, 0..1 for for_indicators)."""

    article: Article
    score: float


# --------------------------------------------------------------------------------------------- loading


@lru_cache(maxsize=4)
def indicator_names(data_dir: Path | None = None) -> dict[str, dict[str, str]]:
    """The ILO indicators as named to a worker, by id and language (bot/flows/indicators.yaml)."""
    with ((data_dir or DATA_DIR) / "indicators.yaml").open(encoding="utf-8") as f:
        return {str(k): dict(v or {}) for k, v in ((yaml.safe_load(f) or {}).get("indicators") or {}).items()}


def known_indicators(data_dir: Path | None = None) -> frozenset[str]:
    """The ILO indicator ids: the keys under `indicators:` in bot/flows/indicators.yaml."""
    return frozenset(indicator_names(data_dir))


def _fail(path: Path, problem: str) -> ArticleError:
    return ArticleError(f"article {path.name}: {problem}")


def _split_front_matter(path: Path, raw: str) -> tuple[dict, str]:
    raw = raw.lstrip("\ufeff")
    lines = raw.splitlines()
    if not lines or lines[0].strip() != "---":
        raise _fail(path, "missing front matter (the file must start with a '---' line)")
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            break
    else:
        raise _fail(path, "front matter is not closed by a '---' line")
    try:
        meta = yaml.load("\n".join(lines[1:i]), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise _fail(path, f"front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise _fail(path, "front matter must be a YAML map")
    return meta, "\n".join(lines[i + 1:])


def _string_list(path: Path, value: object, what: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if value is None and allow_empty:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise _fail(path, f"{what} must be a list of words")
    items = tuple(str(v).strip() for v in value)
    if any(not v for v in items):
        raise _fail(path, f"{what} has an empty entry")
    if not items and not allow_empty:
        raise _fail(path, f"{what} is empty")
    return items


KEYWORDS_PER_LANGUAGE = (3, 10)


def _parse_blocks(path: Path, text: str) -> dict[str, tuple[str, str, str]]:
    markers = list(_LANG_MARKER.finditer(text))
    if not markers:
        raise _fail(path, "no language blocks (expected '<!-- lang: ja -->' ... '<!-- lang: es -->')")
    if text[: markers[0].start()].strip():
        raise _fail(path, "text between the front matter and the first '<!-- lang: xx -->' marker")
    blocks: dict[str, tuple[str, str, str]] = {}
    for n, m in enumerate(markers):
        lang = m.group(1)
        if lang not in LANGUAGES:
            raise _fail(path, f"unknown language block {lang!r} (expected one of {', '.join(LANGUAGES)})")
        if lang in blocks:
            raise _fail(path, f"language block {lang!r} appears twice")
        end = markers[n + 1].start() if n + 1 < len(markers) else len(text)
        blocks[lang] = _parse_block(path, lang, text[m.end(): end])
    missing = [lang for lang in LANGUAGES if lang not in blocks]
    if missing:
        raise _fail(path, f"missing language block(s): {', '.join(missing)}")
    if list(blocks) != list(LANGUAGES):
        raise _fail(path, f"language blocks must be in the order {', '.join(LANGUAGES)}, got {', '.join(blocks)}")
    return blocks


def _parse_block(path: Path, lang: str, block: str) -> tuple[str, str, str]:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", block.strip()) if p.strip()]
    if not paragraphs or not paragraphs[0].startswith("# ") or "\n" in paragraphs[0]:
        raise _fail(path, f"[{lang}] missing title (the block must start with one '# Title' line)")
    title = paragraphs[0][2:].strip()
    if not title:
        raise _fail(path, f"[{lang}] empty title")
    if len(paragraphs) < 2 or paragraphs[1].startswith(("#", "-", "*", "<!--")):
        raise _fail(path, f"[{lang}] missing summary (one paragraph right after the title)")
    summary = " ".join(line.strip() for line in paragraphs[1].splitlines())
    body = "\n\n".join(paragraphs[2:])
    if not body:
        raise _fail(path, f"[{lang}] missing body")
    if any(p.startswith("# ") for p in paragraphs[2:]):
        raise _fail(path, f"[{lang}] a second '# ' title in the body (use '## ' for headings)")
    return title, summary, body


def load_article(path: Path, indicators: frozenset[str] | None = None) -> Article:
    """Reads and checks one article file; raises ArticleError naming the file and the problem."""
    indicators = known_indicators() if indicators is None else indicators
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read: {exc}") from exc
    meta, rest = _split_front_matter(path, raw)
    missing = [f for f in FRONT_MATTER_FIELDS if f not in meta or (meta[f] is None and f != "indicators")]
    if missing:
        raise _fail(path, f"missing front-matter field(s): {', '.join(missing)}")
    unknown = sorted(set(meta) - set(FRONT_MATTER_FIELDS))
    if unknown:
        raise _fail(path, f"unknown front-matter field(s): {', '.join(map(str, unknown))}")

    article_id = str(meta["id"])
    if not _ID.match(article_id):
        raise _fail(path, f"id {article_id!r} must be lowercase-with-dashes")
    if article_id != path.stem:
        raise _fail(path, f"id {article_id!r} differs from the file name {path.stem!r}")
    section = meta["section"]
    if section not in SECTIONS:
        raise _fail(path, f"unknown section {section!r} (expected one of {', '.join(SECTIONS)})")
    tags = _string_list(path, meta["tags"], "tags")
    article_indicators = _string_list(path, meta["indicators"], "indicators", allow_empty=True)
    for ind in article_indicators:
        if ind not in indicators:
            raise _fail(path, f"unknown indicator id {ind!r} (see bot/flows/indicators.yaml)")
    if len(set(article_indicators)) != len(article_indicators):
        raise _fail(path, "an indicator is listed twice")
    updated = meta["updated"]
    if not isinstance(updated, date):
        raise _fail(path, f"updated must be a date (YYYY-MM-DD), got {updated!r}")

    sources_raw = meta["sources"]
    if not isinstance(sources_raw, list) or not sources_raw:
        raise _fail(path, "sources must list at least one source")
    sources = []
    for n, s in enumerate(sources_raw, 1):
        if not isinstance(s, dict) or not str(s.get("name") or "").strip():
            raise _fail(path, f"source {n} has no name")
        url = str(s.get("url") or "").strip()
        if not re.match(r"^https://[^\s/]+\.[^\s]+$", url):
            raise _fail(path, f"source {n} ({s['name']}) has no https URL (got {url or 'nothing'!r})")
        sources.append(Source(name=str(s["name"]).strip(), url=url))

    keywords_raw = meta["keywords"]
    if not isinstance(keywords_raw, dict):
        raise _fail(path, "keywords must be a map of languages to lists of words")
    extra = [str(k) for k in keywords_raw if k not in LANGUAGES]
    if extra:
        raise _fail(path, f"keywords for unknown language(s): {', '.join(extra)}")
    missing = [lang for lang in LANGUAGES if not keywords_raw.get(lang)]
    if missing:
        raise _fail(path, f"missing keywords for: {', '.join(missing)}")

    blocks = _parse_blocks(path, rest)
    texts = {}
    for lang in LANGUAGES:
        keywords = _string_list(path, keywords_raw[lang], f"keywords[{lang}]")
        low, high = KEYWORDS_PER_LANGUAGE
        if not low <= len(keywords) <= high:
            raise _fail(path, f"keywords[{lang}] has {len(keywords)} entries (expected {low} to {high})")
        texts[lang] = ArticleText(title=blocks[lang][0], summary=blocks[lang][1], body=blocks[lang][2],
                                  keywords=keywords)
    return Article(id=article_id, section=section, tags=tags, indicators=article_indicators, updated=updated,
                   sources=tuple(sources), texts=texts, path=path)


# --------------------------------------------------------------------------------------------- search

# Field weights for the query's language; the article's English text counts ENGLISH_WEIGHT times as much.
FIELD_WEIGHTS: dict[str, float] = {"title": 3.0, "keywords": 3.0, "summary": 2.0, "body": 1.0}
ENGLISH_WEIGHT = 0.3
WORD_WEIGHT = 1.5  # a whole word, word pair or Burmese syllable that matches counts more than one n-gram
# BM25 constants. The term frequencies are field-weighted (a word in a title counts 3), so K1 is larger than
# the textbook 1.2 to keep the same saturation per occurrence.
K1, B = 6.0, 0.5

# A run of letters, digits and combining marks (Burmese vowel signs are marks, not letters; the Burmese
# punctuation marks U+104A and U+104B are left out).
_RUN = re.compile(r"(?:[^\W_]|[\u0300-\u036f\u1000-\u1049\u104c-\u109f\u3099\u309a\uaa60-\uaa7f])+")
_LATIN_MARKS = re.compile(r"(?<=[A-Za-z])[\u0300-\u036f]+")
_BURMESE = re.compile(r"[\u1000-\u109f\uaa60-\uaa7f]")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Burmese syllable breaks: before a consonant or independent vowel that is not stacked (after U+1039) and
# does not carry an asat or virama itself (U+103A, U+1039).
_MY_SYLLABLE = re.compile(r"(?<!\u1039)([\u1000-\u102a\u103f\u104c-\u104f])(?![\u103a\u1039])")


def normalise(text: str) -> str:
    """NFKC, case-folded, Latin accents removed ("Lương" -> "luong", "đ" -> "d"); the marks of other scripts
    (Burmese vowels, Japanese voicing) are kept: without them the words change."""
    text = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())
    return unicodedata.normalize("NFC", _LATIN_MARKS.sub("", text)).replace("đ", "d")


def _spaced(run: str) -> bool:
    """Written with spaces between words (Latin is ASCII once folded; Greek and Cyrillic too)."""
    return run.isascii() or all(ch.isascii() or "\u0370" <= ch <= "\u052f" for ch in run)


# Term kinds: character n-grams are stored as they are (they hold only letters and the padding space);
# the other kinds start with a control character, so no kind can collide with another.
WORD, PAIR, SYLLABLE = "\x01", "\x02", "\x03"


def features(text: str) -> Counter[str]:
    """The terms of a text:
    - character 2- and 3-grams of every run of letters (words padded with a space, so that beginnings and
      endings count), plus single Chinese characters (钱, 税, 打 are words on their own);
    - whole words and pairs of neighbouring words, for scripts written with spaces;
    - Burmese syllables and syllable pairs instead of code-point n-grams (a Burmese syllable is several
      code points, so code-point n-grams mostly cut syllables into pieces that every text shares)."""
    out: Counter[str] = Counter()
    grams: list[str] = []
    previous = ""
    for run in _RUN.findall(normalise(text)):
        if _spaced(run):
            out[WORD + run] += 1
            if previous:
                out[PAIR + previous + " " + run] += 1
            previous = run
            padded = f" {run} "
            grams.extend(padded[i: i + 2] for i in range(len(padded) - 1))
            grams.extend(padded[i: i + 3] for i in range(len(padded) - 2))
            continue
        previous = ""  # a run of another script breaks the word sequence
        if _BURMESE.search(run):
            syllables = _MY_SYLLABLE.sub(r" \1", run).split()
            out.update(SYLLABLE + x for x in syllables)
            out.update(SYLLABLE + x + y for x, y in zip(syllables, syllables[1:]))
            continue
        grams.extend(_HAN.findall(run) if len(run) > 1 else [run])
        grams.extend(run[i: i + 2] for i in range(len(run) - 1))
        grams.extend(run[i: i + 3] for i in range(len(run) - 2))
    out.update(grams)
    return out


_POSTINGS_CACHE = 200_000  # terms whose scores are kept per language (bounded: queries come from strangers)


def _weighted_terms(article: Article, language: str) -> Counter[str]:
    """The field-weighted term frequencies of one language block of an article."""
    t = article.text(language)
    keywords = list(t.keywords) + (list(article.tags) if language == "en" else [])
    fields = {"title": t.title, "summary": t.summary, "body": t.body, "keywords": " ; ".join(keywords)}
    terms: Counter[str] = Counter()
    for name, text in fields.items():
        weight = FIELD_WEIGHTS[name]
        for term, tf in features(text).items():
            terms[term] += weight * tf
    return terms


class _Index:
    """BM25 over the weighted fields of every article in one language, plus its English text counted
    ENGLISH_WEIGHT times. Term frequencies stay in one map per language block (shared by the 9 indexes);
    a search looks its few dozen terms up in the 31 articles."""

    def __init__(self, docs: list[tuple[Counter[str], Counter[str] | None]]) -> None:
        self.docs = docs
        self.n = len(docs)
        lengths = [own.total() + (ENGLISH_WEIGHT * en.total() if en is not None else 0.0) for own, en in docs]
        average = sum(lengths) / len(lengths) if lengths else 1.0
        self.norms = [K1 * (1 - B + B * length / average) for length in lengths]
        self.df: Counter[str] = Counter(chain.from_iterable(own.keys() | (en.keys() if en else set())
                                                            for own, en in docs))
        self._postings: dict[str, tuple[tuple[int, float], ...]] = {}

    def postings(self, term: str) -> tuple[tuple[int, float], ...]:
        """(article number, BM25 score) for every article with the term; computed once per term."""
        found = self._postings.get(term)
        if found is None:
            found = ()
            df = self.df.get(term)
            if df:
                weight = math.log(1 + (self.n - df + 0.5) / (df + 0.5)) * (K1 + 1)
                if term[0] < " ":  # a word, word pair or Burmese syllable
                    weight *= WORD_WEIGHT
                pairs = []
                for i, (own, en) in enumerate(self.docs):
                    tf = own.get(term, 0.0) + (ENGLISH_WEIGHT * en.get(term, 0.0) if en is not None else 0.0)
                    if tf:
                        pairs.append((i, weight * tf / (tf + self.norms[i])))
                found = tuple(pairs)
            if len(self._postings) < _POSTINGS_CACHE:
                self._postings[term] = found
        return found

    def scores(self, query: str) -> dict[int, float]:
        totals: dict[int, float] = defaultdict(float)
        for term in features(query):
            for i, score in self.postings(term):
                totals[i] += score
        return totals


class ArticleLibrary:
    def __init__(self, articles: list[Article]) -> None:
        self.articles: tuple[Article, ...] = tuple(sorted(articles, key=lambda a: a.id))
        self._by_id = {a.id: a for a in self.articles}
        self._indicator_cache: dict[str, dict[str, float]] = {}
        blocks = {(a.id, lang): _weighted_terms(a, lang) for a in self.articles for lang in LANGUAGES}
        self._indexes = {
            lang: _Index([(blocks[a.id, lang], blocks[a.id, "en"] if lang != "en" else None) for a in self.articles])
            for lang in LANGUAGES
        }

    @classmethod
    def load(cls, content_dir: Path | None = None) -> ArticleLibrary:
        """Loads every content_dir/*.md (FORMAT.md excepted); raises ArticleError on the first bad file."""
        content_dir = Path(content_dir) if content_dir is not None else ARTICLES_DIR
        if not content_dir.is_dir():
            raise ArticleError(f"article directory {content_dir} does not exist")
        indicators = known_indicators()
        paths = sorted(p for p in content_dir.glob("*.md") if p.name != "FORMAT.md")
        if not paths:
            raise ArticleError(f"no articles in {content_dir}")
        return cls([load_article(p, indicators) for p in paths])

    def __len__(self) -> int:
        return len(self.articles)

    def __iter__(self) -> Iterator[Article]:
        return iter(self.articles)

    def get(self, article_id: str) -> Article | None:
        return self._by_id.get(article_id)

    def search(self, query: str, language: str, limit: int = 3) -> list[SearchHit]:
        """The articles that best answer a worker's words, best first (only those that match at all)."""
        _check_language(language)
        scores = self._indexes[language].scores(query or "")
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], self.articles[kv[0]].id))
        return [SearchHit(self.articles[i], round(s, 4)) for i, s in ranked[:max(limit, 0)] if s > 0]

    def for_indicators(self, indicator_ids: list[str], language: str, limit: int = 3) -> list[SearchHit]:
        """Articles that help with the ILO indicators a diagnosis found, most relevant first.

        Only articles that list one of the indicators are returned. Relevance is the mean, over the found
        indicators, of half how prominently the article lists it (its 1st indicator counts 1, the 2nd 1/2,
        the 3rd 1/3...) and half how well the article's text matches the indicator's name (searched in all 9
        languages, relative to the best match), so the order is the same whatever the worker's language;
        `language` is checked like search's (show `hit.article.title(language)`)."""
        _check_language(language)
        wanted = list(dict.fromkeys(indicator_ids))
        unknown = [i for i in wanted if i not in known_indicators()]
        if unknown:
            raise ValueError(f"unknown indicator id(s): {', '.join(unknown)}")
        hits = []
        for article in self.articles:
            prominence = {ind: 1.0 / (pos + 1) for pos, ind in enumerate(article.indicators)}
            if not any(ind in prominence for ind in wanted):
                continue
            score = sum(0.5 * prominence.get(ind, 0.0) + 0.5 * self._indicator_match(ind).get(article.id, 0.0)
                        for ind in wanted) / len(wanted)
            hits.append(SearchHit(article, round(score, 4)))
        hits.sort(key=lambda h: (-h.score, h.article.id))
        return hits[:max(limit, 0)]

    def _indicator_match(self, indicator: str) -> dict[str, float]:
        """How well each article's text matches the indicator's name: mean over the 9 languages of the
        article's search score over the best score."""
        if indicator not in self._indicator_cache:
            names = indicator_names()[indicator]
            match: dict[str, float] = defaultdict(float)
            for lang in LANGUAGES:
                hits = self.search(names.get(lang) or names.get("en", ""), lang, limit=len(self.articles))
                for hit in hits:
                    match[hit.article.id] += hit.score / hits[0].score / len(LANGUAGES)
            self._indicator_cache[indicator] = dict(match)
        return self._indicator_cache[indicator]


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r} (expected one of {', '.join(LANGUAGES)})")


@lru_cache(maxsize=1)
def default_library() -> ArticleLibrary:
    return ArticleLibrary.load()
