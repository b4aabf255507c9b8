"""``cargobot`` — the command line. Logs go to stderr; stdout carries only each command's output.

The scripting interfaces (``refs``, ``chat --json/--jsonl``, ``dispatch --once --json``,
``web --port``, ``worker``) are relied on by operations scripts: keep them stable.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from bot.config import Settings
from bot.logs import configure_logging

log = logging.getLogger("cargobot")


def _settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SystemExit(f"cargobot: invalid settings:\n{exc}") from exc


# --- refs ------------------------------------------------------------------------------------


def cmd_refs(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.references import find_references

    job_pattern = settings.job_ref_regex
    out = sys.stdout
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        text: object = line
        if args.jsonl:
            try:
                text = json.loads(line) if line.strip() else ""
            except ValueError:
                log.warning("line is not a JSON string; answering []")
                text = None
        found = []
        if isinstance(text, str):
            try:
                found = [r.to_dict() for r in find_references(text, job_pattern=job_pattern)]
            except Exception:  # never a traceback on stdout: the operator's script reads it
                log.exception("could not read references from a line")
        out.write(json.dumps(found, ensure_ascii=False) + "\n")
        out.flush()
    return 0


# --- database --------------------------------------------------------------------------------


def cmd_init_db(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.engine import make_url

    from bot.app import build_app

    build_app(settings)
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    sys.stdout.write(f"database ready: {url}\n")
    return 0


# --- chat and demo ---------------------------------------------------------------------------


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_app
    from bot.console import run_interactive, run_scripted, valid_address

    if not args.jsonl and not args.as_address:
        raise SystemExit(
            "cargobot chat: give --as ADDRESS (console:NAME, whatsapp:+E164, telegram:ID) or --jsonl"
        )
    if args.as_address and not valid_address(args.as_address):
        raise SystemExit(
            f"cargobot chat: {args.as_address!r} is not an address (console:NAME, whatsapp:+E164 …)"
        )
    app = build_app(settings)
    if sys.stdin.isatty() and not (args.json or args.jsonl):
        run_interactive(app, args.as_address, sys.stdin, sys.stdout)
    else:
        run_scripted(
            app, sys.stdin.buffer, sys.stdout, address=args.as_address, as_json=args.json, jsonl=args.jsonl
        )
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_app, utcnow
    from bot.console import run_interactive
    from bot.demo import DEMO_CUSTOMER, DEMO_GUIDE, seed_demo
    from bot.worker import console_alerts_in_background

    app = build_app(settings)
    seeded = seed_demo(app.engine, now=utcnow())
    log.info("demo data %s", "seeded" if seeded else "already present")
    sys.stdout.write(DEMO_GUIDE + "\n")
    # Piped or typed, the demo reads ':as' and ':quit' as the guide says.
    lines = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    with console_alerts_in_background(app, sys.stdout):
        run_interactive(app, DEMO_CUSTOMER, lines, sys.stdout)
    return 0


# --- alerts --------------------------------------------------------------------------------


def cmd_dispatch(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import io

    from bot.app import build_app
    from bot.dispatcher import Handled
    from bot.worker import dispatch_once

    if not args.once:
        raise SystemExit("cargobot dispatch: only --once is supported; run `cargobot worker` to keep sending")
    app = build_app(settings)

    def show(handled: Handled) -> None:
        if args.json:
            sys.stdout.write(handled.to_json() + "\n")
            sys.stdout.flush()

    # With --json the JSON lines are the output; console deliveries print only without it.
    console_out = io.StringIO() if args.json else sys.stdout
    handled = asyncio.run(dispatch_once(app, console_out=console_out, on_handled=show))
    log.info("dispatch pass handled %d message(s)", len(handled))
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from bot.app import build_app
    from bot.worker import run_worker

    app = build_app(settings)
    asyncio.run(run_worker(app, console_out=sys.stdout if args.console else None))
    return 0


# --- web -----------------------------------------------------------------------------------


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    from bot.web import run_web

    run_web(settings, host=args.host, port=args.port, workers=args.workers, threads=args.threads)
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.serve import run_serve

    run_serve(settings, host=args.host, port=args.port, threads=args.threads)
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from bot.app import build_app, utcnow
    from handlers.importer import count_rows, import_csv

    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"cargobot import: {path} is not a file")
    app = build_app(settings)
    total = count_rows(path)
    with tqdm(total=total, unit="row", disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
        report = import_csv(
            app.engine,
            path,
            author=args.author,
            now=utcnow(),
            grace_seconds=settings.alert_grace_seconds,
            progress=bar.update,
            job_pattern=settings.job_ref_regex,
        )
    sys.stdout.write(report.summary() + "\n")
    return 1 if report.errors else 0  # valid rows are in; the exit status flags the skipped ones


# --- operations ------------------------------------------------------------------------------


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import timedelta

    from bot.app import build_app, utcnow
    from storage import repo
    from storage.db import write_session

    if args.older_than < 1:
        raise SystemExit("cargobot purge: --older-than must be at least 1 day")
    app = build_app(settings)
    with write_session(app.engine) as session:
        shipments, messages = repo.purge_personal_data(
            session=session, before=utcnow() - timedelta(days=args.older_than)
        )
    sys.stdout.write(f"purged personal data of {shipments} delivered shipment(s) and {messages} message(s)\n")
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from bot.app import build_app
    from storage.db import backup_sqlite, is_sqlite

    app = build_app(settings)
    if not is_sqlite(app.engine):
        raise SystemExit(
            "cargobot backup copies SQLite databases; for PostgreSQL use pg_dump "
            '(pg_dump --format=custom --file=cargobot.dump "$DATABASE_URL"), see the README'
        )
    target = Path(args.file)
    if target.exists():
        raise SystemExit(f"cargobot backup: {target} exists; choose a new file")
    backup_sqlite(app.engine, str(target))
    sys.stdout.write(f"backup written to {target}\n")
    return 0


CUSTOMER_MENU = (
    ("help", "How to check a shipment"),
    ("alert", "Alerts for a reference: /alert MSKU9070323"),
    ("icms", "Is KRA's customs system (iCMS) working?"),
    ("agent", "Talk to a person"),
    ("lang", "Language: /lang sw or /lang en"),
    ("stop", "Stop all messages"),
)


def cmd_setup_telegram(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from bot.telegram_channel import TelegramChannel
    from bot.telegram_polling import ALLOWED_UPDATES

    if not settings.telegram_enabled:
        raise SystemExit("cargobot setup-telegram: TELEGRAM_BOT_TOKEN is not set")
    if not args.remove and not settings.telegram_webhook_mode:  # refused before anything changes
        raise SystemExit(
            "cargobot setup-telegram: set PUBLIC_BASE_URL and TELEGRAM_WEBHOOK_SECRET for webhook "
            "mode (or use --remove to long-poll)"
        )

    async def run() -> str:
        async with TelegramChannel(settings) as channel:
            await channel.set_commands(CUSTOMER_MENU)
            if args.remove:
                await channel.delete_webhook()
                return "webhook removed: the worker will long-poll"
            url = settings.public_base_url.rstrip("/") + "/webhooks/telegram"
            await channel.set_webhook(
                url, settings.telegram_webhook_secret.get_secret_value(), ALLOWED_UPDATES
            )
            return f"webhook set to {url}"

    sys.stdout.write(asyncio.run(run()) + "; command menu set\n")
    return 0


# --- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cargobot", description=__doc__.splitlines()[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True)

    refs = sub.add_parser("refs", help="find shipment references in each stdin line; one JSON array per line")
    refs.add_argument("--jsonl", action="store_true", help="each input line is a JSON string")
    refs.set_defaults(func=cmd_refs, needs_db=False)

    init = sub.add_parser("init-db", help="create the database or upgrade it to the newest schema")
    init.set_defaults(func=cmd_init_db)

    chat = sub.add_parser("chat", help="talk to the bot on the console")
    chat.add_argument(
        "--as", dest="as_address", help="the sender: console:NAME, whatsapp:+E164 or telegram:ID"
    )
    chat.add_argument(
        "--json", action="store_true", help='one JSON object per input line: {"replies": [...]}'
    )
    chat.add_argument(
        "--jsonl", action="store_true", help='each input line is {"from": ADDRESS, "text": "..."}'
    )
    chat.set_defaults(func=cmd_chat)

    dispatch = sub.add_parser("dispatch", help="send the alerts that are due")
    dispatch.add_argument("--once", action="store_true", help="one pass over everything due now, then exit")
    dispatch.add_argument("--json", action="store_true", help="one JSON line per message handled")
    dispatch.set_defaults(func=cmd_dispatch)

    worker = sub.add_parser("worker", help="dispatch alerts, plan maintenance notices, poll Telegram")
    worker.add_argument("--console", action="store_true", help="also deliver console:NAME alerts to stdout")
    worker.set_defaults(func=cmd_worker)

    importer = sub.add_parser("import", help="import shipments from a CSV file (re-running changes nothing)")
    importer.add_argument("file")
    importer.add_argument("--author", default="csv-import", help="who the timeline names for these changes")
    importer.set_defaults(func=cmd_import)

    purge = sub.add_parser("purge", help="remove personal data of delivered shipments and old messages")
    purge.add_argument("--older-than", type=int, required=True, metavar="DAYS")
    purge.set_defaults(func=cmd_purge)

    backup = sub.add_parser("backup", help="copy the SQLite database while it is in use")
    backup.add_argument("file")
    backup.set_defaults(func=cmd_backup)

    setup = sub.add_parser(
        "setup-telegram", help="set the Telegram webhook (or --remove it) and the command menu"
    )
    setup.add_argument("--remove", action="store_true", help="remove the webhook so the worker long-polls")
    setup.set_defaults(func=cmd_setup_telegram)

    demo = sub.add_parser("demo", help="seed fictional shipments (if empty) and open the chat")
    demo.set_defaults(func=cmd_demo, demo=True)

    web = sub.add_parser("web", help="serve the WhatsApp and Telegram webhooks and /healthz (gunicorn)")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    web.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    web.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    web.add_argument("--threads", type=int, default=4, help="threads per worker process (default 4)")
    web.set_defaults(func=cmd_web)

    serve = sub.add_parser("serve", help="webhooks and worker in one process, for a small install")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--threads", type=int, default=4, help="web threads (default 4)")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = _settings()
    if getattr(args, "demo", False) and "database_url" not in settings.model_fields_set:
        # The demo keeps its fictional data apart from a real store in the same folder.
        settings = settings.model_copy(update={"database_url": "sqlite:///cargobot-demo.db"})
    configure_logging(level=settings.log_level, fmt=settings.log_format, secrets=settings.secrets())
    try:
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # python -m bot.cli, as the tests run it
    sys.exit(main())
