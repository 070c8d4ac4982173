"""Settings from defaults, an optional TOML file, environment variables and flags (flags win)."""

from __future__ import annotations

import argparse
import logging
import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_PUB = "tcp://127.0.0.1:5555"
DEFAULT_REP = "tcp://127.0.0.1:5556"
ENV_PREFIX = "TWSBRIDGE_"


@dataclass(frozen=True)
class Settings:
    tws_host: str = "127.0.0.1"
    tws_port: int = 7497
    client_id: int = 17
    pub: str = DEFAULT_PUB
    rep: str = DEFAULT_REP
    metrics: str = "127.0.0.1:9108"  # host:port, or "" for none
    simulate: bool = False
    lease_default: float = 30.0
    handshake_timeout: float = 5.0
    heartbeat: float = 2.0
    tws_timeout: float = 10.0
    shutdown_cancel_seconds: float = 5.0
    queue_wait_max: float = 1.0
    lookups_per_client: int = 32
    unknown_instrument_ttl: float = 600.0
    pub_hwm: int = 20_000  # messages per subscriber queued before ZeroMQ drops (docs/bus.md, Slow subscribers)
    curve_secret_key: str = ""  # the bridge's secret key file: CURVE on both sockets (docs/bus.md, Security)
    curve_clients: str = ""  # directory of allowed client public keys (*.key)
    allow_plaintext_remote: bool = False  # bind a non-loopback address without CURVE
    history_time_scale: float = 1.0  # a test aid: IB's historical pacing windows times this (docs/bus.md, History)
    log_level: str = "INFO"

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        if not self.metrics:
            return None
        return parse_host_port(self.metrics)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_log_level(text: str) -> str:
    """A logging level name, checked here so a typo is one line and not a traceback from logging."""
    level = str(text).strip().upper()
    if level not in LOG_LEVELS or not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"{text!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
    return level


def parse_port(text: str | int, allow_zero: bool = False) -> int:
    """A TCP port, 1..65535 (0 too where it means "pick a free one")."""
    try:
        port = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a port number") from None
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise ValueError(f"port {port} is outside {0 if allow_zero else 1}..65535")
    return port


def parse_host_port(text: str) -> tuple[str, int]:
    """`host:port` (or `:port`, meaning 127.0.0.1) for the metrics endpoint."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        raise ValueError(f"{text!r} is not host:port")
    return host or "127.0.0.1", parse_port(port)


def argparse_type(check: Any) -> Any:
    """Wrap a parse_* function so argparse reports its ValueError as a one-line usage error."""

    def convert(text: str) -> Any:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = check.__name__.removeprefix("parse_").replace("_", " ")
    return convert


_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = _TYPES[name]
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower()
            if word not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
                raise ValueError(word)  # "maybe" is a typo, not a quiet "no"
            return word in ("1", "true", "yes", "on")
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        article = "an" if kind == "int" else "a"
        raise SystemExit(f"tws-bridge: {source} sets {name} to {value!r}, which is not {article} {kind}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tws-bridge",
        description="Share one TWS/IB Gateway API connection over ZeroMQ (PUB for data, REQ/REP for subscriptions).",
        epilog=f"Every option can also come from the environment ({ENV_PREFIX}TWS_PORT, {ENV_PREFIX}PUB, ...) "
        "or a TOML file (--config); flags win over the environment, which wins over the file.",
    )
    p.add_argument("--config", help="TOML file with any of the settings below (keys as the long options, with _)")
    p.add_argument("--tws-host", help="TWS/Gateway host (default 127.0.0.1)")
    p.add_argument("--tws-port", type=int, help="TWS/Gateway API port: 7497 paper, 7496 live, 4002/4001 Gateway")
    p.add_argument("--client-id", type=int, help="API client id of the bridge (default 17)")
    p.add_argument("--pub", help=f"ZeroMQ endpoint the data PUB socket binds (default {DEFAULT_PUB})")
    p.add_argument("--rep", help=f"ZeroMQ endpoint the request socket binds (default {DEFAULT_REP})")
    p.add_argument("--metrics", help="host:port for the Prometheus endpoint, '' for none (default 127.0.0.1:9108)")
    p.add_argument(
        "--simulate", action="store_true", default=None, help="start the built-in TWS simulator and connect to it"
    )
    p.add_argument("--lease-default", type=float, help="lease in seconds when a subscribe names none (default 30)")
    p.add_argument(
        "--handshake-timeout",
        type=float,
        help="seconds TWS has to finish the handshake and send nextValidId before we retry (default 5)",
    )
    p.add_argument(
        "--heartbeat",
        type=float,
        help="seconds of silence from TWS before the bridge sends a heartbeat request (default 2)",
    )
    p.add_argument(
        "--tws-timeout",
        type=float,
        help="seconds of silence after which TWS is declared down and reconnected; 'stalled' at half (default 10)",
    )
    p.add_argument(
        "--shutdown-cancel-seconds",
        type=float,
        help="at most this long to cancel every TWS request at a paced rate when stopping, then close (default 5)",
    )
    p.add_argument(
        "--queue-wait-max",
        type=float,
        help="seconds a subscribe may wait in the bridge's own pacing queue before its reply says so (default 1)",
    )
    p.add_argument(
        "--lookups-per-client",
        type=int,
        help="contract lookups one client may have outstanding; more are refused as busy (default 32)",
    )
    p.add_argument(
        "--unknown-instrument-ttl",
        type=float,
        help="seconds an instrument TWS refused (error 200) is answered from memory, 0 for never (default 600)",
    )
    p.add_argument(
        "--pub-hwm",
        type=int,
        help="messages queued per subscriber that does not keep up, before ZeroMQ drops its messages "
        "(bounds the memory a stuck subscriber costs; default 20000)",
    )
    p.add_argument(
        "--curve-secret-key",
        metavar="FILE",
        help="the bridge's secret key file (python -m bridge.keys makes one): encrypt and authenticate both "
        "sockets with CURVE; needs --curve-clients",
    )
    p.add_argument("--curve-clients", metavar="DIR", help="directory of the client public keys (*.key) allowed in")
    p.add_argument(
        "--allow-plaintext-remote",
        action="store_const",
        const=True,
        help="bind a non-loopback address without CURVE (anyone who can reach it can subscribe; logged as a warning)",
    )
    p.add_argument(
        "--history-time-scale",
        type=float,
        metavar="F",
        help="TEST AID: multiply the windows of IB's historical pacing rules by F (0.01: ten minutes become six "
        "seconds), to match a simulator started with the same --history-time-scale; below 1 against a real TWS "
        "it causes pacing violations (default 1)",
    )
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING (default INFO)")
    return p


def load(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    args = parser().parse_args(argv)
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    config_path = args.config or env.get(ENV_PREFIX + "CONFIG")
    if config_path:
        try:
            data = tomllib.loads(Path(config_path).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SystemExit(f"tws-bridge: cannot read config file {config_path}: {exc}") from None
        unknown = sorted(set(data) - set(_TYPES))
        if unknown:
            raise SystemExit(f"tws-bridge: config file {config_path} has unknown keys {unknown}")
        values.update({k: _coerce(k, v, config_path) for k, v in data.items()})
    for name in _TYPES:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _coerce(name, raw, ENV_PREFIX + name.upper())
    for name in _TYPES:
        flag = getattr(args, name, None)
        if flag is not None:
            values[name] = flag
    settings = replace(Settings(), **values)
    if settings.pub_hwm < 1:  # ZeroMQ takes 0 as "no limit": a stuck subscriber could take all memory
        raise SystemExit(f"tws-bridge: pub_hwm is {settings.pub_hwm}; it must be at least 1 (default 20000)")
    return check(settings)


# Settings that must be above zero: a zero or negative timeout, pace or bound means nothing useful.
_POSITIVE = (
    "lease_default", "handshake_timeout", "heartbeat", "tws_timeout", "queue_wait_max", "lookups_per_client",
    "history_time_scale",
)  # fmt: skip
_NOT_NEGATIVE = ("client_id", "shutdown_cancel_seconds", "unknown_instrument_ttl")


def check(settings: Settings) -> Settings:
    """Refuse values that would only fail later, deep in a library, with a traceback: say which and why."""
    problems = []
    for name in _POSITIVE:
        if not getattr(settings, name) > 0:
            problems.append(f"{name} is {getattr(settings, name)}; it must be above 0")
    for name in _NOT_NEGATIVE:
        if not getattr(settings, name) >= 0:
            problems.append(f"{name} is {getattr(settings, name)}; it must be 0 or more")
    for name, parse in (("tws_port", parse_port), ("log_level", parse_log_level), ("metrics", parse_host_port)):
        value = getattr(settings, name)
        if name == "metrics" and not value:
            continue
        try:
            parse(value)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    if bool(settings.curve_secret_key) != bool(settings.curve_clients):
        problems.append("CURVE needs both --curve-secret-key and --curve-clients")
    if problems:
        raise SystemExit("tws-bridge: " + "; ".join(problems))
    return replace(settings, log_level=parse_log_level(settings.log_level))
