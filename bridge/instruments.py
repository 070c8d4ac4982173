"""Instruments as users name them: the short form and the contract map of docs/bus.md.

`parse_instrument` turns either into a `Contract` to ask TWS about; `instrument_key` turns a
contract TWS qualified into the canonical key that topics and payloads carry.
"""

from __future__ import annotations

from typing import Any

from .limits import MAX_INSTRUMENT_CHARS
from .protocol import Contract

DEFAULT_EXCHANGE = {
    "STK": "SMART",
    "OPT": "SMART",
    "IND": "SMART",
    "CRYPTO": "PAXOS",
    "CASH": "IDEALPRO",
    "FUT": "CME",
    "FOP": "CME",
}
_DATED = {"FUT", "OPT", "FOP", "FWD", "WAR"}

# What users type before they know IB's names, and the form TWS understands (`suggest`).
CURRENCIES = frozenset(
    {"USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD", "NZD", "HKD", "SGD", "SEK", "NOK"}
    | {"DKK", "CNH", "MXN", "ZAR", "PLN", "CZK", "HUF", "ILS", "TRY", "KRW", "INR"}
)
CRYPTOS = {"BTC": "PAXOS", "ETH": "PAXOS", "LTC": "PAXOS", "BCH": "PAXOS"}
FUTURE_EXCHANGES = {
    **dict.fromkeys(["ES", "MES", "NQ", "MNQ", "RTY", "M2K", "HE", "LE", "GF"], "CME"),
    **dict.fromkeys(["6E", "6J", "6B", "6A", "6C", "6S", "6N", "M6E"], "CME"),
    **dict.fromkeys(["YM", "MYM", "ZB", "ZN", "ZF", "ZT", "UB", "ZC", "ZS", "ZW", "ZM", "ZL"], "CBOT"),
    **dict.fromkeys(["CL", "MCL", "NG", "RB", "HO", "QM"], "NYMEX"),
    **dict.fromkeys(["GC", "MGC", "SI", "SIL", "HG"], "COMEX"),
    "VX": "CFE",
}
_OPTIONS = {"OPT", "FOP", "WAR"}

# The contract-map keys we accept (IB's names) and the Contract field each fills.
_CONTRACT_KEYS = {
    "symbol": "symbol",
    "secType": "sec_type",
    "exchange": "exchange",
    "currency": "currency",
    "conId": "con_id",
    "primaryExchange": "primary_exchange",
    "lastTradeDateOrContractMonth": "last_trade_date_or_contract_month",
    "strike": "strike",
    "right": "right",
    "multiplier": "multiplier",
    "localSymbol": "local_symbol",
}
_REQUIRED = ("symbol", "secType", "exchange", "currency")


class InstrumentError(ValueError):
    """The instrument is not written in a form we understand; the message says why."""


def parse_short_form(text: str) -> Contract:
    """`SYMBOL[.SECTYPE[.EXCHANGE[.CURRENCY[.EXPIRY[.STRIKE.RIGHT]]]]]`, defaults for what is left out."""
    parts = [p.strip() for p in text.strip().upper().split(".")]
    if not parts[0] or len(parts) > 7 or any(not p for p in parts):
        raise InstrumentError(
            f"instrument {text!r} is not SYMBOL[.SECTYPE[.EXCHANGE[.CURRENCY[.EXPIRY[.STRIKE.RIGHT]]]]]"
        )
    symbol = parts[0]
    if len(parts) == 2 and symbol in CURRENCIES and parts[1] in CURRENCIES:  # EUR.USD: the pair, as traders write it
        return Contract(symbol, "CASH", DEFAULT_EXCHANGE["CASH"], parts[1])
    sec_type = parts[1] if len(parts) > 1 else "STK"
    exchange = parts[2] if len(parts) > 2 else DEFAULT_EXCHANGE.get(sec_type, "SMART")
    currency = parts[3] if len(parts) > 3 else "USD"
    expiry = parts[4] if len(parts) > 4 else ""
    strike: float | None = None
    right = ""
    if len(parts) == 6:
        raise InstrumentError(f"instrument {text!r}: an option needs both STRIKE and RIGHT")
    if len(parts) == 7:
        try:
            strike = float(parts[5])
        except ValueError:
            raise InstrumentError(f"instrument {text!r}: strike {parts[5]!r} is not a number") from None
        right = parts[6]
    return Contract(
        symbol, sec_type, exchange, currency, last_trade_date_or_contract_month=expiry, strike=strike, right=right
    )


def suggest(text: str) -> str | None:
    """The short form that works, for a string TWS found nothing for (error 200); None if no better guess.

    `BTC` -> `BTC.CRYPTO`; `EUR` or `EURUSD` -> `EUR.CASH` (IDEALPRO, currency USD); `ES` or `ES.FUT`
    on the wrong exchange -> `ES.FUT.CME.USD.YYYYMM`, since a future is named with its contract month.
    """
    parts = text.strip().upper().split(".")
    symbol, sec_type = parts[0], parts[1] if len(parts) > 1 else None
    exchange = parts[2] if len(parts) > 2 else None
    if sec_type in (None, "STK") and symbol in CRYPTOS:
        return f"{symbol}.CRYPTO (exchange {CRYPTOS[symbol]}, currency USD)"
    future = FUTURE_EXCHANGES.get(symbol)
    if future and (sec_type in (None, "STK") or (sec_type == "FUT" and (exchange or "CME") != future)):
        return (
            f"{symbol}.FUT.{future}.USD.YYYYMM: a future is named with its contract month; "
            f"{symbol}.FUT.{future} answers with the months TWS has"
        )
    if sec_type in (None, "STK"):
        base, quote = (symbol[:3], symbol[3:]) if len(symbol) == 6 else (symbol, "USD")
        if base in CURRENCIES and quote in CURRENCIES and base != quote:
            pair = f"{base}.CASH" if quote == "USD" else f"{base}.CASH.IDEALPRO.{quote}"
            return f"{pair} (the {base}.{quote} pair on IDEALPRO; {base}.{quote} works too)"
        if symbol == "USD":
            return "USD.CASH.IDEALPRO.JPY (USD against JPY; IDEALPRO names a pair by its base currency)"
    return None


def parse_contract_map(spec: dict[str, Any]) -> Contract:
    """A contract map with IB's key names; unknown keys and wrong types are refused by name."""
    if not all(isinstance(k, str) for k in spec):
        raise InstrumentError("contract map keys must be strings (IB's names: symbol, secType, ...)")
    unknown = sorted(set(spec) - set(_CONTRACT_KEYS))
    if unknown:
        raise InstrumentError(f"unknown contract keys {unknown}; known: {sorted(_CONTRACT_KEYS)}")
    missing = [k for k in _REQUIRED if not spec.get(k)]
    if missing:
        raise InstrumentError(f"contract map lacks {missing}")
    values: dict[str, Any] = {}
    for key, value in spec.items():
        field = _CONTRACT_KEYS[key]
        if key == "conId":
            if not isinstance(value, int) or isinstance(value, bool):
                raise InstrumentError("conId must be an integer")
        elif key == "strike":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise InstrumentError("strike must be a number")
            value = float(value)
        elif not isinstance(value, str):
            raise InstrumentError(f"{key} must be a string")
        elif key != "localSymbol":
            value = value.upper()
        values[field] = value
    return Contract(**values)


def parse_instrument(spec: object) -> Contract:
    """A short-form string or a contract map, as a subscribe request carries it."""
    if isinstance(spec, str):
        if len(spec) > MAX_INSTRUMENT_CHARS:
            raise InstrumentError(f"instrument string is longer than the limit of {MAX_INSTRUMENT_CHARS} characters")
        return parse_short_form(spec)
    if isinstance(spec, dict):
        return parse_contract_map(spec)
    raise InstrumentError("instrument must be a short-form string like 'AAPL' or a contract map")


def instrument_key(contract: Contract) -> str:
    """The canonical short form of a contract: what topics and payloads name it by."""
    parts = [contract.symbol, contract.sec_type, contract.exchange, contract.currency]
    if contract.sec_type in _DATED and contract.last_trade_date_or_contract_month:
        parts.append(contract.last_trade_date_or_contract_month)
    if contract.sec_type in _OPTIONS and contract.strike:
        parts += [f"{contract.strike:g}", contract.right]
    return ".".join(parts)
