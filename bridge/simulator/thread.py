"""The simulator on a background thread, for synchronous code (tests, the official client).

with SimulatorThread(rate=50, bar_seconds=0.2) as sim:
    app.connect("127.0.0.1", sim.port, clientId=1)
    ...
    assert any(name == "ReqMktData" for _, name in sim.request_names())
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from .server import Simulator
from .session import request_name


class SimulatorThread:
    """Runs a `Simulator` on its own event loop in a daemon thread; a context manager."""

    def __init__(self, start_timeout: float = 10.0, **options: Any) -> None:
        self.simulator = Simulator(**options)
        self._start_timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._failure: BaseException | None = None

    @property
    def port(self) -> int:
        return self.simulator.port

    @property
    def requests(self) -> list[tuple[int | None, Any]]:
        """A copy of (client_id, request) for every request received so far."""
        return list(self.simulator.requests)

    def request_names(self) -> list[tuple[int | None, str]]:
        """(client_id, 'ReqMktData'/'PlaceOrder'/...) for every request received so far."""
        return [(client_id, request_name(r)) for client_id, r in self.requests]

    def counters(self) -> dict[str, int]:
        """The simulator's counters (history requests, pacing violations), read on its loop."""
        if self._loop is None:
            raise RuntimeError("the simulator is not running")

        async def read() -> dict[str, int]:
            return self.simulator.counters()

        return asyncio.run_coroutine_threadsafe(read(), self._loop).result(5)

    def inject(self, name: str, **args: Any) -> None:
        """Start a fault on the simulator's loop (faults.FAULTS lists them); its FaultError is raised here."""
        if self._loop is None:
            raise RuntimeError("the simulator is not running")

        async def inject() -> None:
            self.simulator.inject(name, **args)

        asyncio.run_coroutine_threadsafe(inject(), self._loop).result(5)

    def start(self) -> SimulatorThread:
        self._thread = threading.Thread(target=self._main, name="tws-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise TimeoutError("the simulator did not start in time")
        if self._failure is not None:
            raise RuntimeError("the simulator failed to start") from self._failure
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stopped is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            await self.simulator.start()
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await self.simulator.stop()
