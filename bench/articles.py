"""How long a portal article search takes: every fixture query of tests/fixtures/article_queries (9 languages),
on a library whose term lookups are warm and on a fresh one. Target: well under 10 ms a search.

    .venv/bin/python bench/articles.py
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.articles import ArticleLibrary  # noqa: E402
from tests.articles.test_articles import fixture_queries  # noqa: E402


def timed(library: ArticleLibrary, queries: list[tuple[str, str, str]]) -> list[float]:
    took = []
    for lang, query, _ in queries:
        started = time.perf_counter()
        library.search(query, lang)
        took.append(time.perf_counter() - started)
    return took


def main() -> None:
    queries = fixture_queries()
    warm = ArticleLibrary.load()
    cold_took = timed(warm, queries)  # first pass: every term is looked up for the first time
    warm_took = timed(warm, queries)
    fresh = timed(ArticleLibrary(list(warm)), queries)
    print(f"bench/articles.py: {len(queries)} fixture queries in 9 languages, {len(list(warm))} articles")
    for name, took in (("first pass", cold_took), ("warm", warm_took), ("fresh library", fresh)):
        ordered = sorted(took)
        print(f"  {name:<14} mean {statistics.mean(took) * 1000:6.2f} ms  p50 {ordered[len(ordered) // 2] * 1000:6.2f} ms"
              f"  p99 {ordered[int(len(ordered) * 0.99)] * 1000:6.2f} ms  max {ordered[-1] * 1000:6.2f} ms")


if __name__ == "__main__":
    main()
