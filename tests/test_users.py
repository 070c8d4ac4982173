"""What a new user meets first, against a real bridge and simulator: the short forms people type,
the consumer printed in docs/bus.md, the demo's help, and the docs pointing at the instrument list."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.instruments import parse_instrument, suggest
from tests.harness import Bridge, Simulator

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("typed", "works"),
    [
        ("BTC", "BTC.CRYPTO"),
        ("eth", "ETH.CRYPTO"),
        ("EUR", "EUR.CASH"),
        ("EURUSD", "EUR.CASH"),
        ("GBPJPY", "GBP.CASH.IDEALPRO.JPY"),
        ("ES", "ES.FUT.CME.USD.YYYYMM"),
        ("YM.FUT", "YM.FUT.CBOT.USD.YYYYMM"),
        ("CL", "CL.FUT.NYMEX.USD.YYYYMM"),
    ],
)
def test_a_short_form_tws_does_not_know_gets_the_one_that_works(typed: str, works: str) -> None:
    assert (suggest(typed) or "").startswith(works)


@pytest.mark.parametrize("typed", ["AAPL", "AAPL.STK", "ES.FUT.CME", "BTC.CRYPTO", "XYZZY"])
def test_no_suggestion_where_there_is_no_better_guess(typed: str) -> None:
    assert suggest(typed) is None


def test_a_pair_written_as_traders_do_is_the_cash_pair() -> None:
    assert parse_instrument("EUR.USD") == parse_instrument("EUR.CASH.IDEALPRO.USD")
    assert parse_instrument("usd.jpy") == parse_instrument("USD.CASH.IDEALPRO.JPY")
    assert parse_instrument("BRK.B").sec_type == "B"  # not a pair: left to TWS as written


@pytest.fixture
def short_lease_bridge(tmp_path: Path, sim: Simulator) -> Iterator[Bridge]:
    b = Bridge(tmp_path, sim.port, extra=["--lease-default", "2"])
    yield b
    b.stop()


def test_short_forms_against_the_simulator_work_or_name_what_works(bridge: Bridge) -> None:
    def subscribe(instrument: str) -> dict:
        return bridge.request({"op": "subscribe", "instrument": instrument, "lease": 30}, timeout=10)

    pair = subscribe("EUR.USD")
    assert pair["ok"] and pair["topic"] == "quote/EUR.CASH.IDEALPRO.USD"

    btc = subscribe("BTC")
    assert btc["code"] == "unknown_instrument" and btc["suggestion"] == "BTC.CRYPTO"
    assert "try BTC.CRYPTO" in btc["error"]
    assert subscribe(btc["suggestion"])["ok"]
    again = subscribe("BTC")  # answered from the bridge's memory of the refusal: the advice too
    assert again.get("remembered") and again["suggestion"] == "BTC.CRYPTO"

    es = subscribe("ES")
    assert es["code"] == "unknown_instrument" and es["suggestion"] == "ES.FUT.CME.USD.YYYYMM"
    months = subscribe("ES.FUT.CME")  # what the advice says to ask next: the months TWS has
    assert months["code"] == "bad_request"
    listed = re.findall(r"ES\.FUT\.CME\.USD\.(\d{8})", months["error"])
    assert len(listed) >= 2, months
    month = subscribe(f"ES.FUT.CME.USD.{listed[0][:6]}")  # YYYYMM, as the advice is written
    assert month["ok"] and month["topic"] == f"quote/ES.FUT.CME.USD.{listed[0]}"


def _docs_consumer() -> str:
    text = (ROOT / "docs" / "bus.md").read_text()
    section = text[text.index("## A consumer of your own") :]
    return section[section.index("```python\n") + 10 : section.index("\n```", section.index("```python"))]


def test_the_consumer_printed_in_docs_bus_md_keeps_receiving_past_its_lease(short_lease_bridge: Bridge) -> None:
    """Run exactly as printed, with a 2 s lease: ticks must keep coming well past it (renewals work)."""
    code = _docs_consumer()
    assert "renew" in code
    env = {**os.environ, "TWSBRIDGE_REP": short_lease_bridge.rep, "TWSBRIDGE_PUB": short_lease_bridge.pub}
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    arrivals: list[float] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "'tick_" in line:
                arrivals.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started = time.monotonic()
    try:
        time.sleep(9)  # 4.5 leases
        listed = short_lease_bridge.request({"op": "list"})
    finally:
        proc.kill()
        proc.wait(5)
    late = [t - started for t in arrivals if t - started > 6]
    assert arrivals, f"no ticks at all; stderr: {proc.stderr.read() if proc.stderr else ''}"
    assert late, f"ticks stopped after {max(t - started for t in arrivals):.1f} s with a 2 s lease"
    assert [s["topic"] for s in listed["subscriptions"]] == ["quote/BTC.CRYPTO.PAXOS.USD"]


def test_demo_help_is_the_demos_own_and_starts_nothing() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bridge.demo", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m bridge.demo")
    assert "bridge.simulator --list" in done.stdout and "consumers.printer" not in done.stdout
    assert done.stderr == ""  # no bridge or simulator log: nothing was started
    assert time.monotonic() - started < 10


def test_the_docs_point_at_the_instrument_list_and_the_readme_demo_names_what_works() -> None:
    readme = (ROOT / "README.md").read_text()
    bus = (ROOT / "docs" / "bus.md").read_text()
    assert "python -m bridge.simulator --list" in readme and "python -m bridge.simulator --list" in bus
    quick = readme[readme.index("## Quick start") : readme.index("## With a real TWS")]
    assert "pip install -e . && python -m bridge.demo" in quick
    assert "pip install -e '.[test]' && python -m pytest" in quick
    # every instrument the demo paragraph names is one the demo really shows
    from bridge.demo import DEFAULT_INSTRUMENTS

    for name in DEFAULT_INSTRUMENTS:
        assert f"`{name}`" in quick, name
    assert "python -m pip install --quiet -e '.[test]'" in (ROOT / ".ci" / "run").read_text()


def _front_es() -> str:
    """The simulator's nearest ES contract (its months roll with the date; the README names Dec 2026)."""
    from bridge.simulator import CATALOGUE

    expiries = [i.contract.last_trade_date_or_contract_month for i in CATALOGUE if i.contract.symbol == "ES"]
    return min(expiries)  # YYYYMMDD


@pytest.mark.parametrize("others", [False, True], ids=["default", "readme-others"])
def test_the_demo_shows_what_the_readme_says(others: bool) -> None:
    from tests.harness import free_port

    es = _front_es()
    instruments = [f"ES.FUT.CME.USD.{es[:6]}", "GBP.USD"] if others else []
    if others:
        assert "python -m bridge.demo ES.FUT.CME.USD.202612 GBP.USD" in (ROOT / "README.md").read_text()

    env = {k: v for k, v in os.environ.items() if not k.startswith("TWSBRIDGE_")}
    env.update(
        TWSBRIDGE_PUB=f"tcp://127.0.0.1:{free_port()}",
        TWSBRIDGE_REP=f"tcp://127.0.0.1:{free_port()}",
        TWSBRIDGE_METRICS=f"127.0.0.1:{free_port()}",
    )
    done = subprocess.run(
        [sys.executable, "-m", "bridge.demo", *instruments, "--", "--seconds", "3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    keys = instruments and [f"ES.FUT.CME.USD.{es}", "GBP.CASH.IDEALPRO.USD"]
    for key in keys or ["BTC.CRYPTO.PAXOS.USD", "AAPL.STK.SMART.USD", "EUR.CASH.IDEALPRO.USD"]:
        assert re.search(rf"^\S+ {re.escape(key)}  bid \d", done.stdout, re.M), f"no ticks for {key}"
    assert "cannot subscribe" not in done.stderr
