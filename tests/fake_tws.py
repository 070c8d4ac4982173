"""A scriptable TWS for fault tests: real TCP, the server side of our protocol layer, and hooks
that answer each request the way a test needs (errors TWS sends, malformed bytes, hang-ups)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from bridge.protocol import ClientHello, Contract, ServerConnection, frame
from bridge.protocol import events as ev
from bridge.protocol import requests as rq

Reply = Callable[["FakeTws", object], list[bytes]]


class FakeTws:
    def __init__(self, on_request: Callable[[FakeTws, object], list[bytes]] | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.on_request = on_request or (lambda tws, r: [])
        self.requests: list[object] = []
        self.request_times: list[tuple[int, float]] = []  # (connection number, time.monotonic()) of each
        self.connections = 0
        self.conn: ServerConnection | None = None
        self.sock: socket.socket | None = None
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop:
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by close()
            self.connections += 1
            self.sock, self.conn = sock, ServerConnection()
            sock.settimeout(0.2)
            with contextlib.suppress(OSError):
                self._session(sock, self.conn)
            sock.close()

    def _session(self, sock: socket.socket, conn: ServerConnection) -> None:
        while not self._stop:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            for item in conn.receive_data(data):
                if isinstance(item, ClientHello):
                    sock.sendall(conn.accept(item, 200, time.strftime("%Y%m%d %H:%M:%S UTC")) or b"")
                    continue
                self.requests.append(item)
                self.request_times.append((self.connections, time.monotonic()))
                if isinstance(item, rq.StartApi):
                    sock.sendall(conn.send(ev.NextValidId(1)) + conn.send(ev.ManagedAccounts(("DU1",))))
                elif isinstance(item, rq.ReqContractDetails):
                    sock.sendall(self.describe(item))
                for chunk in self.on_request(self, item):
                    sock.sendall(chunk)

    def describe(self, request: rq.ReqContractDetails) -> bytes:
        assert self.conn is not None
        c = request.contract
        known = Contract(c.symbol, c.sec_type, c.exchange, c.currency, con_id=1000 + len(self.requests))
        return self.conn.send(ev.ContractDetails(request.req_id, known)) + self.conn.send(
            ev.ContractDetailsEnd(request.req_id)
        )

    def send(self, *events: ev.Event) -> list[bytes]:
        assert self.conn is not None
        return [self.conn.send(e) for e in events]

    def raw(self, payload: bytes) -> list[bytes]:
        return [frame(payload)]

    def hang_up(self) -> None:
        if self.sock is not None:
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop = True
        self.listener.close()


class TickPump:
    """`FakeTws(pump.on_request)`: streams tickPrice frames for the first reqMktData at `rate`
    messages a second, in batches, until `stop` is set (benchmarks, slow-subscriber tests)."""

    BATCH = 100

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.stop = threading.Event()

    def on_request(self, tws: FakeTws, request: object) -> list[bytes]:
        if isinstance(request, rq.ReqMktData):
            threading.Thread(target=self._pump, args=(tws, request.req_id), daemon=True).start()
        return []

    def _pump(self, tws: FakeTws, req_id: int) -> None:
        ticks = (ev.TickPrice(req_id, 1 + i % 2, 100 + i / 100, 5.0, 0) for i in range(self.BATCH))
        frames = b"".join(tws.send(*ticks))
        interval = self.BATCH / self.rate
        due = time.monotonic()
        with contextlib.suppress(OSError):
            while not self.stop.is_set() and tws.sock is not None:
                tws.sock.sendall(frames)
                due += interval
                time.sleep(max(0.0, due - time.monotonic()))
