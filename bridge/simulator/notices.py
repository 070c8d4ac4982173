"""TWS's error and notice messages, with its codes and its wording.

Clients match on the code and people search the web for the text, so both are TWS's own.
"""

from __future__ import annotations

import time

from bridge.protocol import events as ev
from bridge.protocol import requests as rq

# Connection-wide notices go out with reqId -1 (NO_VALID_ID).
NO_VALID_ID = -1

# The farm-status notices TWS sends after startApi: "OK" for each data farm.
FARMS_OK = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)

NO_SECURITY_DEFINITION = (200, "No security definition has been found for the request")
MAX_TICKERS = (101, "Max number of tickers has been reached")
CANT_FIND_TICKER = 300  # "Can't find EId with tickerId:<id>"
MAX_DEPTH = 309  # "Max number (3) of market depth requests has been reached"
READ_ONLY = (321, "Error validating request.-'bN' : cause - The API interface is currently in Read-Only mode.")
DUPLICATE_TICKER = (322, "Error processing request.-'bR' : cause - Duplicate ticker id")
HISTORICAL_NO_DATA = (162, "Historical Market Data Service error message:HMDS query returned no data")
CLIENT_ID_IN_USE = (326, "Unable to connect as the client id is already in use. Retry with a unique client id.")


def error(req_id: int, code_and_text: tuple[int, str]) -> ev.Error:
    """An error event stamped with the time TWS would put on it (sent from server 194)."""
    code, text = code_and_text
    return ev.Error(req_id, code, text, "", int(time.time() * 1000))


def ambiguous(symbol: str) -> tuple[int, str]:
    return 200, f"The contract description specified for {symbol} is ambiguous."


def reading_request(msg_id: int, reason: str) -> tuple[int, str]:
    return 320, f"Error reading request. Message id {msg_id}. {reason}"


# --- connectivity and farms (fault injection) -------------------------------------------------

CONNECTIVITY_LOST = (1100, "Connectivity between IB and Trader Workstation has been lost.")
RESTORED_DATA_LOST = (1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
RESTORED_DATA_KEPT = (1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.")
FARM_BROKEN = {
    "market": (2103, "Market data farm connection is broken:usfarm"),
    "historical": (2105, "HMDS data farm connection is broken:ushmds"),
    "secdef": (2157, "Sec-def data farm connection is broken:secdefnj"),
}
FARM_OK = dict(zip(FARM_BROKEN, FARMS_OK, strict=True))
COMPETING_SESSION = (10197, "No market data during competing live session")
MAX_TICK_BY_TICK = (10190, "Max number of tick-by-tick requests has been reached.")
RATE_EXCEEDED = 100  # "Max rate of messages per second has been exceeded:max=50 rec=N (k)"


def farm_of(request: object) -> str | None:
    """The data farm that answers `request`: sec-def for contract details and symbol search, HMDS for history."""
    if isinstance(request, SECDEF_REQUESTS):
        return "secdef"
    if isinstance(request, HISTORICAL_REQUESTS):
        return "historical"
    return None


SECDEF_REQUESTS = (rq.ReqContractDetails, rq.ReqMatchingSymbols, rq.ReqSecDefOptParams)
HISTORICAL_REQUESTS = (rq.ReqHistoricalData, rq.ReqHeadTimestamp, rq.ReqHistoricalTicks)
