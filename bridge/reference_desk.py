"""Contract details, option chains and symbol search: reference data asked of TWS directly.

Not historical requests (IB's historical pacing does not count them), so they skip the scheduler
and go straight to the bridge's paced TWS link in the asking client's lane; TWS's time to answer
(DIRECT_TIMEOUT) counts from when the request was written, as for the bridge's contract lookups.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import history_rows as rows
from .hints import NOT_FATAL_FOR_A_LINE, hint, is_notice
from .instruments import instrument_key
from .ops import RequestError
from .protocol import Contract
from .protocol import events as ev
from .protocol import requests as rq
from .tws import TwsConnection

DIRECT_TIMEOUT = 5.0  # seconds TWS has to answer once it has the request

Qualify = Callable[[Contract, bytes, float], Awaitable[Contract]]


def tws_refusal(error: ev.Error) -> RequestError:
    words, ours = f"TWS error {error.code}: {error.message}", hint(error.code)
    code = "unknown_instrument" if error.code == 200 else "tws_error"
    return RequestError(code, f"{words} ({ours})" if ours else words, error.code)


@dataclass(eq=False)
class _Direct:
    """A request at TWS, what it answered so far, and its waiter."""

    future: asyncio.Future[Any]
    items: list[Any] = field(default_factory=list)


class ReferenceDesk:
    """details, option_chain and search, each one TWS request answered within the reply budget."""

    def __init__(self, tws: TwsConnection, next_id: Callable[[], int], qualify: Qualify, queue_wait_max: float) -> None:
        self.tws, self._next_id, self._qualify, self.queue_wait_max = tws, next_id, qualify, queue_wait_max
        self._directs: dict[int, _Direct] = {}

    async def details(self, wanted: Contract, client: bytes) -> list[dict[str, Any]]:
        """Every contract TWS matches, with its details and trading hours as UTC sessions."""
        direct = await self._direct(lambda req_id: rq.ReqContractDetails(req_id, wanted), client)
        matches = [rows.details_row(d) for d in direct.items]
        if not matches:
            raise RequestError("unknown_instrument", "TWS returned no contract for this instrument")
        return matches

    async def option_chain(self, wanted: Contract, exchange: str, client: bytes) -> dict[str, Any]:
        under = await self._qualify(wanted, client, asyncio.get_running_loop().time() + self.queue_wait_max)
        direct = await self._direct(
            lambda req_id: rq.ReqSecDefOptParams(req_id, under.symbol, exchange if under.sec_type == "FUT" else "",
                                                 under.sec_type, under.con_id), client)  # fmt: skip
        chains = rows.chain_rows(direct.items)
        if exchange:
            chains = [c for c in chains if c["exchange"] == exchange]
        return {"ok": True, "instrument": instrument_key(under), "con_id": under.con_id, "chains": chains}

    async def search(self, pattern: str, client: bytes) -> dict[str, Any]:
        direct = await self._direct(lambda req_id: rq.ReqMatchingSymbols(req_id, pattern), client)
        return {"ok": True, "pattern": pattern, "matches": rows.search_rows(direct.future.result())}

    def on_event(self, event: ev.Event) -> bool:
        """An answer to one of these requests (True); ContractDetails of others are not ours (False)."""
        cls = type(event)
        if cls in (ev.SecurityDefinitionOptionParameter, ev.ContractDetails):
            direct = self._directs.get(event.req_id)  # type: ignore[union-attr]
            if direct is not None:
                direct.items.append(event)
            return direct is not None or cls is ev.SecurityDefinitionOptionParameter
        if cls in (ev.SecurityDefinitionOptionParameterEnd, ev.ContractDetailsEnd, ev.SymbolSamples):
            direct = self._directs.get(event.req_id)  # type: ignore[union-attr]
            if direct is not None and not direct.future.done():
                direct.future.set_result(event)
            return direct is not None or cls is not ev.ContractDetailsEnd
        return False

    def on_error(self, error: ev.Error) -> bool:
        direct = self._directs.get(error.req_id)
        if direct is None:
            return False
        if not (is_notice(error.code) or error.code in NOT_FATAL_FOR_A_LINE) and not direct.future.done():
            direct.future.set_exception(tws_refusal(error))
        return True

    def lost(self) -> None:
        for direct in self._directs.values():
            if not direct.future.done():
                direct.future.set_exception(RequestError("not_connected", "the TWS connection went away before "
                                                         "it answered; retry"))  # fmt: skip

    async def _direct(self, request: Callable[[int], rq.Request], client: bytes) -> _Direct:
        """One request in the client's lane: refused as busy if it waits in our own queue past
        queue_wait_max (TWS never sees it), as timeout if TWS is silent DIRECT_TIMEOUT after."""
        loop = asyncio.get_running_loop()
        req_id = self._next_id()
        direct = _Direct(loop.create_future())
        self._directs[req_id] = direct
        try:
            out = self.tws.send(request(req_id), lane=client)
            if out is None:
                raise RequestError("not_connected", "TWS is not connected right now; retry")
            if not out.written.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(out.written), self.queue_wait_max)
            if not out.written.done():
                behind = self.tws.ahead_of(out)
                if self.tws.withdraw(out):
                    raise RequestError("busy", f"the request waited {self.queue_wait_max:g} s in the bridge's own "
                                       f"queue to TWS behind {behind} requests; retry in a moment",
                                       extra={"queued_behind": behind})  # fmt: skip
            if not (out.written.done() and out.written.result()):
                raise RequestError("not_connected", "the TWS connection went away before the request was sent; retry")
            try:
                await asyncio.wait_for(asyncio.shield(direct.future), DIRECT_TIMEOUT)
            except TimeoutError:
                why = f"TWS did not answer within {DIRECT_TIMEOUT:.0f} s of being asked"
                raise RequestError("timeout", why) from None
            return direct
        finally:
            self._directs.pop(req_id, None)
            if direct.future.done() and not direct.future.cancelled():
                direct.future.exception()  # retrieved: an error set while nobody waited
