"""The TWS API wire protocol, sans-IO: bytes in, typed events out; requests in, bytes out.

No sockets, no asyncio, no zmq here, and nothing imported from the rest of `bridge`.
See docs/protocol.md.
"""

from . import events, requests
from .client import ClientConnection, ClientState
from .decoder import Decoder
from .errors import ProtocolError
from .events import Contract, Event
from .framing import MAX_FRAME, FrameReader, frame
from .ids import In, MarketDataType, Out, TickByTickType, TickType
from .server import ClientHello, MalformedRequest, OtherRequest, ServerConnection, encode_event, encode_raw
from .versions import MAX_SUPPORTED, MIN_SUPPORTED

__all__ = [
    "MAX_FRAME",
    "MAX_SUPPORTED",
    "MIN_SUPPORTED",
    "ClientConnection",
    "ClientHello",
    "ClientState",
    "Contract",
    "Decoder",
    "Event",
    "FrameReader",
    "In",
    "MalformedRequest",
    "MarketDataType",
    "OtherRequest",
    "Out",
    "ProtocolError",
    "ServerConnection",
    "TickByTickType",
    "TickType",
    "encode_event",
    "encode_raw",
    "events",
    "frame",
    "requests",
]
