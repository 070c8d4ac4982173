"""What TWS's error codes mean for a bridge user, in our words, next to TWS's own."""

from __future__ import annotations

HINTS: dict[int, str] = {
    101: "TWS's limit of simultaneous market-data lines is reached; unsubscribe something or add lines.",
    162: "TWS refused the historical or real-time bar request (no permissions or pacing).",
    366: "TWS has no such historical request running (it had ended or was cancelled).",
    200: "TWS has no such contract: check symbol, secType, exchange and currency (docs/bus.md, Instruments).",
    300: "TWS does not know the request id; the subscription is gone.",
    321: "TWS refused the request as invalid (its words say which field).",
    322: "Duplicate request id; this is a bridge bug, please report it.",
    326: "Another API client uses the bridge's client id; start the bridge with another --client-id.",
    354: "The account has no market-data subscription for this instrument; try market_data_type 'delayed'.",
    502: "Cannot connect to TWS: enable 'ActiveX and Socket Clients' in TWS's API settings and check the port.",
    504: "Not connected to TWS.",
    1100: "TWS lost its connection to IB's servers; data resumes when it is back.",
    1101: "TWS is back but its market data was lost; the bridge re-requests every subscription.",
    1102: "TWS is back and kept its market data.",
    10089: "This data needs an additional market-data subscription on the account.",
    10090: "Part of this data is not subscribed; some fields will stay empty.",
    10167: "Live data is not subscribed; TWS shows delayed data instead.",
    10168: "Delayed data is not enabled for this account or instrument.",
    10197: "No market data while another session of this user holds live data (competing session).",
}

# Codes after which a data request keeps running (a warning about what is sent, not a refusal).
NOT_FATAL_FOR_A_LINE = frozenset({10090, 10167, 10197, 2119, 2104, 2106, 2158})


def is_notice(code: int) -> bool:
    """Informational, not a problem: farm status and other 2100-2199 warnings, 1102 (IB back, data kept)."""
    return 2100 <= code < 2200 or code == 1102


def hint(code: int) -> str:
    return HINTS.get(code, "")
