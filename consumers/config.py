"""Where the bridge listens by default: the one place consumers/ keeps these endpoints.

They match the bridge's own defaults (docs/bus.md); the environment variables let a whole shell
point every consumer at another bridge without repeating --pub/--rep.
"""

from __future__ import annotations

import os

DEFAULT_PUB = "tcp://127.0.0.1:5555"
DEFAULT_REP = "tcp://127.0.0.1:5556"
PUB_ENV = "TWSBRIDGE_PUB"
REP_ENV = "TWSBRIDGE_REP"


def default_pub() -> str:
    """The data (PUB) endpoint: $TWSBRIDGE_PUB if set, else the bridge's default."""
    return os.environ.get(PUB_ENV) or DEFAULT_PUB


def default_rep() -> str:
    """The request (REP) endpoint: $TWSBRIDGE_REP if set, else the bridge's default."""
    return os.environ.get(REP_ENV) or DEFAULT_REP
