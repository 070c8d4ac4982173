"""A blocking test client for the simulator: our ClientConnection over a real socket."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable

from bridge.protocol import ClientConnection
from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from bridge.protocol.requests import message


class Client:
    """A blocking test client: our ClientConnection over a socket, every wait bounded."""

    def __init__(self, port: int, client_id: int = 1, max_version: int = 200, start: bool = True) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.conn = ClientConnection(client_id, max_version=max_version)
        self.seen: list[ev.Event] = []  # events read but not yet consumed by a wait
        self.closed = False
        self.reset = False  # the server closed with a TCP RST
        self.sock.sendall(self.conn.initiate())
        if start:
            connected = self.wait_for(lambda e: isinstance(e, ev.Connected))
            assert isinstance(connected, ev.Connected)
            self.send(rq.StartApi(client_id))

    @property
    def version(self) -> int:
        return self.conn.server_version

    def send(self, request: rq.Request) -> None:
        self.sock.sendall(self.conn.send(request))

    def send_raw(self, msg_id: int, fields: list[object]) -> None:
        """A request we have no type for (orders, positions...), as the official client frames it."""
        self.sock.sendall(message(msg_id, fields, self.version))

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.closed = self.reset = True
            return
        if not data:
            self.closed = True
            return
        self.conn.receive_data(data)
        self.seen += self.conn.events()

    def wait_for(self, match: Callable[[ev.Event], bool], timeout: float = 5.0) -> ev.Event:
        """The first unconsumed event that matches (events before it stay unconsumed)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.seen):
                if match(event):
                    del self.seen[i]
                    return event
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"no matching event within {timeout}s; saw {self.seen[-10:]}")
            self._read(deadline - time.monotonic())

    def collect(self, seconds: float) -> list[ev.Event]:
        """Everything that arrives in the next `seconds`, plus what was already waiting."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.closed:
            self._read(deadline - time.monotonic())
        out, self.seen = self.seen, []
        return out

    def wait_closed(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._read(deadline - time.monotonic())
        return self.closed

    def close(self) -> None:
        self.sock.close()


def error_with(code: int, req_id: int | None = None) -> Callable[[ev.Event], bool]:
    return lambda e: isinstance(e, ev.Error) and e.code == code and (req_id is None or e.req_id == req_id)


def of(kind: type, req_id: int | None = None) -> Callable[[ev.Event], bool]:
    return lambda e: isinstance(e, kind) and (req_id is None or getattr(e, "req_id", None) == req_id)
