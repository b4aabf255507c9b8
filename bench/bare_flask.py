"""The benchmark's baseline: a Flask app that answers every WhatsApp webhook with empty TwiML.

Served by the same gunicorn settings as ``cargobot web`` (``bot.web.gunicorn_options`` and
``WebServer``), so the only difference ``bench/webhooks.py`` measures is cargobot's own work.

    python bench/bare_flask.py --host 127.0.0.1 --port 8001 --workers 2 --threads 4
"""

from __future__ import annotations

import argparse

from flask import Flask, Response

from bot.web import WHATSAPP_PATH, WHATSAPP_STATUS_PATH, WebServer, gunicorn_options

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def create_bare_app() -> Flask:
    app = Flask(__name__)

    def empty_twiml() -> Response:
        return Response(EMPTY_TWIML, mimetype="application/xml")

    app.add_url_rule(WHATSAPP_PATH, "message", empty_twiml, methods=["POST"])
    app.add_url_rule(WHATSAPP_STATUS_PATH, "status", empty_twiml, methods=["POST"])

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    options = gunicorn_options(host=args.host, port=args.port, workers=args.workers, threads=args.threads)
    WebServer(create_bare_app, options).run()


if __name__ == "__main__":
    main()
