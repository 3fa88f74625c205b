"""Fake LINE, Telegram and Messenger (Graph API) servers for tests that drive the real SDKs.

Each fake is a small standard-library HTTP server (``ThreadingHTTPServer`` in a daemon thread on
127.0.0.1, port 0). It records every request, answers the way the real provider does (paths, JSON shapes,
error bodies, limits) and keeps what it "delivered" so a test can read it back.

Pointing the SDKs at a fake::

    with FakeLine(access_token="tok") as line:
        cfg = linebot.v3.messaging.Configuration(host=line.base_url, access_token="tok")
    with FakeTelegram(token="123:abc") as tg:
        bot = telegram.Bot("123:abc", base_url=tg.base_url + "/bot")
    with FakeGraph(page_access_token="pat") as graph:
        httpx.post(f"{graph.base_url}/v21.0/me/messages", params={"access_token": "pat"}, json=...)

Scripted trouble for every fake: ``fail_next(status, count, headers, body, path_contains)`` answers the
next matching requests with an error (``status=0`` drops the connection without an answer), and
``delay_seconds`` slows every answer.
"""
from __future__ import annotations

import email.parser
import email.policy
import html.parser
import json
import re
import secrets
import socket
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .signing import DEFAULT_PAGE_ID

__all__ = [
    "Recorded",
    "Failure",
    "FakeProvider",
    "FakeLine",
    "FakeTelegram",
    "FakeGraph",
    "utf16_len",
    "grapheme_len",
]


# --------------------------------------------------------------------------------------------------
# Recording and the common base
# --------------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    """One request as the fake received it, and what it answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case keys
    body: bytes
    json: Any  # parsed JSON body, or None
    at: float  # time.monotonic() on arrival
    form: dict[str, str] | None = None  # parsed urlencoded / multipart body, or None
    status: int | None = None  # status answered (0 = connection dropped); None while in flight
    response: Any = None  # JSON answered


@dataclass
class Failure:
    status: int
    count: int
    headers: dict[str, str]
    body: Any
    path_contains: str | None
    after_delivery: bool

    def matches(self, path: str) -> bool:
        return self.path_contains is None or self.path_contains in path


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able object, bytes, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (how LINE counts message text: an emoji such as 🍎 is 2)."""
    return len(text.encode("utf-16-le")) // 2


def grapheme_len(text: str) -> int:
    """Approximate count of user-perceived characters (grapheme clusters), standard library only.

    Combining marks (Burmese vowel signs, Vietnamese tone marks in decomposed form), variation selectors,
    zero-width joiners and the character a ZWJ glues on, emoji modifiers and the second flag letter are
    not counted on their own. LINE counts action labels and template texts this way.
    """
    count = 0
    after_zwj = False
    regional_open = False
    for ch in text:
        cp = ord(ch)
        if after_zwj:
            after_zwj = False
            continue
        if ch == "\u200d":
            after_zwj = True
            continue
        if unicodedata.category(ch) in ("Mn", "Mc", "Me") or 0xFE00 <= cp <= 0xFE0F or 0x1F3FB <= cp <= 0x1F3FF:
            continue
        if 0x1F1E6 <= cp <= 0x1F1FF:  # regional indicators pair into one flag
            if regional_open:
                regional_open = False
                continue
            regional_open = True
        else:
            regional_open = False
        count += 1
    return count


def _parse_multipart(content_type: str, body: bytes) -> dict[str, str]:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    out: dict[str, str] = {}
    if not msg.is_multipart():
        return out
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_filename():
            out[name] = f"<file {part.get_filename()} {len(payload)} bytes>"
        else:
            out[name] = payload.decode(part.get_content_charset() or "utf-8", "replace")
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, provider: FakeProvider) -> None:
        self.provider = provider
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default stderr log
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        self.server.provider._serve(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


class FakeProvider:
    """Base of the fakes: server lifecycle, recording, scripted failures and delay."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[Recorded] = []
        self.delivered: list[Any] = []
        self.delay_seconds: float = 0
        self._failures: list[Failure] = []

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
            name=f"{type(self).__name__}-server", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in delay_seconds
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            conns = list(server.connections)
        for conn in conns:  # keep-alive connections of clients that outlive the fake
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- test controls ---------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        path_contains: str | None = None,
        *,
        after_delivery: bool = False,
    ) -> None:
        """Answer the next ``count`` requests whose path contains ``path_contains`` with ``status``.

        Such a request is recorded but not processed (nothing delivered, no retry key accepted, no reply
        token used). ``body=None`` gives the provider's own error body for that status. ``status=0`` closes
        the connection without any answer (a network failure / timeout as the client sees it).
        ``after_delivery=True`` processes the request normally first and then answers the error anyway:
        the "delivered but the answer was lost" case that retry keys exist for.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._failures.append(
                Failure(status, count, dict(headers or {}), body, path_contains, after_delivery)
            )

    def reset(self) -> None:
        """Forget recorded requests, deliveries, queued failures and per-test state; keep tokens,
        ``profiles`` and settings."""
        with self._lock:
            self.requests.clear()
            self.delivered.clear()
            self._failures.clear()
            self.delay_seconds = 0
            self._reset_state()

    def calls(self, path_contains: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if path_contains in r.path]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll ``predicate`` until it is true (for senders that deliver in the background)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate():
                    return True
            time.sleep(0.01)
        with self._lock:
            return bool(predicate())

    # ---- to implement ----------------------------------------------------------------------------

    def _reset_state(self) -> None:
        pass

    def _handle(self, req: Recorded) -> Reply:
        raise NotImplementedError

    def _error_body(self, status: int, headers: dict[str, str]) -> Any:
        return {"message": _phrase(status)}

    def _extra_headers(self) -> dict[str, str]:
        return {}

    # ---- serving ---------------------------------------------------------------------------------

    def _serve(self, h: _Handler) -> None:
        body = h._read_body()
        split = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in h.headers.items()}
        ctype = headers.get("content-type", "")
        parsed_json: Any = None
        form: dict[str, str] | None = None
        if body and ("json" in ctype or body[:1] in (b"{", b"[")):
            try:
                parsed_json = json.loads(body)
            except ValueError:
                parsed_json = None
        elif body and ctype.startswith("application/x-www-form-urlencoded"):
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        elif body and ctype.startswith("multipart/form-data"):
            form = _parse_multipart(ctype, body)
        req = Recorded(
            method=h.command, path=unquote(split.path), query=query, headers=headers, body=body,
            json=parsed_json, at=time.monotonic(), form=form,
        )
        with self._lock:
            self.requests.append(req)

        if self.delay_seconds:
            self._stopping.wait(self.delay_seconds)

        with self._lock:
            failure = next((f for f in self._failures if f.matches(req.path)), None)
            if failure is not None:
                failure.count -= 1
                if failure.count <= 0:
                    self._failures.remove(failure)
            if failure is None or failure.after_delivery:
                try:
                    reply = self._handle(req)
                except Exception as exc:  # a bug in the fake must not hang the client
                    reply = Reply(500, {"message": f"fake server error: {exc!r}"})
            if failure is not None:
                fheaders = dict(failure.headers)
                fbody = failure.body if failure.body is not None else self._error_body(failure.status, fheaders)
                reply = Reply(failure.status, fbody, fheaders)
            req.status = reply.status
            req.response = reply.body if not isinstance(reply.body, bytes) else None

        if reply.status == 0:
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        payload = reply.body if isinstance(reply.body, bytes) else (
            b"" if reply.body is None else json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
        )
        try:
            h.send_response(reply.status)
            out_headers = {"Content-Type": "application/json; charset=utf-8", **self._extra_headers(), **reply.headers}
            for k, v in out_headers.items():
                h.send_header(k, str(v))
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            h.wfile.flush()
        except OSError:
            h.close_connection = True


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# --------------------------------------------------------------------------------------------------
# LINE Messaging API
# --------------------------------------------------------------------------------------------------

_LINE_MESSAGE_TYPES = ("text", "textV2", "image", "video", "audio", "location", "sticker", "template",
                       "imagemap", "flex", "coupon")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class FakeLine(FakeProvider):
    """LINE Messaging API at ``base_url`` (what ``Configuration(host=...)`` takes, no trailing slash).

    ``delivered``: ``(to_user_id, message_dict)`` per message delivered by reply, push or multicast.
    """

    def __init__(
        self,
        access_token: str = "test-line-channel-access-token",
        *,
        strict_profiles: bool = False,
        reply_token_ttl: float | None = None,
    ) -> None:
        super().__init__()
        self.access_token = access_token
        self.strict_profiles = strict_profiles
        self.reply_token_ttl = reply_token_ttl  # seconds a reply token stays valid; None = forever
        self.profiles: dict[str, dict[str, Any]] = {}  # userId -> {"displayName", "language", ...}
        self._reply_tokens: dict[str, tuple[str, float]] = {}  # token -> (user_id, issued monotonic)
        self._used_reply_tokens: set[str] = set()
        self.accepted_retry_keys: dict[str, dict[str, Any]] = {}  # key -> {"request_id", "sent_messages"}
        self._message_seq = 0

    # ---- test controls ---------------------------------------------------------------------------

    def issue_reply_token(self, user_id: str, token: str | None = None) -> str:
        """A reply token that LINE would put in a webhook event from ``user_id`` (valid once).

        Pass ``token`` to accept a token that is already written in a fixture."""
        token = token or f"rt-{uuid.uuid4()}"
        with self._lock:
            self._reply_tokens[token] = (user_id, time.monotonic())
            self._used_reply_tokens.discard(token)
        return token

    def expire_reply_token(self, token: str) -> None:
        with self._lock:
            self._reply_tokens.pop(token, None)

    def messages_to(self, user_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for to, m in self.delivered if to == user_id]

    def texts_to(self, user_id: str) -> list[str]:
        return [m.get("text", "") for m in self.messages_to(user_id)]

    def _reset_state(self) -> None:
        self._reply_tokens.clear()
        self._used_reply_tokens.clear()
        self.accepted_retry_keys.clear()

    # ---- protocol --------------------------------------------------------------------------------

    def _extra_headers(self) -> dict[str, str]:
        return {"x-line-request-id": str(uuid.uuid4())}

    def _error_body(self, status: int, headers: dict[str, str]) -> Any:
        if status == 429:
            return {"message": "The API rate limit has been exceeded. Try again later."}
        if status >= 500:
            return {"message": "Internal server error"}
        return {"message": _phrase(status)}

    def _handle(self, req: Recorded) -> Reply:
        auth = req.headers.get("authorization", "")
        if auth != f"Bearer {self.access_token}":
            return Reply(401, {"message": "Authentication failed. Confirm that the access token in the "
                                          "authorization header is valid."})
        path = req.path.rstrip("/")
        if req.method == "GET" and path.startswith("/v2/bot/profile/"):
            return self._profile(path.rsplit("/", 1)[1])
        if req.method == "POST" and path in ("/v2/bot/message/reply", "/v2/bot/message/push",
                                             "/v2/bot/message/multicast"):
            if req.json is None or not isinstance(req.json, dict):
                return Reply(400, {"message": "The request body could not be parsed as JSON"})
            kind = path.rsplit("/", 1)[1]
            retry_key = req.headers.get("x-line-retry-key")
            if retry_key is not None and kind == "reply":
                return Reply(400, {"message": "X-Line-Retry-Key header is not supported by this API"})
            if retry_key is not None and not _UUID_RE.match(retry_key):
                return Reply(400, {"message": "The value for the 'X-Line-Retry-Key' header is invalid"})
            return getattr(self, f"_{kind}")(req.json, retry_key)
        return Reply(404, {"message": "Not found"})

    def _profile(self, user_id: str) -> Reply:
        known = self.profiles.get(user_id)
        if known is None and self.strict_profiles:
            return Reply(404, {"message": "Not found"})
        profile = {
            "userId": user_id,
            "displayName": "LINE User",
            "pictureUrl": f"https://profile.line-scdn.net/{user_id[:12]}",
            "statusMessage": "",
            "language": "en",
        }
        profile.update(known or {})
        profile["userId"] = user_id
        return Reply(200, {k: v for k, v in profile.items() if v is not None})

    def _sent(self, messages: list[dict[str, Any]]) -> list[dict[str, str]]:
        out = []
        for m in messages:
            self._message_seq += 1
            item = {"id": str(461230966842064897 + self._message_seq)}
            if m.get("type") in ("text", "textV2", "sticker"):
                item["quoteToken"] = "q" + secrets.token_urlsafe(24)
            out.append(item)
        return out

    def _check(self, body: dict[str, Any], *, multicast: bool = False) -> Reply | None:
        details = []
        to = body.get("to")
        if multicast:
            if not isinstance(to, list) or not 1 <= len(to) <= 500:
                details.append({"message": "Size must be between 1 and 500", "property": "to"})
        elif "to" in body or "replyToken" not in body:
            if not isinstance(to, str) or not to:
                details.append({"message": "May not be empty", "property": "to"})
        details += validate_line_messages(body.get("messages"))
        if details:
            return Reply(400, {"message": f"The request body has {len(details)} error(s)", "details": details})
        return None

    def _reply(self, body: dict[str, Any], retry_key: str | None) -> Reply:
        bad = self._check(body)
        if bad:
            return bad
        token = body.get("replyToken")
        issued = self._reply_tokens.get(token) if isinstance(token, str) else None
        expired = (
            issued is not None and self.reply_token_ttl is not None
            and time.monotonic() - issued[1] > self.reply_token_ttl
        )
        if issued is None or token in self._used_reply_tokens or expired:
            return Reply(400, {"message": "Invalid reply token"})
        self._used_reply_tokens.add(token)
        user_id = issued[0]
        for m in body["messages"]:
            self.delivered.append((user_id, m))
        return Reply(200, {"sentMessages": self._sent(body["messages"])})

    def _push(self, body: dict[str, Any], retry_key: str | None) -> Reply:
        return self._send(body, retry_key, multicast=False)

    def _multicast(self, body: dict[str, Any], retry_key: str | None) -> Reply:
        return self._send(body, retry_key, multicast=True)

    def _send(self, body: dict[str, Any], retry_key: str | None, *, multicast: bool) -> Reply:
        bad = self._check(body, multicast=multicast)
        if bad:
            return bad
        if retry_key is not None and retry_key in self.accepted_retry_keys:
            accepted = self.accepted_retry_keys[retry_key]
            conflict: dict[str, Any] = {"message": "The retry key is already accepted"}
            if accepted["sent_messages"]:
                conflict["sentMessages"] = accepted["sent_messages"]
            return Reply(409, conflict, {"x-line-accepted-request-id": accepted["request_id"]})
        recipients = body["to"] if multicast else [body["to"]]
        for user_id in recipients:
            for m in body["messages"]:
                self.delivered.append((user_id, m))
        request_id = str(uuid.uuid4())
        sent = [] if multicast else self._sent(body["messages"])
        if retry_key is not None:
            self.accepted_retry_keys[retry_key] = {"request_id": request_id, "sent_messages": sent}
        return Reply(200, {} if multicast else {"sentMessages": sent}, {"x-line-request-id": request_id})


def validate_line_messages(messages: Any) -> list[dict[str, str]]:
    """LINE's documented limits for message objects, as ``details`` entries of a 400 answer."""
    details: list[dict[str, str]] = []

    def err(prop: str, message: str) -> None:
        details.append({"message": message, "property": prop})

    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        err("messages", "Size must be between 1 and 5")
        return details
    for i, m in enumerate(messages):
        p = f"messages[{i}]"
        if not isinstance(m, dict):
            err(p, "Must be an object")
            continue
        mtype = m.get("type")
        if mtype not in _LINE_MESSAGE_TYPES:
            err(f"{p}.type", "Must be one of the following values: [" + ", ".join(_LINE_MESSAGE_TYPES) + "]")
            continue
        if mtype in ("text", "textV2"):
            text = m.get("text")
            if not isinstance(text, str) or not text:
                err(f"{p}.text", "May not be empty")
            elif utf16_len(text) > 5000:
                err(f"{p}.text", "Length must be between 0 and 5000")
        elif mtype in ("template", "flex"):
            alt = m.get("altText")
            if not isinstance(alt, str) or not alt:
                err(f"{p}.altText", "May not be empty")
            elif utf16_len(alt) > 400:
                err(f"{p}.altText", "Length must be between 0 and 400")
            if mtype == "template":
                _validate_line_template(m.get("template"), f"{p}.template", err)
            elif not isinstance(m.get("contents"), dict):
                err(f"{p}.contents", "May not be empty")
        qr = m.get("quickReply")
        if qr is not None:
            items = qr.get("items") if isinstance(qr, dict) else None
            if not isinstance(items, list) or not 1 <= len(items) <= 13:
                err(f"{p}.quickReply.items", "Size must be between 1 and 13")
            else:
                for j, item in enumerate(items):
                    ip = f"{p}.quickReply.items[{j}]"
                    if not isinstance(item, dict) or item.get("type") != "action":
                        err(f"{ip}.type", "Must be one of the following values: [action]")
                        continue
                    _validate_line_action(item.get("action"), f"{ip}.action", err)
    return details


def _validate_line_template(t: Any, p: str, err: Callable[[str, str], None]) -> None:
    if not isinstance(t, dict):
        err(p, "May not be empty")
        return
    ttype = t.get("type")
    if ttype == "buttons":
        has_header = bool(t.get("title") or t.get("thumbnailImageUrl"))
        limit = 60 if has_header else 160
        text = t.get("text")
        if not isinstance(text, str) or not text:
            err(f"{p}.text", "May not be empty")
        elif grapheme_len(text) > limit:
            err(f"{p}.text", f"Length must be between 0 and {limit}")
        if t.get("title") is not None and grapheme_len(str(t["title"])) > 40:
            err(f"{p}.title", "Length must be between 0 and 40")
        actions = t.get("actions")
        if not isinstance(actions, list) or not 1 <= len(actions) <= 4:
            err(f"{p}.actions", "Size must be between 1 and 4")
        else:
            for k, a in enumerate(actions):
                _validate_line_action(a, f"{p}.actions[{k}]", err)
    elif ttype == "confirm":
        text = t.get("text")
        if not isinstance(text, str) or not text:
            err(f"{p}.text", "May not be empty")
        elif grapheme_len(text) > 240:
            err(f"{p}.text", "Length must be between 0 and 240")
        actions = t.get("actions")
        if not isinstance(actions, list) or len(actions) != 2:
            err(f"{p}.actions", "Size must be between 2 and 2")
        else:
            for k, a in enumerate(actions):
                _validate_line_action(a, f"{p}.actions[{k}]", err)
    elif ttype == "carousel":
        columns = t.get("columns")
        if not isinstance(columns, list) or not 1 <= len(columns) <= 10:
            err(f"{p}.columns", "Size must be between 1 and 10")
        else:
            for c, col in enumerate(columns):
                acts = col.get("actions") if isinstance(col, dict) else None
                if not isinstance(acts, list) or not 1 <= len(acts) <= 3:
                    err(f"{p}.columns[{c}].actions", "Size must be between 1 and 3")
                else:
                    for k, a in enumerate(acts):
                        _validate_line_action(a, f"{p}.columns[{c}].actions[{k}]", err)
    elif ttype != "image_carousel":
        err(f"{p}.type", "Must be one of the following values: [buttons, confirm, carousel, image_carousel]")


def _validate_line_action(a: Any, p: str, err: Callable[[str, str], None]) -> None:
    if not isinstance(a, dict):
        err(p, "May not be empty")
        return
    atype = a.get("type")
    label = a.get("label")
    if label is not None and grapheme_len(str(label)) > 20:
        err(f"{p}.label", "Length must be between 0 and 20")
    if atype == "postback":
        data = a.get("data")
        if not isinstance(data, str) or not data:
            err(f"{p}.data", "May not be empty")
        elif len(data) > 300:
            err(f"{p}.data", "Length must be between 0 and 300")
        for key in ("displayText", "text", "fillInText"):
            if a.get(key) is not None and grapheme_len(str(a[key])) > 300:
                err(f"{p}.{key}", "Length must be between 0 and 300")
    elif atype == "message":
        text = a.get("text")
        if not isinstance(text, str) or not text:
            err(f"{p}.text", "May not be empty")
        elif grapheme_len(text) > 300:
            err(f"{p}.text", "Length must be between 0 and 300")
    elif atype == "uri":
        uri = a.get("uri")
        if not isinstance(uri, str) or not uri:
            err(f"{p}.uri", "May not be empty")
        elif len(uri) > 1000:
            err(f"{p}.uri", "Length must be between 0 and 1000")
    elif atype not in ("datetimepicker", "camera", "cameraRoll", "location", "richmenuswitch", "clipboard"):
        err(f"{p}.type", "Must be one of the following values: [postback, message, uri, datetimepicker, "
                         "camera, cameraRoll, location, richmenuswitch, clipboard]")


# --------------------------------------------------------------------------------------------------
# Telegram Bot API
# --------------------------------------------------------------------------------------------------

_TG_PATH = re.compile(r"^/bot([^/]+)/([A-Za-z]+)/?$")
_TG_ALLOWED_HTML = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
                    "tg-emoji", "code", "pre", "blockquote"}


class _TelegramHTMLCheck(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.error: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TG_ALLOWED_HTML and self.error is None:
            self.error = f'Unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if (not self.stack or self.stack[-1] != tag) and self.error is None:
            self.error = f'Unexpected end tag "{tag}"'
        elif self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


class FakeTelegram(FakeProvider):
    """Telegram Bot API. Pass ``base_url=fake.base_url + "/bot"`` to ``telegram.Bot``.

    ``delivered``: ``(chat_id as str, method, params)`` for sendMessage / editMessageText /
    editMessageReplyMarkup that succeeded; ``answered_callbacks``: params of answerCallbackQuery;
    ``webhook``: what setWebhook recorded (``url``, ``secret_token``, ``allowed_updates``, ...) or None.
    """

    def __init__(
        self,
        token: str = "7000000001:AAHfakeTokenForMiraiTests0123456789",
        *,
        username: str = "mirai_test_bot",
        first_name: str = "Mirai",
        require_https_webhook: bool = True,
        strict_edits: bool = False,
    ) -> None:
        super().__init__()
        self.token = token
        prefix = token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 7000000001
        self.username = username
        self.first_name = first_name
        self.require_https_webhook = require_https_webhook
        self.strict_edits = strict_edits  # editing a message this fake never sent -> "message to edit not found"
        self.answered_callbacks: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] | None = None
        self.blocked: set[str] = set()
        self.chats: dict[str, dict[str, Any]] = {}  # chat_id -> extra chat fields (first_name, username, ...)
        self.messages: dict[tuple[str, int], dict[str, Any]] = {}  # (chat_id, message_id) -> Message
        self._message_id = 1000

    # ---- test controls ---------------------------------------------------------------------------

    def block(self, chat_id: int | str) -> None:
        """The user blocked the bot: sending or editing in that chat answers 403 Forbidden."""
        with self._lock:
            self.blocked.add(str(chat_id))

    def unblock(self, chat_id: int | str) -> None:
        with self._lock:
            self.blocked.discard(str(chat_id))

    def sent_to(self, chat_id: int | str, method: str = "sendMessage") -> list[dict[str, Any]]:
        with self._lock:
            return [p for c, m, p in self.delivered if c == str(chat_id) and m == method]

    def texts_to(self, chat_id: int | str) -> list[str]:
        return [p.get("text", "") for p in self.sent_to(chat_id)]

    @property
    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def _reset_state(self) -> None:
        self.answered_callbacks.clear()
        self.webhook = None
        self.blocked.clear()
        self.messages.clear()

    # ---- protocol --------------------------------------------------------------------------------

    @staticmethod
    def _fail(status: int, description: str, parameters: dict[str, Any] | None = None) -> Reply:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return Reply(status, body)

    @staticmethod
    def _ok(result: Any, description: str | None = None) -> Reply:
        body: dict[str, Any] = {"ok": True, "result": result}
        if description:
            body["description"] = description
        return Reply(200, body)

    def _error_body(self, status: int, headers: dict[str, str]) -> Any:
        if status == 429:
            try:
                retry_after = int(float(headers.get("Retry-After") or headers.get("retry-after") or 1))
            except ValueError:
                retry_after = 1
            return {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after}}
        return {"ok": False, "error_code": status, "description": _phrase(status)}

    def _params(self, req: Recorded) -> dict[str, Any]:
        if isinstance(req.json, dict):
            params: dict[str, Any] = dict(req.json)
        else:  # PTB posts form fields; non-string values arrive JSON-encoded
            params = {}
            for k, v in (req.form or {}).items():
                try:
                    params[k] = json.loads(v) if v[:1] in ("{", "[") else v
                except ValueError:
                    params[k] = v
        for k, v in req.query.items():
            params.setdefault(k, v)
        if isinstance(params.get("message_id"), str) and params["message_id"].isdigit():
            params["message_id"] = int(params["message_id"])
        return params

    def _handle(self, req: Recorded) -> Reply:
        m = _TG_PATH.match(req.path)
        if not m or m.group(1) != self.token:
            return self._fail(404, "Not Found")
        method = m.group(2).lower()
        params = self._params(req)
        handler = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_text,
            "editmessagereplymarkup": self._edit_markup,
            "answercallbackquery": self._answer_callback,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
        }.get(method)
        if handler is None:
            return self._fail(404, "Not Found")
        return handler(params)

    def _get_me(self, params: dict[str, Any]) -> Reply:
        return self._ok({
            **self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False,
        })

    def _markup(self, params: dict[str, Any]) -> tuple[Any, Reply | None]:
        raw = params.get("reply_markup")
        if raw is None:
            return None, None
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                return None, self._fail(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if not isinstance(raw, dict):
            return None, self._fail(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in raw:
            rows = raw["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                return None, self._fail(400, "Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup "
                                             "should be an Array of Arrays")
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not str(button.get("text") or ""):
                        return None, self._fail(400, "Bad Request: text buttons are unallowed in the inline keyboard")
                    if "callback_data" in button:
                        data = button["callback_data"]
                        size = len(str(data).encode("utf-8"))
                        if not isinstance(data, str) or not 1 <= size <= 64:
                            return None, self._fail(400, "Bad Request: BUTTON_DATA_INVALID")
                    elif not any(k in button for k in ("url", "login_url", "switch_inline_query", "web_app",
                                                       "switch_inline_query_current_chat", "copy_text",
                                                       "callback_game", "pay",
                                                       "switch_inline_query_chosen_chat")):
                        return None, self._fail(400, "Bad Request: can't parse inline keyboard button: "
                                                     "InlineKeyboardButton must have exactly one optional field")
        elif "keyboard" in raw:
            if not isinstance(raw["keyboard"], list):
                return None, self._fail(400, "Bad Request: field \"keyboard\" must be of type Array")
        elif not ("remove_keyboard" in raw or "force_reply" in raw):
            return None, self._fail(400, "Bad Request: can't parse reply keyboard markup JSON object")
        return raw, None

    def _text(self, params: dict[str, Any]) -> tuple[str, Reply | None]:
        text = params.get("text")
        if text is None or str(text) == "":
            return "", self._fail(400, "Bad Request: message text is empty")
        text = str(text)
        shown = text
        if str(params.get("parse_mode") or "").upper() == "HTML":
            check = _TelegramHTMLCheck()
            check.feed(text)
            check.close()
            if check.error or check.stack:
                why = check.error or f'Can\'t find end tag corresponding to start tag "{check.stack[-1]}"'
                return "", self._fail(400, f"Bad Request: can't parse entities: {why}")
            shown = "".join(check.text)
        if not shown.strip():
            return "", self._fail(400, "Bad Request: message text is empty")
        if len(shown) > 4096:
            return "", self._fail(400, "Bad Request: message is too long")
        return shown, None

    def _chat(self, chat_id: str) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id}
        chat.update(self.chats.get(chat_id, {"first_name": "Worker"}))
        chat.setdefault("type", "private")
        return chat

    def _chat_id(self, params: dict[str, Any]) -> tuple[str, Reply | None]:
        chat_id = params.get("chat_id")
        if chat_id is None or str(chat_id) == "":
            return "", self._fail(400, "Bad Request: chat_id is empty")
        chat_id = str(chat_id)
        if chat_id in self.blocked:
            return chat_id, self._fail(403, "Forbidden: bot was blocked by the user")
        return chat_id, None

    def _send_message(self, params: dict[str, Any]) -> Reply:
        chat_id, bad = self._chat_id(params)
        if bad:
            return bad
        shown, bad = self._text(params)
        if bad:
            return bad
        markup, bad = self._markup(params)
        if bad:
            return bad
        self._message_id += 1
        message: dict[str, Any] = {
            "message_id": self._message_id,
            "from": self.bot_user,
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            "text": shown,
        }
        if markup is not None and "inline_keyboard" in markup:  # only inline keyboards are echoed back
            message["reply_markup"] = markup
        self.messages[(chat_id, self._message_id)] = message
        record = {**params, "chat_id": chat_id}
        if markup is not None:
            record["reply_markup"] = markup
        self.delivered.append((chat_id, "sendMessage", record))
        return self._ok(message)

    def _message_for_edit(self, params: dict[str, Any]) -> tuple[str, dict[str, Any] | None, Reply | None]:
        if params.get("inline_message_id"):
            return "", None, None
        chat_id, bad = self._chat_id(params)
        if bad:
            return chat_id, None, bad
        try:
            message_id = int(params.get("message_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return chat_id, None, self._fail(400, "Bad Request: message identifier is not specified")
        message = self.messages.get((chat_id, message_id))
        if message is None:
            if self.strict_edits:
                return chat_id, None, self._fail(400, "Bad Request: message to edit not found")
            message = {"message_id": message_id, "from": self.bot_user, "chat": self._chat(chat_id),
                       "date": int(time.time()) - 60, "text": "…"}
            self.messages[(chat_id, message_id)] = message
        return chat_id, message, None

    def _edit_text(self, params: dict[str, Any]) -> Reply:
        chat_id, message, bad = self._message_for_edit(params)
        if bad:
            return bad
        shown, bad = self._text(params)
        if bad:
            return bad
        markup, bad = self._markup(params)
        if bad:
            return bad
        record = {**params, "chat_id": chat_id}
        if markup is not None:
            record["reply_markup"] = markup
        if message is None:  # inline message
            self.delivered.append((chat_id, "editMessageText", record))
            return self._ok(True)
        new_markup = markup if markup is not None and "inline_keyboard" in markup else None
        if message.get("text") == shown and message.get("reply_markup") == new_markup:
            return self._fail(400, "Bad Request: message is not modified: specified new message content and "
                                   "reply markup are exactly the same as a current content and reply markup "
                                   "of the message")
        message["text"] = shown
        message.pop("reply_markup", None)
        if new_markup is not None:
            message["reply_markup"] = new_markup
        message["edit_date"] = int(time.time())
        self.delivered.append((chat_id, "editMessageText", record))
        return self._ok(message)

    def _edit_markup(self, params: dict[str, Any]) -> Reply:
        chat_id, message, bad = self._message_for_edit(params)
        if bad:
            return bad
        markup, bad = self._markup(params)
        if bad:
            return bad
        record = {**params, "chat_id": chat_id}
        if markup is not None:
            record["reply_markup"] = markup
        if message is None:
            self.delivered.append((chat_id, "editMessageReplyMarkup", record))
            return self._ok(True)
        new_markup = markup if markup is not None and "inline_keyboard" in markup and markup["inline_keyboard"] \
            else None
        if message.get("reply_markup") == new_markup:
            return self._fail(400, "Bad Request: message is not modified: specified new message content and "
                                   "reply markup are exactly the same as a current content and reply markup "
                                   "of the message")
        message.pop("reply_markup", None)
        if new_markup is not None:
            message["reply_markup"] = new_markup
        message["edit_date"] = int(time.time())
        self.delivered.append((chat_id, "editMessageReplyMarkup", record))
        return self._ok(message)

    def _answer_callback(self, params: dict[str, Any]) -> Reply:
        if not params.get("callback_query_id"):
            return self._fail(400, "Bad Request: query is too old and response timeout expired or query ID is "
                                   "invalid")
        if params.get("text") is not None and len(str(params["text"])) > 200:
            return self._fail(400, "Bad Request: MESSAGE_TOO_LONG")
        self.answered_callbacks.append(dict(params))
        return self._ok(True)

    def _set_webhook(self, params: dict[str, Any]) -> Reply:
        url = str(params.get("url") or "")
        if not url:
            self.webhook = None
            return self._ok(True, "Webhook was deleted")
        if self.require_https_webhook and not url.startswith("https://"):
            return self._fail(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            return self._fail(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            try:
                allowed = json.loads(allowed)
            except ValueError:
                return self._fail(400, "Bad Request: can't parse allowed updates")
        webhook = {k: v for k, v in params.items()}
        webhook.update({"url": url, "secret_token": secret, "allowed_updates": allowed})
        self.webhook = webhook
        return self._ok(True, "Webhook was set")

    def _delete_webhook(self, params: dict[str, Any]) -> Reply:
        existed = self.webhook is not None
        self.webhook = None
        return self._ok(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    def _get_webhook_info(self, params: dict[str, Any]) -> Reply:
        info: dict[str, Any] = {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if self.webhook:
            info["max_connections"] = int(self.webhook.get("max_connections") or 40)
            info["ip_address"] = "127.0.0.1"
            if self.webhook.get("allowed_updates") is not None:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return self._ok(info)


# --------------------------------------------------------------------------------------------------
# Facebook Messenger: Graph API Send API and user profile
# --------------------------------------------------------------------------------------------------

_FB_MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
_FB_TAGS = ("HUMAN_AGENT", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE")


class FakeGraph(FakeProvider):
    """Graph API for Messenger at ``base_url`` (the adapter's Graph base URL, without the version).

    ``delivered``: ``(psid, message_dict, messaging_type, tag)``; ``sender_actions``: ``(psid, action)``.
    """

    def __init__(
        self,
        page_access_token: str = "test-page-access-token",
        api_version: str = "v21.0",
        *,
        page_id: str = DEFAULT_PAGE_ID,
        strict_profiles: bool = False,
    ) -> None:
        super().__init__()
        self.page_access_token = page_access_token
        self.api_version = api_version
        self.page_id = page_id
        self.strict_profiles = strict_profiles
        self.profiles: dict[str, dict[str, Any]] = {}  # psid -> {"locale": "vi_VN", "first_name": ...}
        self.sender_actions: list[tuple[str, str]] = []
        self._outside_window: set[str] = set()
        self._blocked: set[str] = set()

    # ---- test controls ---------------------------------------------------------------------------

    def outside_window(self, psid: str) -> None:
        """The 24-hour window with this person closed: only tagged messages (MESSAGE_TAG) get through."""
        with self._lock:
            self._outside_window.add(str(psid))

    def inside_window(self, psid: str) -> None:
        with self._lock:
            self._outside_window.discard(str(psid))

    def block(self, psid: str) -> None:
        """The person blocked the page or deleted the conversation: every send answers code 551."""
        with self._lock:
            self._blocked.add(str(psid))

    def messages_to(self, psid: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for p, m, _, _ in self.delivered if p == str(psid)]

    def texts_to(self, psid: str) -> list[str]:
        return [m.get("text", "") for m in self.messages_to(psid)]

    def _reset_state(self) -> None:
        self.sender_actions.clear()
        self._outside_window.clear()
        self._blocked.clear()

    # ---- protocol --------------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, code: int, message: str, *, subcode: int | None = None,
               etype: str = "OAuthException", transient: bool | None = None) -> Reply:
        err: dict[str, Any] = {"message": message, "type": etype, "code": code}
        if subcode is not None:
            err["error_subcode"] = subcode
        if transient is not None:
            err["is_transient"] = transient
        err["fbtrace_id"] = "A" + secrets.token_urlsafe(14)
        return Reply(status, {"error": err})

    def _error_body(self, status: int, headers: dict[str, str]) -> Any:
        if status == 429:
            return self._error(429, 613, "(#613) Calls to this api have exceeded the rate limit.").body
        if status >= 500:
            return self._error(status, 2, "An unexpected error has occurred. Please retry your request later.",
                               transient=True).body
        return self._error(status, 1, "An unknown error occurred").body

    def _token(self, req: Recorded, params: dict[str, Any]) -> str | None:
        if "access_token" in req.query:
            return req.query["access_token"]
        if params.get("access_token"):
            return str(params["access_token"])
        auth = req.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def _handle(self, req: Recorded) -> Reply:
        if isinstance(req.json, dict):
            params: dict[str, Any] = dict(req.json)
        else:  # Graph also takes form posts whose values are JSON strings
            params = {}
            for k, v in (req.form or {}).items():
                try:
                    params[k] = json.loads(v) if v[:1] in ("{", "[") else v
                except ValueError:
                    params[k] = v
        parts = [p for p in req.path.split("/") if p]
        if not parts or parts[0] != self.api_version:
            return self._error(400, 2500, f"Unknown path components: {req.path}")
        token = self._token(req, params)
        if token is None:
            return self._error(400, 2500, "An active access token must be used to query information about the "
                                          "current user.")
        if token != self.page_access_token:
            return self._error(400, 190, "Invalid OAuth access token.")
        if req.method == "POST" and parts[1:] in (["me", "messages"], [self.page_id, "messages"]):
            return self._send(params)
        if req.method == "GET" and len(parts) == 2:
            return self._profile(parts[1], req.query.get("fields", ""))
        return self._error(400, 100, f"Unsupported {req.method.lower()} request. Please read the Graph API "
                                     "documentation at https://developers.facebook.com/docs/graph-api",
                           subcode=33, etype="GraphMethodException")

    def _profile(self, psid: str, fields: str) -> Reply:
        known = self.profiles.get(psid)
        if known is None and self.strict_profiles:
            return self._error(400, 100, f"Unsupported get request. Object with ID '{psid}' does not exist, "
                                         "cannot be loaded due to missing permissions, or does not support this "
                                         "operation.", subcode=33, etype="GraphMethodException")
        profile = {"first_name": "Messenger", "last_name": "User", "locale": "en_US", "timezone": 9,
                   "profile_pic": f"https://platform-lookaside.fbsbx.com/platform/profilepic/?psid={psid}"}
        profile.update(known or {})
        wanted = [f.strip() for f in fields.split(",") if f.strip()] or ["first_name", "last_name"]
        out = {f: profile[f] for f in wanted if f in profile and profile[f] is not None}
        out["id"] = psid
        return Reply(200, out)

    def _bad(self, message: str, subcode: int | None = None) -> Reply:
        return self._error(400, 100, f"(#100) {message}", subcode=subcode)

    def _send(self, body: dict[str, Any]) -> Reply:
        recipient = body.get("recipient")
        psid = str(recipient.get("id")) if isinstance(recipient, dict) and recipient.get("id") else None
        if psid is None:
            return self._bad("The parameter recipient is required")
        action = body.get("sender_action")
        message = body.get("message")
        if action is not None:
            if message is not None:
                return self._bad("Cannot send sender_action with message")
            if action not in ("typing_on", "typing_off", "mark_seen", "react", "unreact"):
                return self._bad(f"Param sender_action must be one of {{typing_on, typing_off, mark_seen}} - "
                                 f"got \"{action}\"")
            if psid in self._blocked:
                return self._error(400, 551, "This person isn't available right now.", subcode=1545041)
            self.sender_actions.append((psid, action))
            return Reply(200, {"recipient_id": psid})
        mtype = body.get("messaging_type", "RESPONSE")
        tag = body.get("tag")
        if mtype not in _FB_MESSAGING_TYPES:
            return self._bad(f"param messaging_type must be one of {{RESPONSE, UPDATE, MESSAGE_TAG}} - got \"{mtype}\"")
        if mtype == "MESSAGE_TAG":
            if not tag:
                return self._bad("Tag is required for MESSAGE_TAG messaging type.")
            if tag not in _FB_TAGS:
                return self._bad(f"Param tag must be one of {{{', '.join(_FB_TAGS)}}} - got \"{tag}\"")
        problem = validate_messenger_message(message)
        if problem:
            return self._bad(problem)
        if psid in self._blocked:
            return self._error(400, 551, "This person isn't available right now.", subcode=1545041)
        if psid in self._outside_window and mtype != "MESSAGE_TAG":
            return self._error(400, 10, "(#10) This message is sent outside of allowed window.",
                               subcode=2018278)
        self.delivered.append((psid, message, mtype, tag if mtype == "MESSAGE_TAG" else None))
        return Reply(200, {"recipient_id": psid, "message_id": "m_" + secrets.token_urlsafe(64)})


def validate_messenger_message(message: Any) -> str | None:
    """Messenger's documented limits; returns the error text (without "(#100) ") or None."""
    if not isinstance(message, dict):
        return "param message must be a JSON object"
    has_text, has_attachment = "text" in message, "attachment" in message
    if has_text == has_attachment:
        return "Must send either message text or attachment" if not has_text else \
            "Only one of message text or attachment may be sent"
    if has_text:
        text = message["text"]
        if not isinstance(text, str) or not text:
            return "param message[text] must be a non-empty UTF-8 encoded string"
        if len(text) > 2000:
            return "Length of param message[text] must be less than or equal to 2000"
    else:
        att = message["attachment"]
        if not isinstance(att, dict) or att.get("type") not in ("template", "image", "audio", "video", "file"):
            return "param message[attachment][type] must be one of {template, image, audio, video, file}"
        if att["type"] == "template":
            problem = _validate_messenger_template(att.get("payload"))
            if problem:
                return problem
    qrs = message.get("quick_replies")
    if qrs is not None:
        if not isinstance(qrs, list) or not 1 <= len(qrs) <= 13:
            return "param message[quick_replies] must be an array with between 1 and 13 elements"
        for i, qr in enumerate(qrs):
            if not isinstance(qr, dict):
                return f"param message[quick_replies][{i}] must be a JSON object"
            ctype = qr.get("content_type", "text")
            if ctype == "text":
                title, payload = qr.get("title"), qr.get("payload")
                if not isinstance(title, str) or not title:
                    return f"param message[quick_replies][{i}][title] must be a non-empty string"
                if len(title) > 20:
                    return f"Length of param message[quick_replies][{i}][title] must be less than or equal to 20"
                if payload is None or str(payload) == "":
                    return f"param message[quick_replies][{i}][payload] must be a non-empty string"
                if len(str(payload)) > 1000:
                    return f"Length of param message[quick_replies][{i}][payload] must be less than or equal to 1000"
            elif ctype not in ("user_phone_number", "user_email"):
                return f"param message[quick_replies][{i}][content_type] must be one of {{text, user_phone_number, " \
                       "user_email}"
    return None


def _validate_messenger_buttons(buttons: Any, where: str, limit: int = 3) -> str | None:
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= limit:
        return f"param {where} must be an array with between 1 and {limit} elements"
    for i, b in enumerate(buttons):
        if not isinstance(b, dict):
            return f"param {where}[{i}] must be a JSON object"
        title = b.get("title")
        if b.get("type") in ("postback", "web_url", "phone_number"):
            if not isinstance(title, str) or not title:
                return f"param {where}[{i}][title] must be a non-empty string"
            if len(title) > 20:
                return f"Length of param {where}[{i}][title] must be less than or equal to 20"
        if b.get("type") == "postback":
            payload = b.get("payload")
            if payload is None or str(payload) == "":
                return f"param {where}[{i}][payload] must be a non-empty string"
            if len(str(payload)) > 1000:
                return f"Length of param {where}[{i}][payload] must be less than or equal to 1000"
        elif b.get("type") == "web_url" and not b.get("url"):
            return f"param {where}[{i}][url] must be a valid URL"
    return None


def _validate_messenger_template(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return "param message[attachment][payload] must be a JSON object"
    kind = payload.get("template_type")
    where = "message[attachment][payload]"
    if kind == "button":
        text = payload.get("text")
        if not isinstance(text, str) or not text:
            return f"param {where}[text] must be a non-empty UTF-8 encoded string"
        if len(text) > 640:
            return f"Length of param {where}[text] must be less than or equal to 640"
        return _validate_messenger_buttons(payload.get("buttons"), f"{where}[buttons]")
    if kind == "generic":
        elements = payload.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            return f"param {where}[elements] must be an array with between 1 and 10 elements"
        for i, el in enumerate(elements):
            if not isinstance(el, dict) or not el.get("title"):
                return f"param {where}[elements][{i}][title] must be a non-empty UTF-8 encoded string"
            if len(str(el["title"])) > 80:
                return f"Length of param {where}[elements][{i}][title] must be less than or equal to 80"
            if el.get("subtitle") is not None and len(str(el["subtitle"])) > 80:
                return f"Length of param {where}[elements][{i}][subtitle] must be less than or equal to 80"
            if el.get("buttons") is not None:
                problem = _validate_messenger_buttons(el["buttons"], f"{where}[elements][{i}][buttons]")
                if problem:
                    return problem
        return None
    if kind in ("media", "receipt", "customer_feedback"):
        return None
    return f"param {where}[template_type] must be one of {{button, generic, media, receipt}}"
