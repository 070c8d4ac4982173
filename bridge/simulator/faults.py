"""Faults a real TWS produces, injected on demand or played on a timeline.

Each fault is real TCP behaviour, seen by every client as it would be from TWS: a closed
listening socket, a greeting never answered, a session that goes quiet with its socket open,
TWS's connectivity and farm notices with the data pausing behind them, broken frames. Tests
call `Simulator.inject(name, **args)`; operators use the control socket (`--control PORT` and
`python -m bridge.simulator.control`) or a script (`--faults FILE`): a JSON or TOML list of
`{at, fault, args}` played from the simulator's start. docs/simulator.md lists them all.

Everything random (garbage bytes) comes from the simulator's seed, so a script replays the
same faults with the same bytes at the same offsets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import struct
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.protocol import In, encode_raw, frame

from . import notices

if TYPE_CHECKING:
    from .server import Simulator
    from .session import Session

log = logging.getLogger("bridge.simulator")

MAX_SECONDS = 7 * 24 * 3600.0
FARMS = ("market", "historical", "secdef")


class FaultError(ValueError):
    """A fault we cannot carry out as asked; the text says why, for a person to read."""


@dataclass(frozen=True)
class Param:
    kind: type  # float, int, bool or str
    default: Any = None  # None: required
    choices: tuple[str, ...] = ()


_SECONDS = Param(float)
_CLIENT = Param(int, 0)  # 0: every client

# name -> (what it does, its parameters). The one table the API, the CLI and the docs read.
FAULTS: dict[str, tuple[str, dict[str, Param]]] = {
    "refuse": ("close the listening socket for `seconds` (connects are refused), then listen again",
               {"seconds": _SECONDS}),
    "close_listener": ("close the listening socket until `open_listener`", {}),
    "open_listener": ("listen again after `close_listener` or during `refuse`", {}),
    "restart": ("TWS's daily restart: drop every connection, refuse connects for `seconds`", {"seconds": _SECONDS}),
    "mute_handshake": ("accept TCP but never answer the greeting of clients that connect in the next `seconds`",
                       {"seconds": _SECONDS}),
    "withhold_ready": ("answer the greeting but never send nextValidId to sessions started in the next `seconds`",
                       {"seconds": _SECONDS}),
    "stall": ("send nothing and read nothing for `seconds`; every socket stays open", {"seconds": _SECONDS}),
    "drop": ("close client connections now, after `after_messages` more messages each, or after `after_seconds`; "
             "`reset` sends a TCP reset instead of a close",
             {"after_messages": Param(int, 0), "after_seconds": Param(float, 0.0), "reset": Param(bool, False),
              "client_id": _CLIENT}),
    "connectivity": ("1100, no data for `seconds`, then 1101 (`data_lost`: every stream is gone) or 1102 "
                     "(streams continue)", {"seconds": _SECONDS, "data_lost": Param(bool, False)}),
    "farm": ("a data farm breaks for `seconds` (2103/2105/2157) and recovers (2104/2106/2158); its data pauses",
             {"farm": Param(str, "market", FARMS), "seconds": _SECONDS}),
    "competing_session": ("10197 on every stream, and no market data, for `seconds`", {"seconds": _SECONDS}),
    "garbage_frame": ("a well-framed message of random bytes", {"client_id": _CLIENT}),
    "truncated_frame": ("a frame shorter than its length prefix says, then silence on that connection",
                        {"client_id": _CLIENT}),
    "overlong_length": ("a length prefix beyond the protocol's 16 MiB limit, then silence", {"client_id": _CLIENT}),
    "malformed_field": ("a tickPrice whose price is not a number, on a live request", {"client_id": _CLIENT}),
    "clear": ("end every timed fault now", {}),
}  # fmt: skip


def check_args(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Validated arguments with defaults filled in, or FaultError naming what is wrong."""
    if name not in FAULTS:
        raise FaultError(f"unknown fault {str(name)[:40]!r}; faults: {', '.join(FAULTS)}")
    params = FAULTS[name][1]
    unknown = sorted(set(args) - set(params))
    if unknown:
        allowed = ", ".join(params) or "none"
        raise FaultError(f"fault {name!r} takes no argument {str(unknown[0])[:40]!r} (arguments: {allowed})")
    out: dict[str, Any] = {}
    for key, param in params.items():
        if key not in args:
            if param.default is None:
                raise FaultError(f"fault {name!r} needs {key!r}")
            out[key] = param.default
            continue
        out[key] = _coerce(name, key, args[key], param)
    return out


def _coerce(name: str, key: str, value: Any, param: Param) -> Any:
    where = f"fault {name!r}: {key!r}"
    if param.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise FaultError(f"{where} is true or false")
    if param.kind is str:
        if not isinstance(value, str) or (param.choices and value not in param.choices):
            raise FaultError(f"{where} is one of {', '.join(param.choices)}")
        return value
    try:
        number = param.kind(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number != number or not 0 <= number <= MAX_SECONDS:
        raise FaultError(f"{where} is a number from 0 to {MAX_SECONDS:.0f}")
    if key == "seconds" and number <= 0:
        raise FaultError(f"{where} must be more than 0")
    return number


def load_script(source: str | Path | list[Any]) -> list[tuple[float, str, dict[str, Any]]]:
    """(at, fault, args) sorted by `at`, from a JSON/TOML file or an already-parsed list.

    JSON: `[{"at": 5, "fault": "stall", "args": {"seconds": 3}}, ...]`;
    TOML: `[[fault]]` tables with `at`, `fault` (the name) and an `args` table.
    """
    entries: Any = source
    if not isinstance(source, list):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
            entries = tomllib.loads(text).get("fault", []) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as exc:  # tomllib and json errors are ValueErrors
            raise FaultError(f"cannot read fault script {path}: {exc}") from None
    if not isinstance(entries, list):
        raise FaultError("a fault script is a list of {at, fault, args}")
    script = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("fault"), str):
            raise FaultError(f"fault script entry {i}: needs 'fault' (a name) and 'at' (seconds)")
        at = entry.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float) or not 0 <= at <= MAX_SECONDS:
            raise FaultError(f"fault script entry {i}: 'at' is seconds from the start, 0 to {MAX_SECONDS:.0f}")
        args = entry.get("args", {})
        if not isinstance(args, dict):
            raise FaultError(f"fault script entry {i}: 'args' is a map")
        try:
            script.append((float(at), entry["fault"], check_args(entry["fault"], args)))
        except FaultError as exc:
            raise FaultError(f"fault script entry {i}: {exc}") from None
    return sorted(script, key=lambda item: item[0])


class Faults:
    """What is currently wrong with the simulated TWS, and the timers that end it.

    Sessions and feeds read the flags (`data_paused` once per feed step, `stalled` per write);
    everything else happens when a fault starts or ends.
    """

    def __init__(self, sim: Simulator, seed: int) -> None:
        self.sim = sim
        self.rng = random.Random(f"faults:{seed}")
        self.stalled = False
        self.mute_handshake = False
        self.withhold_ready = False
        self.connectivity_lost = False
        self.competing = False
        self.broken_farms: set[str] = set()
        self.data_paused = False  # no market data goes out: stall, 1100, market farm, 10197
        self.held: list[tuple[Session, Any]] = []  # requests waiting for a broken farm
        self._resumed: asyncio.Event | None = None
        self._endings: dict[str, tuple[asyncio.TimerHandle, Callable[[], None]]] = {}
        self._script: asyncio.Task[None] | None = None

    # --- entry points -------------------------------------------------------------------------

    def inject(self, name: str, **args: Any) -> None:
        """Start fault `name` now (FaultError if the name or arguments are wrong)."""
        args = check_args(name, args)
        self.sim.journal_fault(name, args)
        log.warning("fault: %s %s", name, " ".join(f"{k}={v}" for k, v in args.items()))
        getattr(self, "_" + name)(**args)

    def play(self, script: Iterable[tuple[float, str, dict[str, Any]]]) -> None:
        """Play (at, fault, args) entries, `at` counted from now."""
        if self._script is not None:
            self._script.cancel()
        self._script = asyncio.get_running_loop().create_task(self._play(list(script)), name="fault script")

    async def _play(self, script: list[tuple[float, str, dict[str, Any]]]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for at, name, args in script:
            await asyncio.sleep(max(0.0, start + at - loop.time()))
            self.inject(name, **args)

    def stop(self) -> None:
        if self._script is not None:
            self._script.cancel()
        for handle, _ in self._endings.values():
            handle.cancel()
        self._endings.clear()
        if self._resumed is not None:
            self._resumed.set()

    async def resumed(self) -> None:
        """Wait out a stall (sessions call this before handling what they read)."""
        while self.stalled:
            if self._resumed is None:
                self._resumed = asyncio.Event()
            await self._resumed.wait()

    # --- timing ----------------------------------------------------------------------------------

    def _for(self, key: str, seconds: float, end: Callable[[], None]) -> None:
        """Run `end` after `seconds`; a second fault of the same key restarts the clock."""
        previous = self._endings.pop(key, None)
        if previous is not None:
            previous[0].cancel()
        handle = asyncio.get_running_loop().call_later(seconds, self._end, key)
        self._endings[key] = (handle, end)

    def _end(self, key: str) -> None:
        handle, end = self._endings.pop(key)
        handle.cancel()
        log.warning("fault over: %s", key)
        self.sim.journal_fault("end", {"of": key})
        end()

    def _update(self) -> None:
        self.data_paused = self.stalled or self.connectivity_lost or self.competing or "market" in self.broken_farms

    def _sessions(self, client_id: int = 0) -> list[Session]:
        """Started sessions (startApi seen), or the one of `client_id`."""
        return [s for s in list(self.sim.sessions) if s.registered and (not client_id or s.client_id == client_id)]

    def _notify(self, code_and_text: tuple[int, str]) -> None:
        for session in self._sessions():
            session.error(notices.NO_VALID_ID, code_and_text)

    # --- the faults --------------------------------------------------------------------------------

    def _clear(self) -> None:
        for key in list(self._endings):
            self._end(key)

    def _refuse(self, seconds: float) -> None:
        self.sim.close_listener()
        self._for("refuse", seconds, self.sim.open_listener)

    def _close_listener(self) -> None:
        self.sim.close_listener()

    def _open_listener(self) -> None:
        self._endings.pop("refuse", (None, None))
        self.sim.open_listener()

    def _restart(self, seconds: float) -> None:
        self.sim.close_listener()
        for session in list(self.sim.sessions):
            session.close("TWS restarting")
        self._for("refuse", seconds, self.sim.open_listener)

    def _mute_handshake(self, seconds: float) -> None:
        self.mute_handshake = True
        self._for("mute_handshake", seconds, lambda: setattr(self, "mute_handshake", False))

    def _withhold_ready(self, seconds: float) -> None:
        self.withhold_ready = True
        self._for("withhold_ready", seconds, lambda: setattr(self, "withhold_ready", False))

    def _stall(self, seconds: float) -> None:
        self.stalled = True
        if self._resumed is not None:
            self._resumed.clear()
        self._update()
        self._for("stall", seconds, self._unstall)

    def _unstall(self) -> None:
        self.stalled = False
        self._update()
        if self._resumed is not None:
            self._resumed.set()

    def _drop(self, after_messages: int, after_seconds: float, reset: bool, client_id: int) -> None:
        if after_seconds:
            asyncio.get_running_loop().call_later(after_seconds, self._drop, after_messages, 0.0, reset, client_id)
            return
        for session in self._sessions(client_id):
            if after_messages:
                session.drop_after(after_messages, reset)
            else:
                session.hang_up(reset, "fault: drop")

    def _connectivity(self, seconds: float, data_lost: bool) -> None:
        self.connectivity_lost = True
        self._update()
        self._notify(notices.CONNECTIVITY_LOST)
        self._for("connectivity", seconds, lambda: self._connectivity_back(data_lost))

    def _connectivity_back(self, data_lost: bool) -> None:
        self.connectivity_lost = False
        self._update()
        if data_lost:
            for session in self._sessions():
                session.drop_streams()
        self._notify(notices.RESTORED_DATA_LOST if data_lost else notices.RESTORED_DATA_KEPT)

    def _farm(self, farm: str, seconds: float) -> None:
        self.broken_farms.add(farm)
        self._update()
        self._notify(notices.FARM_BROKEN[farm])
        self._for(f"farm {farm}", seconds, lambda: self._farm_back(farm))

    def _farm_back(self, farm: str) -> None:
        self.broken_farms.discard(farm)
        self._update()
        self._notify(notices.FARM_OK[farm])
        held, self.held = self.held, []
        for session, request in held:
            if session.closed:
                continue
            if notices.farm_of(request) in self.broken_farms:
                self.held.append((session, request))
            else:
                session.answer(request)

    def _competing_session(self, seconds: float) -> None:
        self.competing = True
        self._update()
        for session in self._sessions():
            for req_id in session.stream_req_ids():
                session.error(req_id, notices.COMPETING_SESSION)
        self._for("competing_session", seconds, self._competing_over)

    def _competing_over(self) -> None:
        self.competing = False
        self._update()

    def _garbage_frame(self, client_id: int) -> None:
        # A leading 0xFF is no message id in any version, so a client can only skip it.
        payload = b"\xff" + self.rng.randbytes(self.rng.randint(8, 64))
        for session in self._sessions(client_id):
            session.send_bytes(frame(payload))

    def _truncated_frame(self, client_id: int) -> None:
        for session in self._sessions(client_id):
            session.send_bytes(struct.pack(">I", 200) + b"1\x006\x00")
            session.go_silent("fault: truncated frame")

    def _overlong_length(self, client_id: int) -> None:
        for session in self._sessions(client_id):
            session.send_bytes(struct.pack(">I", 0x7FFFFFF0) + self.rng.randbytes(16))
            session.go_silent("fault: over-long length prefix")

    def _malformed_field(self, client_id: int) -> None:
        for session in self._sessions(client_id):
            req_ids = session.stream_req_ids("mkt") or [notices.NO_VALID_ID]
            fields = [6, req_ids[0], 1, "1.2.3", "100", 0]  # tickPrice: version, reqId, tickType, price, ...
            session.send_bytes(encode_raw(In.TICK_PRICE, fields, session.conn.server_version))
