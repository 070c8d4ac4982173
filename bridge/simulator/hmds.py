"""One connection's history and option-chain requests, answered as TWS's HMDS and sec-def farms do.

The session dispatches here; the data comes from history.py, the rules from history_pacing.py and
history_spec.py. Errors a client sees, in TWS's words:
- 162 "Historical Market Data Service error message:HMDS query returned no data: AAPL@SMART Trades"
  (nothing to show), "...:Historical data request pacing violation" (pacing), "...:API historical
  data query cancelled: N" (a keepUpToDate stream cancelled);
- 321 "Error validating request.-'bK' : cause - Historical data bar size setting is invalid. ..."
  and the other 321s of history_spec.py;
- 366 "No historical data query found for ticker id:N" (cancelling what is not running).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from bridge.protocol.server import historical_data_answer

from . import notices
from .catalogue import CATALOGUE, Instrument, by_con_id, lookup
from .history import NoData
from .history_spec import (
    KIND_WORDS,
    TICK_KINDS,
    BadRequest,
    check_bar_request,
    format_head,
    format_span_time,
    invalid,
    parse_time,
)

if TYPE_CHECKING:
    from .market import Quote
    from .session import Session

log = logging.getLogger("bridge.simulator")

NO_QUERY = 366  # "No historical data query found for ticker id:N"


def no_data(inst: Instrument, what: str) -> tuple[int, str]:
    c = inst.contract
    name = c.local_symbol if c.sec_type in ("CASH", "FUT", "OPT") else c.symbol
    return 162, f"Historical Market Data Service error message:HMDS query returned no data: {name}@{c.exchange} " + (
        KIND_WORDS.get(what, what.title())
    )


def cancelled(req_id: int) -> tuple[int, str]:
    return 162, f"Historical Market Data Service error message:API historical data query cancelled: {req_id}"


class HistoryService:
    """reqHistoricalData (and keepUpToDate), reqHeadTimestamp, reqHistoricalTicks, reqSecDefOptParams."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sim = session.sim

    # --- pacing ------------------------------------------------------------------------------------

    def _paced(self, req_id: int, request: object, inst: Instrument, what: str) -> bool:
        """Count the request against IB's pacing; False (and error 162) when it breaks a rule."""
        identity = (type(request).__name__, inst.con_id, *request[2:])  # type: ignore[index]
        burst = (inst.con_id, request.contract.exchange.upper(), what.upper())  # type: ignore[attr-defined]
        refusal = self.sim.history_pacing.admit(identity, burst, what, self.sim.history_streams(), time.time())
        if refusal is None:
            return True
        log.warning("%r: history request %d refused: pacing rule %s", self.session, req_id, refusal.rule)
        self.sim.journal_event({"violation": refusal.rule, "req_id": req_id, "client_id": self.session.client_id})
        self.session.error(req_id, refusal.code_and_text)
        return False

    def _instrument(self, req_id: int, contract: ev.Contract) -> Instrument | None:
        return self.session._resolve(req_id, contract)

    # --- bars --------------------------------------------------------------------------------------

    def req_historical_data(self, r: rq.ReqHistoricalData) -> None:
        s = self.session
        if r.keep_up_to_date and s._duplicate("hist", r.req_id):
            return
        inst = self._instrument(r.req_id, r.contract)
        if inst is None:
            return
        now = time.time()
        try:
            req = check_bar_request(
                r.end_date_time, r.duration, r.bar_size, r.what_to_show, r.use_rth, r.format_date, r.keep_up_to_date,
                now,
            )  # fmt: skip
        except BadRequest as exc:
            s.error(r.req_id, exc.code_and_text)
            return
        if not self._paced(r.req_id, r, inst, req.what):
            return
        history = self.sim.history
        try:
            bars = history.bars(inst, req)
        except NoData:
            s.error(r.req_id, no_data(inst, req.what))
            return
        start, end = format_span_time(req.start, inst), format_span_time(req.end, inst)
        for event in historical_data_answer(r.req_id, bars, start, end, s.conn.server_version):
            s.send(event)
        if not req.keep_up_to_date:
            return
        last_sent = [bars[-1]]

        def listener(old: Quote, new: Quote) -> None:
            bar = history.forming(inst, req, new.time)
            if bar is not None and bar != last_sent[0]:
                last_sent[0] = bar
                s.send(ev.HistoricalDataUpdate(r.req_id, bar))

        s._subscribe(s.new_subscription("hist", r.req_id, inst), listener)

    def cancel_historical_data(self, r: rq.CancelHistoricalData) -> None:
        if self.session._cancel("hist", r.req_id):
            self.session.error(r.req_id, cancelled(r.req_id))
        else:
            self.session.error(r.req_id, (NO_QUERY, f"No historical data query found for ticker id:{r.req_id}"))

    # --- head timestamp and ticks ------------------------------------------------------------------

    def req_head_timestamp(self, r: rq.ReqHeadTimestamp) -> None:
        inst = self._instrument(r.req_id, r.contract)
        if inst is None or not self._paced(r.req_id, r, inst, r.what_to_show):
            return
        self.session.send(ev.HeadTimestamp(r.req_id, format_head(self.sim.history.head(inst), r.format_date)))

    def req_historical_ticks(self, r: rq.ReqHistoricalTicks) -> None:
        s = self.session
        inst = self._instrument(r.req_id, r.contract)
        if inst is None:
            return
        what = r.what_to_show.strip().upper()
        now = time.time()
        try:
            if what not in TICK_KINDS:
                raise invalid(f"whatToShow '{r.what_to_show}' is not one of BID_ASK, MIDPOINT, TRADES for ticks.")
            if bool(r.start_date_time.strip()) == bool(r.end_date_time.strip()):
                raise invalid("Exactly one of start time and end time has to be defined.")
            if not 0 < r.number_of_ticks <= 1000:
                raise invalid(f"Number of ticks {r.number_of_ticks} is invalid: 1 to 1000.")
            start = parse_time(r.start_date_time, now) if r.start_date_time.strip() else None
            end = parse_time(r.end_date_time, now) if r.end_date_time.strip() else None
        except BadRequest as exc:
            s.error(r.req_id, exc.code_and_text)
            return
        if not self._paced(r.req_id, r, inst, what):
            return
        try:
            ticks = self.sim.history.ticks(inst, what, start, end, r.number_of_ticks, r.use_rth, now)
        except NoData:
            s.error(r.req_id, no_data(inst, what))
            return
        kind = {"TRADES": ev.HistoricalTicksLast, "BID_ASK": ev.HistoricalTicksBidAsk}.get(what, ev.HistoricalTicks)
        s.send(kind(r.req_id, tuple(ticks), True))  # type: ignore[arg-type]

    # --- option chains -------------------------------------------------------------------------------

    def req_sec_def_opt_params(self, r: rq.ReqSecDefOptParams) -> None:
        """One row per exchange the chain trades on, with the catalogue's expiries and strikes."""
        s = self.session
        under = by_con_id(r.underlying_con_id) if r.underlying_con_id else None
        if under is None:
            found = lookup(ev.Contract(r.underlying_symbol, r.underlying_sec_type))
            under = found[0] if len(found) == 1 else None
        if under is None:
            s.error(r.req_id, notices.NO_SECURITY_DEFINITION)
            return
        options = [i for i in CATALOGUE if i.under_con_id == under.con_id and i.contract.sec_type == "OPT"]
        chains: dict[tuple[str, str], list[Instrument]] = {}
        for opt in options:
            chains.setdefault((opt.contract.trading_class, opt.contract.multiplier), []).append(opt)
        wanted = r.fut_fop_exchange.strip().upper()
        for (trading_class, multiplier), members in chains.items():
            expiries = tuple(sorted({o.contract.last_trade_date_or_contract_month for o in members}))
            strikes = tuple(sorted({o.contract.strike or 0.0 for o in members}))
            for exchange in members[0].valid_exchanges.split(","):
                if not wanted or wanted == exchange:
                    s.send(ev.SecurityDefinitionOptionParameter(
                        r.req_id, exchange, under.con_id, trading_class, multiplier, expiries, strikes,
                    ))  # fmt: skip
        s.send(ev.SecurityDefinitionOptionParameterEnd(r.req_id))
