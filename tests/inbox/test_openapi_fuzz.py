"""Generated requests to every documented endpoint (bench/openapi_fuzz.py, with fewer examples): whatever a
client sends, with or without a token, the answer is never a server error."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "openapi_fuzz.py"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_generated_request_gets_a_server_error(database_url):
    spec = importlib.util.spec_from_file_location("openapi_fuzz", BENCH)
    fuzz = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(fuzz)  # type: ignore[union-attr]
    cases, failures = fuzz.fuzz(examples=8, database_url=database_url)
    assert failures == []
    assert len(cases) >= 15 and sum(cases.values()) >= 200, cases
