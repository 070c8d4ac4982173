"""Connecting to NATS, for the relay and the consumers alike: options from the shared flags (user and
password, creds file, TLS) and a connect that says why it failed instead of retrying refused credentials
for ever."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

# The environment a relay or a consumer reads when its flag is not given (a password is better kept
# out of the command line, where `ps` shows it).
URL_ENV = "TWSBRIDGE_NATS"
USER_ENV = "TWSBRIDGE_NATS_USER"
PASSWORD_ENV = "TWSBRIDGE_NATS_PASSWORD"
CREDS_ENV = "TWSBRIDGE_NATS_CREDS"
TLS_CA_ENV = "TWSBRIDGE_NATS_TLS_CA"


def connect_options(
    url: str,
    user: str | None = None,
    password: str | None = None,
    creds: str | None = None,
    tls_ca: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `nats.connect`: credentials as given, TLS when the URL or a CA file asks.

    A `tls://` URL with no CA file trusts the system's roots; a CA file (a private CA, a self-signed
    server) turns TLS on whatever the URL's scheme.
    """
    out: dict[str, Any] = {}
    if user is not None:
        out["user"], out["password"] = user, password or ""
    if creds is not None:
        out["user_credentials"] = creds
    if tls_ca is not None or url.startswith("tls://"):
        out["tls"] = ssl.create_default_context(cafile=tls_ca)
    return out


class NatsUnavailable(Exception):
    """No connection to NATS: the message says why (refused credentials, TLS, nothing answering)."""


def _refused(exc: BaseException) -> bool:
    """Errors retrying cannot fix: the server answered and said no, or TLS failed."""
    text = str(exc).lower()
    words = ("authorization", "authentication", "ssl", "certificate", "secure connection", "tls")
    return any(word in text for word in words)


async def connect(
    url: str,
    *,
    timeout: float | None,
    error_cb: Callable[[Exception], Awaitable[None]] | None = None,
    **options: Any,
) -> Any:
    """`nats.connect(url, **options)` with reconnects for ever once connected; the first connection gives
    up at once on refused credentials or TLS, and after `timeout` seconds (None: never) otherwise."""
    import nats

    seen: list[Exception] = []

    async def record(exc: Exception) -> None:
        seen.append(exc)
        if error_cb is not None:
            await error_cb(exc)

    task = asyncio.ensure_future(
        nats.connect(url, max_reconnect_attempts=-1, allow_reconnect=True, error_cb=record, **options)
    )
    loop = asyncio.get_running_loop()
    end = None if timeout is None else loop.time() + timeout
    while not task.done():
        await asyncio.wait({task}, timeout=0.05)
        if task.done():
            break
        if (seen and _refused(seen[-1])) or (end is not None and loop.time() > end):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            why = (str(seen[-1]) or type(seen[-1]).__name__) if seen else f"no answer within {timeout:g} s"
            raise NatsUnavailable(f"cannot connect to NATS at {url}: {why}")
    return task.result()
