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
from .ids import In
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
        self.api_started = False  # nextValidId seen: the API session is up
        self._started_prefix = b""  # how a nextValidId message starts, once the version is known

    def initiate(self) -> bytes:
        """The greeting to write first."""
        self.state = ClientState.AWAITING_HELLO
        return client_greeting(self.min_version, self.max_version, self.connect_options)

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes read from the socket; `events()` decodes them."""
        self._frames.feed(data)

    @property
    def decoder(self) -> Decoder | None:
        """The decoder for the negotiated server version, once the server has said it."""
        return self._decoder

    def events(self) -> list[ev.Event]:
        """Every event the buffered bytes complete, in order.

        Raises ProtocolError for a bad server greeting or a frame over the size limit; after
        that the connection is FAILED and should be closed. A malformed message inside a
        frame is a `MalformedMessage` event instead, and decoding goes on.
        """
        connected, payloads = self.messages()
        out: list[ev.Event] = [] if connected is None else [connected]
        if payloads:
            assert self._decoder is not None  # messages() returns payloads only after the greeting
            self._decoder.decode_all(payloads, out)
        return out

    def messages(self) -> tuple[ev.Connected | None, list[bytes]]:
        """What the buffered bytes complete, undecoded: the `Connected` event when the greeting is
        among them, and the payloads of the messages after it, for a caller that decodes them with
        `decoder` itself (the bridge decodes its commonest ticks straight into bus payloads).

        Raises as `events` does. Sets `api_started` once nextValidId has passed: TWS sends it
        when the API session is up (after startApi), and it is the one message that says so.
        """
        if self.state is ClientState.FAILED:
            raise ProtocolError("connection already failed; reconnect")
        try:
            payloads = self._frames.frames()
        except ProtocolError:
            self.state = ClientState.FAILED
            raise
        connected = None
        if payloads and self._decoder is None:
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
            ready = In.NEXT_VALID_ID
            self._started_prefix = ready.to_bytes(4, "big") if self._decoder.raw_int_ids else b"%d\0" % ready
            connected = ev.Connected(version, time)
            payloads = payloads[1:]
        if not self.api_started and payloads:
            self.api_started = any(p.startswith(self._started_prefix) for p in payloads)
        return connected, payloads

    def send(self, request: Request) -> bytes:
        """The bytes of `request`, in the negotiated layout."""
        if self.state is not ClientState.CONNECTED:
            raise ProtocolError(f"cannot send {type(request).__name__} while {self.state.value}")
        return encode_request(request, self.server_version)
