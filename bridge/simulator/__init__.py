"""A TWS look-alike for first runs and tests: real IB clients cannot tell it from TWS.

It speaks the TWS API socket protocol through `bridge.protocol`'s server side, answers the
connect sequence and the account/order start-up requests with empty results, refuses orders
as a read-only TWS does, and streams a seeded random-walk market for a catalogue of a few
hundred instruments (`table.py`; `python -m bridge.simulator --list`).
"""

from .catalogue import CATALOGUE, Instrument, lookup
from .market import Market, Quote
from .server import Simulator
from .session import request_name
from .thread import SimulatorThread

__all__ = ["CATALOGUE", "Instrument", "Market", "Quote", "Simulator", "SimulatorThread", "lookup", "request_name"]
