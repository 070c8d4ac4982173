"""The client end of a TWS API connection, sans-IO.

    conn = ClientConnection(client_id=7)
    sock.sendall(conn.initiate())
    while True:
        conn.receive_data(sock.recv(65536))
        for event in conn.events():
            if isinstance(event, Connected):
                sock.sendall(conn.send(StartApi(conn.client_id)))
            ...

`send` takes only the request types of `requests.py`; there is no other way out.
"""

from __future__ import annotations

from enum import Enum

from . import events as ev
from .decoder import Decoder
from .errors import ProtocolError
from .framing import MAX_FRAME, FrameReader
from .handshake import client_greeting, parse_server_hello
from .requests import Request, encode_request
from .versions import MAX_SUPPORTED, MIN_SUPPORTED


class ClientState(Enum):
    IDLE = "idle"
    AWAITING_HELLO = "awaiting server version"
    CONNECTED = "connected"
    FAILED = "failed"


class ClientConnection:
    def __init__(
        self,
        client_id: int = 0,
        min_version: int = MIN_SUPPORTED,
        max_version: int = MAX_SUPPORTED,
        connect_options: str = "",
        max_frame: int = MAX_FRAME,
    ) -> None:
        if not MIN_SUPPORTED <= min_version <= max_version:
            raise ValueError(
                f"version range v{min_version}..{max_version} is outside what we speak (from {MIN_SUPPORTED})"
            )
        self.client_id = client_id
        self.min_version = min_version
        self.max_version = max_version
        self.connect_options = connect_options
        self.state = ClientState.IDLE
        self.server_version = 0
        self.connection_time = ""
        self._frames = FrameReader(max_frame)
        self._decoder: Decoder | None = None

    def initiate(self) -> bytes:
        """The greeting to write first."""
        self.state = ClientState.AWAITING_HELLO
        return client_greeting(self.min_version, self.max_version, self.connect_options)

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes read from the socket; `events()` decodes them."""
        self._frames.feed(data)

    def events(self) -> list[ev.Event]:
        """Every event the buffered bytes complete, in order.

        Raises ProtocolError for a bad server greeting or a frame over the size limit; after
        that the connection is FAILED and should be closed. A malformed message inside a
        frame is a `MalformedMessage` event instead, and decoding goes on.
        """
        if self.state is ClientState.FAILED:
            raise ProtocolError("connection already failed; reconnect")
        try:
            payloads = self._frames.frames()
        except ProtocolError:
            self.state = ClientState.FAILED
            raise
        out: list[ev.Event] = []
        if not payloads:
            return out
        if self._decoder is None:
            if self.state is not ClientState.AWAITING_HELLO:
                self.state = ClientState.FAILED
                raise ProtocolError("data arrived before initiate(): the greeting was never sent")
            try:
                version, time = parse_server_hello(payloads[0], self.min_version, self.max_version)
            except ProtocolError:
                self.state = ClientState.FAILED
                raise
            self.server_version, self.connection_time = version, time
            self.state = ClientState.CONNECTED
            self._decoder = Decoder(version)
            out.append(ev.Connected(version, time))
            payloads = payloads[1:]
        self._decoder.decode_all(payloads, out)
        return out

    def send(self, request: Request) -> bytes:
        """The bytes of `request`, in the negotiated layout."""
        if self.state is not ClientState.CONNECTED:
            raise ProtocolError(f"cannot send {type(request).__name__} while {self.state.value}")
        return encode_request(request, self.server_version)
