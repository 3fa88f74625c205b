"""The tests' fake LINE server in a process of its own, so that the benchmark's client and the fake do not
share one interpreter lock (and neither slows the other's figures). `GET /__bench/count` answers how many
reply and push calls it accepted."""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.providers import FakeLine, Recorded, Reply  # noqa: E402


class CountingFakeLine(FakeLine):
    """The fake LINE, plus two controls: `POST /__bench/tokens` ({user_id: [reply tokens]}) issues reply
    tokens before the clock starts, and `GET /__bench/count` says how many replies and pushes were accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted = 0

    def _handle(self, req: Recorded) -> Reply:
        if req.path == "/__bench/count":
            return Reply(200, {"accepted": self.accepted})
        if req.path == "/__bench/tokens":
            for user_id, tokens in (req.json or {}).items():
                for token in tokens:
                    self.issue_reply_token(user_id, token)
            return Reply(200, {})
        reply = super()._handle(req)
        if reply.status == 200 and req.path in ("/v2/bot/message/reply", "/v2/bot/message/push"):
            self.accepted += 1  # under the fake's lock (held by the caller)
        return reply

    def _serve(self, h) -> None:  # type: ignore[no-untyped-def]
        super()._serve(h)
        with self._lock:  # a long run would otherwise keep every request in memory
            self.requests.clear()
            self.delivered.clear()


def main() -> None:
    fake = CountingFakeLine().start()
    print(fake.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
