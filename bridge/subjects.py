"""Bus topics as NATS subjects, and back (docs/nats.md): the relay's only naming rule, sans-IO.

A topic's `/`-separated parts become subject tokens under `twsbridge.`; inside a token `.`
becomes `-` (so `quote/AAPL.STK.SMART.USD` is `twsbridge.quote.AAPL-STK-SMART-USD`) and every
other character outside `A-Z a-z 0-9 _` is written `~XX` (its byte in hex), `-` and `~`
included. The mapping is one-to-one and every token is a plain NATS token: no `.`, `*`, `>` or
whitespace, so subscribers can use wildcards (`twsbridge.quote.>`).
"""

from __future__ import annotations

import re

PREFIX = "twsbridge"
REQUEST_SUBJECT = "twsbridge_req"  # request/reply, the REQ socket's ops; outside the stream's `twsbridge.>`
_PLAIN = re.compile(r"[A-Za-z0-9_]")


def _token(part: str) -> str:
    out = []
    for ch in part:
        if _PLAIN.match(ch):
            out.append(ch)
        elif ch == ".":
            out.append("-")
        else:
            out.extend(f"~{b:02X}" for b in ch.encode())
    return "".join(out) or "~"


def subject(topic: str) -> str:
    """The NATS subject a bus topic is published to."""
    return ".".join([PREFIX, *(_token(part) for part in topic.split("/"))])


def topic(subject_: str) -> str:
    """The bus topic of a subject made by `subject` (ValueError for anything else)."""
    prefix, _, rest = subject_.partition(".")
    if prefix != PREFIX or not rest:
        raise ValueError(f"not a {PREFIX} subject: {subject_[:80]!r}")
    return "/".join(_part(token) for token in rest.split("."))


def _part(token: str) -> str:
    if token == "~":
        return ""
    out, i = bytearray(), 0
    while i < len(token):
        ch = token[i]
        if ch == "~":
            out += bytes.fromhex(token[i + 1 : i + 3])
            i += 3
            continue
        out += b"." if ch == "-" else ch.encode()
        i += 1
    return out.decode()


def message_id(epoch: str, topic_: str, seq: int) -> str:
    """`Nats-Msg-Id` for JetStream's duplicate check: one bus message has one id, whoever relays it."""
    return f"{epoch}:{topic_}:{seq}"
