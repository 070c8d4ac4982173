"""Every program a user runs answers a bad flag, path, file, environment variable or config value with
one plain error line and a non-zero exit, never a Python traceback, and does so at once."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _files(tmp: Path) -> dict[str, str]:
    """Bad files to hand programs: not SQLite, not TOML, not UTF-8, a directory, a path nowhere."""
    (tmp / "notes.txt").write_text("these are not ticks\n" * 50)
    (tmp / "broken.toml").write_text("tws_port = \n")
    (tmp / "binary.toml").write_bytes(bytes(range(128, 256)))
    (tmp / "wrongtype.toml").write_text("tws_port = [1, 2]\n")
    (tmp / "unknown.toml").write_text("tws_prot = 7497\n")
    (tmp / "faults.json").write_text('{"not": "a list"}')
    return {
        "TXT": str(tmp / "notes.txt"),
        "BROKEN": str(tmp / "broken.toml"),
        "BINARY": str(tmp / "binary.toml"),
        "WRONGTYPE": str(tmp / "wrongtype.toml"),
        "UNKNOWN": str(tmp / "unknown.toml"),
        "FAULTS": str(tmp / "faults.json"),
        "DIR": str(tmp),
        "NOWHERE": str(tmp / "no" / "such" / "dir" / "file"),
    }


BRIDGE = ["-m", "bridge", "--metrics", ""]
LOCAL_BUS = ["-m", "bridge", "--pub", "tcp://127.0.0.1:{FREE}", "--rep", "tcp://127.0.0.1:{FREE2}"]
SIM = ["-m", "bridge.simulator"]
PRINTER = ["-m", "consumers.printer", "AAPL"]
RECORDER = ["-m", "consumers.recorder", "AAPL"]
BARS = ["-m", "consumers.bars", "AAPL"]

# (id, arguments, extra environment, words the error line must contain)
CASES = [
    ("bridge-log-level", [*BRIDGE, "--log-level", "LOUD"], {}, "log level"),
    ("bridge-env-log-level", BRIDGE, {"TWSBRIDGE_LOG_LEVEL": "chatty"}, "log level"),
    ("bridge-port-range", [*BRIDGE, "--tws-port", "99999"], {}, "65535"),
    ("bridge-port-word", [*BRIDGE, "--tws-port", "seven"], {}, "--tws-port"),
    ("bridge-env-port", BRIDGE, {"TWSBRIDGE_TWS_PORT": "seven"}, "TWSBRIDGE_TWS_PORT"),
    ("bridge-env-metrics", ["-m", "bridge"], {"TWSBRIDGE_METRICS": "9108"}, "host:port"),
    ("bridge-metrics-port", ["-m", "bridge", "--metrics", "127.0.0.1:http"], {}, "port"),
    ("bridge-env-heartbeat", BRIDGE, {"TWSBRIDGE_HEARTBEAT": "-2"}, "heartbeat"),
    ("bridge-env-hwm", BRIDGE, {"TWSBRIDGE_PUB_HWM": "0"}, "pub_hwm"),
    ("bridge-env-bool", BRIDGE, {"TWSBRIDGE_SIMULATE": "maybe"}, "TWSBRIDGE_SIMULATE"),
    ("bridge-pub-endpoint", [*BRIDGE, "--pub", "localhost:5555"], {}, "cannot bind"),
    ("bridge-metrics-taken", [*LOCAL_BUS, "--metrics", "127.0.0.1:{TAKEN}"], {}, "cannot serve metrics"),
    ("bridge-config-missing", [*BRIDGE, "--config", "{NOWHERE}"], {}, "config file"),
    ("bridge-env-config-missing", BRIDGE, {"TWSBRIDGE_CONFIG": "{NOWHERE}"}, "config file"),
    ("bridge-config-dir", [*BRIDGE, "--config", "{DIR}"], {}, "config file"),
    ("bridge-config-malformed", [*BRIDGE, "--config", "{BROKEN}"], {}, "config file"),
    ("bridge-config-binary", [*BRIDGE, "--config", "{BINARY}"], {}, "config file"),
    ("bridge-config-type", [*BRIDGE, "--config", "{WRONGTYPE}"], {}, "tws_port"),
    ("bridge-config-key", [*BRIDGE, "--config", "{UNKNOWN}"], {}, "tws_prot"),
    ("bridge-flag", [*BRIDGE, "--tws-prot", "7497"], {}, "unrecognized"),
    ("sim-log-level", [*SIM, "--log-level", "LOUD"], {}, "log level"),
    ("sim-port", [*SIM, "--port", "70000"], {}, "65535"),
    ("sim-port-taken", [*SIM, "--port", "{TAKEN}"], {}, "in use"),
    ("sim-control-port", [*SIM, "--port", "0", "--control", "-1"], {}, "--control"),
    ("sim-journal", [*SIM, "--port", "0", "--journal", "{NOWHERE}"], {}, "cannot start"),
    ("sim-faults-missing", [*SIM, "--faults", "{NOWHERE}"], {}, "fault script"),
    ("sim-faults-malformed", [*SIM, "--faults", "{FAULTS}"], {}, "fault script"),
    ("sim-rate", [*SIM, "--rate", "fast"], {}, "--rate"),
    ("sim-host", [*SIM, "--port", "0", "--host", "no.such.host.invalid"], {}, "cannot start"),
    ("control-port", ["-m", "bridge.simulator.control", "seven", "stall"], {}, "port"),
    ("control-nobody", ["-m", "bridge.simulator.control", "{FREE}", "stall"], {}, "cannot reach"),
    ("control-arg", ["-m", "bridge.simulator.control", "{FREE}", "stall", "seconds"], {}, "key=value"),
    ("demo-flag", ["-m", "bridge.demo", "--colour"], {}, "unrecognized"),
    ("printer-rep", [*PRINTER, "--rep", "localhost:5556"], {}, "cannot connect"),
    ("printer-env-pub", PRINTER, {"TWSBRIDGE_PUB": "5555"}, "cannot connect"),
    ("printer-timeout", [*PRINTER, "--timeout", "0"], {}, "--timeout"),
    ("printer-lease", [*PRINTER, "--lease", "soon"], {}, "--lease"),
    ("printer-seconds", [*PRINTER, "--seconds", "-1"], {}, "--seconds"),
    ("printer-kind", [*PRINTER, "--kind", "ticks"], {}, "--kind"),
    ("printer-nobody", [*PRINTER, "--rep", "tcp://127.0.0.1:{FREE}", "--timeout", "0.5"], {}, "tws-bridge running"),
    ("recorder-db-dir", [*RECORDER, "--db", "{DIR}"], {}, "cannot record"),
    ("recorder-db-nowhere", [*RECORDER, "--db", "{NOWHERE}"], {}, "cannot record"),
    ("recorder-db-not-sqlite", [*RECORDER, "--db", "{TXT}"], {}, "not a database"),
    ("recorder-batch", [*RECORDER, "--batch-rows", "0"], {}, "--batch-rows"),
    ("recorder-env-rep", RECORDER, {"TWSBRIDGE_REP": "nowhere"}, "cannot connect"),
    ("bars-seconds", [*BARS, "--seconds-per-bar", "0"], {}, "--seconds-per-bar"),
    ("bars-count", [*BARS, "--count", "many"], {}, "--count"),
    ("bars-env-rep", BARS, {"TWSBRIDGE_REP": "tcp://*"}, "cannot connect"),
]


@pytest.mark.parametrize(("args", "env", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_a_failure(tmp_path: Path, args: list[str], env: dict[str, str], words: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with socket.socket() as s, socket.socket() as s2:
            s.bind(("127.0.0.1", 0))
            s2.bind(("127.0.0.1", 0))
            free, free2 = s.getsockname()[1], s2.getsockname()[1]
        fill = {**_files(tmp_path), "TAKEN": str(taken.getsockname()[1]), "FREE": str(free), "FREE2": str(free2)}
        argv = [a.format(**fill) for a in args]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TWSBRIDGE_")}
        environ.update({k: v.format(**fill) for k, v in env.items()})
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, *argv], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=20
        )
        took = time.monotonic() - started
    err = done.stderr.strip()
    assert done.returncode != 0, f"{argv} exited 0; stderr: {err}"
    assert "Traceback" not in err, f"{argv} showed a traceback:\n{err}"
    last = err.splitlines()[-1] if err else ""
    assert words.lower() in last.lower(), f"{argv}: the last stderr line does not say {words!r}:\n{err}"
    assert len(last) < 300, f"{argv}: the error line is not short: {last!r}"
    # One error line, after argparse's usage lines or the program's own timestamped log lines at most.
    logged = re.compile(r"^(usage:| |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")
    assert all(logged.match(line) for line in err.splitlines()[:-1]), err
    assert took < 10, f"{argv} took {took:.1f} s to refuse bad input"
