"""Builds nlu/nlu.yml (what Rasa trains on) from nlu/train/<lang>.yml.

    python -m nlu.build           write nlu/nlu.yml
    python -m nlu.build --check   exit 1 when nlu/nlu.yml is not what the build produces
"""
from __future__ import annotations

import argparse
import sys

from nlu.data import NLU_YML, build_nlu_yml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlu.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that nlu/nlu.yml is up to date")
    args = parser.parse_args(argv)
    text = build_nlu_yml()
    if args.check:
        current = NLU_YML.read_text(encoding="utf-8") if NLU_YML.exists() else ""
        if current != text:
            print(f"{NLU_YML} is out of date: run python -m nlu.build", file=sys.stderr)
            return 1
        print(f"{NLU_YML} is up to date")
        return 0
    NLU_YML.write_text(text, encoding="utf-8")
    print(f"wrote {NLU_YML}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
