"""`mirai`: the one console command (a thin shell over the service and the web app)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable

from bot.flowbook import LANGUAGES
from bot.messages import InboundEvent, InboundKind, Outbound
from bot.settings import get_settings

TERMINAL_CHANNEL = "terminal"


def _service():  # type: ignore[no-untyped-def]
    from bot.service import ConversationService
    from bot.store.db import get_database

    settings = get_settings()
    return ConversationService(get_database(settings.database_url), default_language=settings.default_language)


def _print(outbound: Iterable[Outbound], as_jsonl: bool) -> None:
    for out in outbound:
        if as_jsonl:
            sys.stdout.write(json.dumps(out.as_json(), ensure_ascii=False) + "\n")
        else:
            sys.stdout.write("\n" + out.text + "\n")
        sys.stdout.flush()


def cmd_chat(args: argparse.Namespace) -> int:
    service = _service()
    user = args.user or f"local-{os.getenv('USER', 'user')}"
    opening = InboundEvent(kind=InboundKind.FOLLOW, language_hint=args.lang, language_chosen=bool(args.lang))
    _print(service.handle(TERMINAL_CHANNEL, user, opening), args.jsonl)
    interactive = sys.stdin.isatty() and not args.jsonl
    while True:
        if interactive:
            sys.stdout.write("\n> ")
            sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            break
        text = line.rstrip("\r\n")
        _print(service.handle(TERMINAL_CHANNEL, user, InboundEvent(kind=InboundKind.TEXT, text=text)), args.jsonl)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from admin_api.app import create_app

    from bot.channels.registry import build_channels

    settings = get_settings()
    host, port = args.host or settings.host, args.port or settings.port
    print(f"Mirai is serving the web chat at http://{host}:{port}/ (database: {_safe_url(settings.database_url)})",
          flush=True)
    for name, channel in build_channels(settings).items():
        if channel.enabled():
            print(f"  {name}: on, webhook at http://{host}:{port}/webhooks/{name}", flush=True)
        else:
            print(f"  {name}: off (no credentials; its webhook answers 404)", flush=True)
    uvicorn.run(create_app(), host=host, port=port, log_level=settings.log_level.lower())
    return 0


def cmd_dispatch(args: argparse.Namespace) -> int:
    """Runs the background pipeline alone: steps stored webhook events and sends the outbox."""
    import asyncio

    from bot.channels.registry import build_channels
    from bot.outbox import Dispatcher, Outbox
    from bot.pipeline import InboundProcessor
    from bot.service import ConversationService, utcnow
    from bot.store.db import get_database

    settings = get_settings()
    db = get_database(settings.database_url)
    channels = {n: c for n, c in build_channels(settings).items() if c.enabled()}
    outbox = Outbox(channels)
    service = ConversationService(db, default_language=settings.default_language, outbox=outbox)
    processor = InboundProcessor(db, service, channels, outbox, utcnow)
    dispatcher = Dispatcher(db, channels, settings, utcnow)

    async def run() -> None:
        try:
            while True:
                done = await processor.run_once() + await dispatcher.run_once()
                if not done:
                    if args.until_empty and not dispatcher.pending_count():
                        return
                    await asyncio.sleep(0.05)
        finally:
            await dispatcher.close()

    asyncio.run(run())
    return 0


def cmd_channels_setup(args: argparse.Namespace) -> int:
    import asyncio

    from bot.channels.telegram import TelegramChannel

    settings = get_settings()
    if args.channel != "telegram":
        print(f"{args.channel}: register the webhook URL in the provider's console: {args.url}")
        return 0
    channel = TelegramChannel(settings)
    if not channel.enabled():
        print("telegram is off: set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET first", file=sys.stderr)
        return 2

    async def setup() -> bool:
        try:
            return await channel.set_webhook(args.url)
        finally:
            await channel.close()

    ok = asyncio.run(setup())
    print(f"telegram webhook {'registered' if ok else 'NOT registered'}: {args.url}")
    return 0 if ok else 1


def cmd_migrate(_args: argparse.Namespace) -> int:
    from bot.store.db import migrate

    settings = get_settings()
    migrate(settings.database_url)
    print(f"database is up to date: {_safe_url(settings.database_url)}")
    return 0


def cmd_users_add(args: argparse.Namespace) -> int:
    import getpass

    from bot.flowbook import default_flowbook
    from bot.inbox import InboxError, InboxService
    from bot.service import utcnow
    from bot.store.db import get_database
    from bot.translation import Translator

    settings = get_settings()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("the passwords differ; nothing was changed", file=sys.stderr)
            return 2
    inbox = InboxService(get_database(settings.database_url), default_flowbook(), Translator("none"), None, utcnow)
    try:
        user = inbox.add_user(args.name, args.role, password, args.language)
    except InboxError as exc:
        print(f"not added: {exc}", file=sys.stderr)
        return 2
    print(f"added {user.name} ({user.role}, reads {user.language}); log in at /inbox")
    return 0


def cmd_articles_search(args: argparse.Namespace) -> int:
    from bot.articles import default_library
    from nlu.langid import detect_language

    query = " ".join(args.query)
    lang = args.lang or detect_language(query)
    if not lang:
        lang = get_settings().default_language
        print(f"could not tell the language of the query; searching in {lang} (use --lang)", file=sys.stderr)
    hits = default_library().search(query, lang, limit=3)
    for rank, hit in enumerate(hits, 1):
        title = hit.article.title(lang)
        if args.jsonl:
            row = {"rank": rank, "id": hit.article.id, "title": title, "score": hit.score, "language": lang}
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(f"{rank}. {hit.article.id}  {title}  (score {hit.score:.2f})\n")
    if not hits and not args.jsonl:
        sys.stdout.write(f"no article matches ({lang})\n")
    return 0


def _safe_url(url: str) -> str:
    """The database URL without its password, for printing."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mirai", description="Mirai: self-diagnosis and help for migrant workers.")
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="talk to the bot in this terminal (or pipe one message per line)")
    chat.add_argument("--lang", choices=LANGUAGES, help="start in this language")
    chat.add_argument("--user", help="who you are; the same id resumes the same conversation")
    chat.add_argument("--jsonl", action="store_true", help="print each bot message as one JSON object per line")
    chat.set_defaults(func=cmd_chat)

    serve = sub.add_parser("serve", help="run the web app (web chat at /)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    dispatch = sub.add_parser("dispatch", help="step stored webhook events and send the outbox (no web server)")
    dispatch.add_argument("--until-empty", action="store_true", help="exit when nothing is left to send")
    dispatch.set_defaults(func=cmd_dispatch)

    channels = sub.add_parser("channels", help="messaging channel setup")
    channels_sub = channels.add_subparsers(dest="action", required=True)
    setup = channels_sub.add_parser("setup", help="register the webhook URL with the provider")
    setup.add_argument("channel", choices=["line", "telegram", "messenger"])
    setup.add_argument("url")
    setup.set_defaults(func=cmd_channels_setup)

    users = sub.add_parser("users", help="counsellor, supervisor and administrator accounts of the inbox")
    users_sub = users.add_subparsers(dest="action", required=True)
    add = users_sub.add_parser("add", help="create an account (asks for the password twice)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["counsellor", "supervisor", "admin"])
    add.add_argument("--language", default="ja", choices=["ja", "en"],
                     help="the language transcripts are translated into for this person")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=cmd_users_add)

    articles = sub.add_parser("articles", help="the portal articles")
    articles_sub = articles.add_subparsers(dest="action", required=True)
    search = articles_sub.add_parser("search", help="print the 3 articles that best match a query")
    search.add_argument("query", nargs="+", help="what a worker would type")
    search.add_argument("--lang", choices=LANGUAGES, help="the query's language (guessed when left out)")
    search.add_argument("--jsonl", action="store_true", help="print each hit as one JSON object per line")
    search.set_defaults(func=cmd_articles_search)

    mig = sub.add_parser("migrate", help="create or upgrade the database schema")
    mig.set_defaults(func=cmd_migrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
