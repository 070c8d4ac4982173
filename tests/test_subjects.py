"""Topic <-> subject mapping for the NATS relay: one-to-one, and always a valid NATS subject."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bridge.subjects import subject, topic

_TOKEN = re.compile(r"[A-Za-z0-9_~-]+")


def test_the_documented_examples() -> None:
    assert subject("quote/AAPL.STK.SMART.USD") == "twsbridge.quote.AAPL-STK-SMART-USD"
    assert subject("state") == "twsbridge.state"
    assert subject("quote/ES.FUT.CME.USD.202612/delayed") == "twsbridge.quote.ES-FUT-CME-USD-202612.delayed"
    assert subject("quote/AAPL.STK.SMART.USD/g233,236") == "twsbridge.quote.AAPL-STK-SMART-USD.g233~2C236"


@given(st.lists(st.text(max_size=20), min_size=1, max_size=4))
def test_every_topic_maps_to_a_plain_subject_and_back(parts: list[str]) -> None:
    t = "/".join(parts)
    s = subject(t)
    assert all(_TOKEN.fullmatch(token) for token in s.split(".")), s
    assert topic(s) == t


@given(st.text(max_size=30), st.text(max_size=30))
def test_different_topics_never_share_a_subject(a: str, b: str) -> None:
    if a != b:
        assert subject(a) != subject(b)
