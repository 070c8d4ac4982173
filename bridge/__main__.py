"""`python -m bridge` / `tws-bridge`: run the bridge until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import replace

from . import config, sdnotify
from .curve import CurveError
from .metrics import Metrics
from .service import Bridge

log = logging.getLogger("tws-bridge")


async def serve(settings: config.Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    log.info("event loop: %s.%s", type(loop).__module__, type(loop).__qualname__)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    simulator = None
    if settings.simulate:
        from .simulator import Simulator

        simulator = Simulator(host="127.0.0.1", port=0)
        await simulator.start()
        settings = replace(settings, tws_host="127.0.0.1", tws_port=simulator.port)
        log.info("--simulate: built-in TWS simulator listening on 127.0.0.1:%d", simulator.port)
    metrics = Metrics()
    bridge = Bridge(settings, metrics)
    try:
        bridge.bind()
    except CurveError as exc:
        raise SystemExit(f"tws-bridge: {exc}") from None
    except Exception as exc:  # zmq.ZMQError for a taken or malformed endpoint
        raise SystemExit(f"tws-bridge: cannot bind {settings.pub} / {settings.rep}: {exc}") from None
    address = settings.metrics_address
    if address is not None:
        try:
            metrics.serve(*address)
        except OSError as exc:
            raise SystemExit(f"tws-bridge: cannot serve metrics on {settings.metrics}: {exc}") from None
        log.info("Prometheus metrics on http://%s:%d/metrics", *address)
    log.info("connecting to TWS at %s:%d as client id %d", settings.tws_host, settings.tws_port, settings.client_id)
    # Serving from here on: sockets bound, metrics up; requests are answered whether TWS is up or not.
    sdnotify.notify("READY=1")
    interval = sdnotify.watchdog_seconds()
    watchdog = asyncio.create_task(sdnotify.keep_watchdog_fed(interval)) if interval else None
    await bridge.run(stop)
    if watchdog is not None:
        watchdog.cancel()
    if simulator is not None:
        await simulator.stop()
    log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    settings = config.load(argv)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve(settings))


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a dependency on Linux and macOS): each wake-up for a
    TWS read costs about half of asyncio's own loop's, which is most of the bridge's CPU per message at
    the rates TWS sends (bench/e2e.py). TWSBRIDGE_EVENT_LOOP=asyncio keeps the standard one."""
    if os.environ.get("TWSBRIDGE_EVENT_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    main()
