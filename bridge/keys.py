"""`python -m bridge.keys DIR NAME...`: CURVE key pairs for the bus (docs/bus.md, Security).

Each NAME gets `NAME.key` (the public key: hand it out) and `NAME.key_secret` (keep it; mode
0600). The bridge takes its own secret file (--curve-secret-key) and a directory of the public
keys of the clients it lets in (--curve-clients); a client takes its secret file and the bridge's
public key file.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .curve import generate

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bridge.keys", description=__doc__.split("\n\n")[0])
    p.add_argument("directory", type=Path, help="where to write the key files")
    p.add_argument("names", nargs="+", metavar="NAME", help="e.g. bridge, research-box, risk")
    args = p.parse_args(argv)
    for name in args.names:
        if not _NAME.fullmatch(name):
            p.error(f"a key name is letters, digits, '.', '_' and '-' (up to 64), not {name[:64]!r}")
        target = args.directory / f"{name}.key_secret"
        if target.exists():
            p.error(f"{target} exists; not overwriting a key")
    try:
        for name in args.names:
            public, secret = generate(args.directory, name)
            print(f"{name}: public {public}, secret {secret}")
    except OSError as exc:
        print(f"python -m bridge.keys: cannot write keys in {args.directory}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
