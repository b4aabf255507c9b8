"""WhatsApp channel: sends through the Twilio SDK and says why a send failed.

Pointing the SDK somewhere else (a fake in tests, a proxy): twilio's ``Client`` takes an
``http_client=`` (its documented extension point: the SDK's own tests swap in a fake one the same
way). ``RedirectingHttpClient`` is a ``TwilioHttpClient`` that rewrites the scheme and host of each
``https://api.twilio.com/...`` URL to ``TWILIO_API_BASE_URL`` (keeping a path prefix if it has one)
and otherwise behaves exactly like the SDK's client; with the default base URL it changes nothing.
We also hand ``Client`` an explicit environment so it never picks up ``TWILIO_EDGE`` /
``TWILIO_REGION`` behind ``Settings``' back.

The SDK is synchronous: each send runs on this channel's own small thread pool, so slow Twilio
calls neither block the event loop nor starve other users of the default executor.

Error mapping (``TwilioRestException.status`` / ``.code``):

=====================================================  ============================================
429, or code 20429                                      RetryableSendError (Retry-After if given)
5xx; connection errors and timeouts                     RetryableSendError
401 (credentials rejected: configuration)               RetryableSendError(60 s): fix and resume
63016 (outside the 24-hour window)                      OutsideWindowError: send a template instead
21211, 21614, 21612, 21408, 21610, 63003, 63024, ...    PermanentSendError (number cannot receive)
any other 4xx                                           PermanentSendError
=====================================================  ============================================
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from requests import RequestException
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.config import Settings
from bot.delivery import (
    Outgoing,
    OutsideWindowError,
    PermanentSendError,
    RetryableSendError,
    SendError,
    split_text,
)
from handlers.types import Button

log = logging.getLogger(__name__)

WHATSAPP_TEXT_LIMIT = 1600
STATUS_CALLBACK_PATH = "/webhooks/whatsapp/status"

#: Twilio codes meaning this number will never take the message: invalid or unreachable number,
#: not a WhatsApp user, opted out / unsubscribed, channel not found for the number.
PERMANENT_CODES = frozenset({21211, 21408, 21610, 21612, 21614, 63003, 63024, 63032})
OUTSIDE_WINDOW_CODE = 63016
#: As for Telegram: a configuration error holds alerts back rather than failing them all.
CONFIGURATION_RETRY_SECONDS = 60.0
RATE_LIMIT_CODE = 20429
TWILIO_API_HOST = "api.twilio.com"  # the REST API that TWILIO_API_BASE_URL stands in for


class RedirectingHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, sending ``https://api.twilio.com/…`` requests to ``base_url`` instead.

    Also remembers, per thread, the last response, so a caller can read headers (Retry-After) that
    ``TwilioRestException`` does not carry.
    """

    def __init__(self, base_url: str, *, pool_size: int = 10, timeout: float | None = 15.0) -> None:
        super().__init__(pool_connections=True, timeout=timeout)
        target = urlsplit(base_url.rstrip("/"))
        if target.scheme not in ("http", "https") or not target.netloc:
            raise ValueError(f"TWILIO_API_BASE_URL must be an http(s) URL, not {base_url!r}")
        self._target = target
        self._last = threading.local()
        if self.session is not None:  # size the pool for the channel's worker threads
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size)
            self.session.mount("https://", adapter)
            self.session.mount("http://", adapter)

    def redirect(self, url: str) -> str:
        """``https://api.twilio.com/2010-04-01/…`` → ``{base_url}/2010-04-01/…``; other URLs as they are."""
        parts = urlsplit(url)
        if parts.hostname != TWILIO_API_HOST:
            return url
        return urlunsplit(
            (
                self._target.scheme,
                self._target.netloc,
                self._target.path + parts.path,
                parts.query,
                parts.fragment,
            )
        )

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        self._last.response = None
        response = super().request(
            method,
            self.redirect(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        self._last.response = response
        return response

    def last_header(self, name: str) -> str | None:
        """A header of the last response this thread received, or None."""
        response = getattr(self._last, "response", None)
        if response is None or not response.headers:
            return None
        wanted = name.lower()
        return next((v for k, v in response.headers.items() if k.lower() == wanted), None)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


def whatsapp_address(number: str) -> str:
    """``+44 7700 900123`` / ``447700900123`` / ``whatsapp:+447700900123`` → ``whatsapp:+447700900123``."""
    bare = number.strip().removeprefix("whatsapp:")
    digits = "".join(ch for ch in bare if ch.isdigit())
    if not digits:
        raise ValueError(f"not a phone number: {number!r}")
    return f"whatsapp:+{digits}"


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from Twilio; the dispatcher's backoff covers it


def button_hint(buttons: tuple[Button, ...]) -> str:
    """WhatsApp free text has no inline buttons: say what to type instead."""
    if not buttons:
        return ""
    lines = [
        b.data if b.label.strip().upper() == b.data.strip().upper() else f"{b.data} ({b.label})"
        for b in buttons
    ]
    return "\n\nReply with:\n" + "\n".join(lines)


class WhatsAppChannel:
    """Sends ``Outgoing`` messages to ``whatsapp:+E164`` addresses through Twilio.

    ``pool_size`` is both the number of worker threads and HTTP connections; ``timeout`` bounds
    each HTTP request.
    """

    name = "whatsapp"

    def __init__(self, settings: Settings, *, pool_size: int = 8, timeout: float = 15.0) -> None:
        if not settings.twilio_account_sid:
            raise ValueError("TWILIO_ACCOUNT_SID is not set")
        if not settings.twilio_whatsapp_from:
            raise ValueError("TWILIO_WHATSAPP_FROM is not set")
        self.from_ = whatsapp_address(settings.twilio_whatsapp_from)
        base = settings.public_base_url.rstrip("/")
        self.status_callback = f"{base}{STATUS_CALLBACK_PATH}" if base else None
        self.http_client = RedirectingHttpClient(
            settings.twilio_api_base_url, pool_size=pool_size, timeout=timeout
        )
        self.client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            http_client=self.http_client,
            # non-empty, so Client does not fall back to os.environ for edge and region
            environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
        )
        self._pool_size = pool_size
        self._executor: ThreadPoolExecutor | None = None

    async def initialize(self) -> None:
        """Nothing to open ahead of time; here for symmetry with the Telegram channel."""

    async def shutdown(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)
        self.http_client.close()

    async def __aenter__(self) -> WhatsAppChannel:
        await self.initialize()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def send(self, message: Outgoing) -> str:
        """Send a template, or free text (in several messages past 1600 characters); return the
        last message SID."""
        to = self._to(message.address)
        if message.template is not None:
            requests = [
                {
                    "content_sid": message.template.content_sid,
                    "content_variables": json.dumps(message.template.variables, ensure_ascii=False),
                }
            ]
        else:
            text = message.text + button_hint(message.buttons)
            if not text.strip():
                raise PermanentSendError("refusing to send an empty WhatsApp message")
            requests = [{"body": piece} for piece in split_text(text, WHATSAPP_TEXT_LIMIT)]
        sid = ""
        for index, fields in enumerate(requests):
            try:
                sid = await self._run(self._create, to, fields)
            except SendError as error:
                if index:
                    log.warning(
                        "whatsapp: %d of %d parts sent to %s before: %s",
                        index,
                        len(requests),
                        message.address,
                        error,
                    )
                raise
        return sid

    def _to(self, address: str) -> str:
        channel, _, number = address.partition(":")
        if channel != "whatsapp" or not number.startswith("+") or not number[1:].isdigit():
            raise PermanentSendError(f"not a WhatsApp address: {address!r}")
        return address

    async def _run(self, func: Any, *args: Any) -> str:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._pool_size, thread_name_prefix="twilio")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    def _create(self, to: str, fields: dict[str, str]) -> str:
        """One Messages.json create, on a worker thread; SDK errors become SendErrors here, where
        the response headers are still at hand."""
        if self.status_callback:
            fields = {**fields, "status_callback": self.status_callback}
        try:
            created = self.client.messages.create(to=to, from_=self.from_, **fields)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._classify(exc) from None
        except RequestException as exc:  # connection refused / reset, timeouts
            raise RetryableSendError(f"twilio {type(exc).__name__}: {exc}") from None
        return str(created.sid)

    def _classify(self, exc: TwilioRestException | TwilioServiceException) -> SendError:
        status = int(exc.status or 0)
        code = int(exc.code) if exc.code is not None else None
        detail = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
        reason = f"twilio {status} code {code}: {detail}"
        if status == 429 or code == RATE_LIMIT_CODE:
            return RetryableSendError(
                reason, retry_after=_parse_retry_after(self.http_client.last_header("Retry-After"))
            )
        if status >= 500:
            return RetryableSendError(reason)
        if status == 401:  # wrong TWILIO_ACCOUNT_SID / AUTH_TOKEN: hold the alerts until fixed
            return RetryableSendError(
                f"{reason} (credentials rejected)", retry_after=CONFIGURATION_RETRY_SECONDS
            )
        if code == OUTSIDE_WINDOW_CODE:
            return OutsideWindowError(reason)
        if code in PERMANENT_CODES:
            return PermanentSendError(f"{reason} (this number cannot receive WhatsApp messages)")
        return PermanentSendError(reason)
