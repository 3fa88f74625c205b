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
    from bot.office import OfficeHours
    from nlu.service import NluService

    return ConversationService(get_database(settings.database_url, settings.encryption_keys), default_language=settings.default_language,
                               office_hours=OfficeHours.parse(settings.office_hours, settings.timezone),
                               nlu=NluService.from_settings(settings))


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

    from bot.supervisor import WorkerProcesses

    settings = get_settings()
    host, port = args.host or settings.host, args.port or settings.port
    in_children = settings.run_workers_in_process and settings.pipeline_processes
    app = create_app(settings.model_copy(update={"run_workers_in_process": False}) if in_children else settings)
    print(f"Mirai is serving the web chat at http://{host}:{port}/ (database: {_safe_url(settings.database_url)})",
          flush=True)
    for name, channel in build_channels(settings).items():
        if channel.enabled():
            print(f"  {name}: on, webhook at http://{host}:{port}/webhooks/{name}", flush=True)
        else:
            print(f"  {name}: off (no credentials; its webhook answers 404)", flush=True)
    if in_children:
        print("  background: stepping and sending in two processes of their own (mirai dispatch --role steps, "
              "--role sends)", flush=True)
    elif settings.run_workers_in_process:
        print("  background: stepping and sending in threads of this process (PIPELINE_PROCESSES=false)", flush=True)
    else:
        print("  background: none here (RUN_WORKERS_IN_PROCESS=false): run `mirai dispatch` beside it", flush=True)
    workers = WorkerProcesses() if in_children else None
    if workers is not None:
        workers.start()
    try:
        uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower())
    finally:
        if workers is not None:
            workers.stop()
    return 0


def cmd_dispatch(args: argparse.Namespace) -> int:
    """Runs the background pipeline alone: steps stored webhook events and sends the outbox."""
    from bot.supervisor import die_with_parent

    die_with_parent()
    import asyncio

    from bot.channels.registry import build_channels
    from bot.outbox import Dispatcher, Outbox
    from bot.pipeline import InboundProcessor
    from bot.service import ConversationService, utcnow
    from bot.store.db import get_database

    from bot.privacy import install_log_redaction

    install_log_redaction()
    settings = get_settings()
    db = get_database(settings.database_url, settings.encryption_keys)
    channels = {n: c for n, c in build_channels(settings).items() if c.enabled()}
    outbox = Outbox(channels)
    from bot.office import OfficeHours
    from nlu.service import NluService

    steps, sends = args.role in ("all", "steps"), args.role in ("all", "sends")
    processor = None
    if steps:  # a sending process needs neither the engine nor the NLU models (a sixth of a gigabyte)
        from bot.flowbook import default_flowbook
        from bot.privacy import keep_promises

        keep_promises(settings, default_flowbook().promises)
        service = ConversationService(db, default_language=settings.default_language, outbox=outbox,
                                      office_hours=OfficeHours.parse(settings.office_hours, settings.timezone),
                                      nlu=NluService.from_settings(settings))
        processor = InboundProcessor(db, service, channels, outbox, utcnow)
    dispatcher = Dispatcher(db, channels, settings, utcnow)

    async def run() -> None:
        try:
            while True:
                done = (await processor.run_once() if processor else 0) + (await dispatcher.run_once() if sends else 0)
                if not done:
                    if args.until_empty and not (sends and dispatcher.pending_count()):
                        return
                    await asyncio.sleep(0.05)
        finally:
            await dispatcher.close()
            if processor:
                processor.locks.close()

    asyncio.run(run())
    return 0


def _pipeline_parts():  # type: ignore[no-untyped-def]
    """The database, the service with its outbox, and the settings, as `mirai dispatch` builds them."""
    from bot.channels.registry import build_channels
    from bot.office import OfficeHours
    from bot.outbox import Outbox
    from bot.service import ConversationService
    from bot.store.db import get_database
    from nlu.service import NluService

    settings = get_settings()
    db = get_database(settings.database_url)
    channels = {n: c for n, c in build_channels(settings).items() if c.enabled()}
    service = ConversationService(db, default_language=settings.default_language, outbox=Outbox(channels),
                                  office_hours=OfficeHours.parse(settings.office_hours, settings.timezone),
                                  nlu=NluService.from_settings(settings))
    return settings, db, service


def cmd_scheduler(_args: argparse.Namespace) -> int:
    """Runs the scheduler alone (nudges, campaigns); stands by while another process leads."""
    import signal
    import threading

    from bot.scheduler import build_scheduler
    from bot.service import utcnow

    settings, db, service = _pipeline_parts()
    runtime = build_scheduler(settings, db, service, utcnow)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("scheduler started (it leads when no other process does)", flush=True)
    runtime.start()
    try:
        stop.wait()
    finally:
        runtime.stop()
    return 0


def cmd_nudges_run(_args: argparse.Namespace) -> int:
    from bot.nudges import NudgePlanner
    from bot.service import utcnow

    settings, db, service = _pipeline_parts()
    counts = NudgePlanner(db, service, settings, utcnow).run()
    print(json.dumps(counts, ensure_ascii=False) if counts else "no nudge is due")
    return 0


def _campaign_service():  # type: ignore[no-untyped-def]
    from bot.campaigns import CampaignService
    from bot.service import utcnow

    settings, db, service = _pipeline_parts()
    return CampaignService(db, service.outbox, settings, utcnow, service.book)


def _bar(progress: dict, width: int = 30) -> str:  # type: ignore[type-arg]
    total = max(progress["total"], 1)
    done = progress["sent"] + progress["failed"] + progress["skipped"]
    filled = int(width * done / total)
    return (f"[{'#' * filled}{'.' * (width - filled)}] {100 * done / total:5.1f}%  sent {progress['sent']}  "
            f"queued {progress['queued']}  failed {progress['failed']}  skipped {progress['skipped']}  "
            f"({progress['status']})")


def cmd_campaign_status(args: argparse.Namespace) -> int:
    """A live progress bar until the campaign is done or cancelled (or once, with --once)."""
    import time

    from bot.campaigns import CampaignError

    campaigns = _campaign_service()
    live = sys.stdout.isatty() and not args.once
    while True:
        try:
            progress = campaigns.progress(args.id)
        except CampaignError as exc:
            print(f"campaign {args.id}: {exc}", file=sys.stderr)
            return 1
        finished = progress["status"] in ("done", "cancelled") or (
            progress["status"] == "sending" and progress["queued"] == 0)
        print(("\r" if live else "") + f"{progress['name']}: " + _bar(progress), end="" if live else "\n",
              flush=True)
        if finished or args.once:
            break
        time.sleep(args.interval)
    if live:
        print()
    for title, reasons in (("failed", progress["failed_reasons"]), ("skipped", progress["skipped_reasons"])):
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print(f"  {title}: {n} {reason}")
    return 0


def cmd_campaign_list(_args: argparse.Namespace) -> int:
    for progress in _campaign_service().list():
        print(f"{progress['id']:>5}  {progress['send_at'][:16]}  {progress['name'][:40]:<40}  " + _bar(progress, 12))
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
    inbox = InboxService(get_database(settings.database_url, settings.encryption_keys), default_flowbook(), Translator("none"), None, utcnow)
    try:
        user = inbox.add_user(args.name, args.role, password, args.language, args.employer_code)
    except InboxError as exc:
        print(f"not added: {exc}", file=sys.stderr)
        return 2
    if user.role == "employer":
        print(f"added {user.name} (employer {user.employer_code}); its report is at /reports/employer")
    else:
        print(f"added {user.name} ({user.role}, reads {user.language}); log in at /inbox")
    return 0


def cmd_articles_search(args: argparse.Namespace) -> int:
    from bot.articles import default_library
    from nlu.langid import detect_language

    query = " ".join(args.query)
    lang = args.lang
    if not lang:
        try:
            lang = detect_language(query)
        except OSError as exc:  # the language model is not built yet
            print(f"cannot guess the language ({exc}); give it with --lang", file=sys.stderr)
            return 2
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


def _nlu_service(backend: str | None):  # type: ignore[no-untyped-def]
    from nlu.service import NluService

    settings = get_settings()
    return NluService(backend or settings.nlu_backend, settings.rasa_url, settings.nlu_timeout_seconds)


def cmd_nlu_parse(args: argparse.Namespace) -> int:
    service = _nlu_service(args.backend)
    texts = [args.text] if args.text is not None else (line.rstrip("\r\n") for line in sys.stdin)
    try:
        for text in texts:
            result = service.interpret(text, args.lang)
            out = {"text": text, "intent": result.intent, "confidence": round(result.confidence, 4),
                   "language": result.language, "danger": result.danger, "backend": result.backend}
            sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
            sys.stdout.flush()
    finally:
        service.close()
    return 0


def cmd_nlu_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nlu.data import read_examples
    from nlu.evaluate import evaluate, format_table

    path = Path(args.file)
    if not path.exists():
        print(f"no such file or folder: {path}", file=sys.stderr)
        return 2
    service = _nlu_service(args.backend)
    try:
        scores = evaluate(service, read_examples(path))
    finally:
        service.close()
    print(format_table(scores, service.backend))
    return 0


def cmd_nlu_train(_args: argparse.Namespace) -> int:
    from nlu.training import train_all

    train_all()
    return 0


def cmd_nlu_train_rasa(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nlu.rasa import RasaUnavailableError, rasa_env, train_model

    try:
        venv = rasa_env(build=True)
    except RasaUnavailableError as exc:
        print(f"the Rasa environment is not available: {exc}", file=sys.stderr)
        return 1
    model = train_model(venv, out=Path(args.out) if args.out else None,
                        log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(model)
    print(f"serve it: {venv / 'bin' / 'rasa'} run --enable-api -m {model} -i 127.0.0.1 -p 5005   "
          "(then NLU_BACKEND=rasa RASA_URL=http://127.0.0.1:5005)", file=sys.stderr)
    return 0


def cmd_doctor(_args: argparse.Namespace) -> int:
    from bot.doctor import examine

    findings = examine(get_settings())
    for finding in findings:
        print(finding.line())
    bad = [f for f in findings if not f.ok]
    print(f"{len(bad)} problem(s) found." if bad else "Nothing wrong found.")
    return 1 if bad else 0


def cmd_keys_new(_args: argparse.Namespace) -> int:
    from bot.store.crypto import new_key

    print(new_key())
    return 0


def cmd_keys_rotate(_args: argparse.Namespace) -> int:
    from bot.privacy import rotate_keys
    from bot.store.db import get_database

    settings = get_settings()
    counts = rotate_keys(get_database(settings.database_url, settings.encryption_keys))
    for column, n in counts.items():
        print(f"{column}: {n} re-encrypted")
    print(f"{sum(counts.values())} value(s) re-encrypted with the first key of ENCRYPTION_KEYS; every row now "
          "reads with that key alone, so the older keys may be removed.")
    return 0


def cmd_privacy_purge(_args: argparse.Namespace) -> int:
    from bot.privacy import purge_expired_free_text
    from bot.service import utcnow
    from bot.store.db import get_database

    settings = get_settings()
    counts = purge_expired_free_text(get_database(settings.database_url, settings.encryption_keys), utcnow(),
                                     settings.free_text_retention_days)
    for what, n in counts.items():
        print(f"{what}: {n} erased")
    print(f"free text older than {settings.free_text_retention_days} days is erased "
          f"({sum(counts.values())} row(s) this time).")
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
    dispatch.add_argument("--until-empty", action="store_true", help="exit when nothing is left to do")
    dispatch.add_argument("--role", choices=["all", "steps", "sends"], default="all",
                          help="steps: only step stored webhook events (one such process per SQLite database); "
                               "sends: only send the outbox; all (default): both, in turn")
    dispatch.set_defaults(func=cmd_dispatch)

    scheduler = sub.add_parser("scheduler", help="run the scheduler alone: check-in nudges and campaigns "
                                                 "(one process leads; the others stand by)")
    scheduler.set_defaults(func=cmd_scheduler)

    nudges = sub.add_parser("nudges", help="check-in nudges")
    nudges_sub = nudges.add_subparsers(dest="action", required=True)
    nudges_run = nudges_sub.add_parser("run", help="write the nudges due now, once (the scheduler does this)")
    nudges_run.set_defaults(func=cmd_nudges_run)

    campaign = sub.add_parser("campaign", help="campaign broadcasts (create them with POST /api/campaigns)")
    campaign_sub = campaign.add_subparsers(dest="action", required=True)
    status = campaign_sub.add_parser("status", help="a live progress bar of one campaign")
    status.add_argument("id", type=int)
    status.add_argument("--once", action="store_true", help="print the progress once and exit")
    status.add_argument("--interval", type=float, default=1.0, help="seconds between updates")
    status.set_defaults(func=cmd_campaign_status)
    campaign_list = campaign_sub.add_parser("list", help="the latest campaigns and their progress")
    campaign_list.set_defaults(func=cmd_campaign_list)

    channels = sub.add_parser("channels", help="messaging channel setup")
    channels_sub = channels.add_subparsers(dest="action", required=True)
    setup = channels_sub.add_parser("setup", help="register the webhook URL with the provider")
    setup.add_argument("channel", choices=["line", "telegram", "messenger"])
    setup.add_argument("url")
    setup.set_defaults(func=cmd_channels_setup)

    users = sub.add_parser("users", help="inbox accounts (counsellor, supervisor, admin) and employer report readers")
    users_sub = users.add_subparsers(dest="action", required=True)
    add = users_sub.add_parser("add", help="create an account (asks for the password twice)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["counsellor", "supervisor", "admin", "employer"])
    add.add_argument("--employer-code", help="for --role employer: the one employer code whose report it reads")
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

    doctor = sub.add_parser("doctor", help="check settings, database, channels, translation and NLU; say what is wrong")
    doctor.set_defaults(func=cmd_doctor)

    keys = sub.add_parser("keys", help="the keys that encrypt what workers say (ENCRYPTION_KEYS)")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    keys_sub.add_parser("new", help="print a new key (put it first in ENCRYPTION_KEYS)").set_defaults(
        func=cmd_keys_new)
    keys_sub.add_parser("rotate", help="re-encrypt every stored value with the first key, in batches "
                                       "(safe to run again)").set_defaults(func=cmd_keys_rotate)

    privacy = sub.add_parser("privacy", help="workers' data: retention")
    privacy_sub = privacy.add_subparsers(dest="action", required=True)
    privacy_sub.add_parser("purge", help="erase free text older than FREE_TEXT_RETENTION_DAYS").set_defaults(
        func=cmd_privacy_purge)

    mig = sub.add_parser("migrate", help="create or upgrade the database schema")
    mig.set_defaults(func=cmd_migrate)

    nlu = sub.add_parser("nlu", help="understanding of free text: parse, evaluate, train (embedded or Rasa)")
    nlu_sub = nlu.add_subparsers(dest="action", required=True)
    parse = nlu_sub.add_parser("parse", help="intent, confidence, language and danger of a message as JSON "
                                             "(no TEXT: one message per stdin line, one JSON line each)")
    parse.add_argument("text", nargs="?")
    parse.add_argument("--backend", choices=["embedded", "rasa"], help="default: NLU_BACKEND")
    parse.add_argument("--lang", choices=LANGUAGES, help="the conversation's language (a hint)")
    parse.set_defaults(func=cmd_nlu_parse)
    evaluate = nlu_sub.add_parser("eval", help="per-language intent and language accuracy on a held-out file")
    evaluate.add_argument("file", help="a Rasa NLU file with intent metadata lang, or a folder of them")
    evaluate.add_argument("--backend", choices=["embedded", "rasa"], help="default: NLU_BACKEND")
    evaluate.set_defaults(func=cmd_nlu_eval)
    train = nlu_sub.add_parser("train", help="train the embedded models from nlu/train/ into nlu/models/")
    train.set_defaults(func=cmd_nlu_train)
    train_rasa = nlu_sub.add_parser("train-rasa", help="train a Rasa model from nlu/ in the Rasa environment "
                                                       "(built first when missing)")
    train_rasa.add_argument("--out", help="folder for the model (default: the cache, keyed by nlu/*.yml)")
    train_rasa.set_defaults(func=cmd_nlu_train_rasa)
    return parser


class JsonLogFormatter:
    """One JSON object per line (time, level, logger, message), for log collectors. Our messages name rows by
    id and never carry what a worker wrote (tests/privacy)."""

    def format(self, record) -> str:  # type: ignore[no-untyped-def]
        import logging
        from datetime import UTC, datetime

        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["error"] = logging.Formatter().formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _configure_logging() -> None:
    """Our own loggers, as JSON lines on standard error (libraries' request logs would carry URLs with bot
    tokens, so they are left to their defaults and redacted)."""
    import logging

    logger = logging.getLogger("mirai")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonLogFormatter())  # type: ignore[arg-type]
        logger.addHandler(handler)
        logger.setLevel(get_settings().log_level.upper())
        logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("serve", "dispatch", "scheduler"):
        _configure_logging()
    from bot.privacy import BrokenPromise
    from bot.store.crypto import EncryptionKeyError

    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except (BrokenPromise, EncryptionKeyError) as exc:  # settings to mend, not a bug: no traceback
        print(f"mirai {args.command}: cannot start: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
