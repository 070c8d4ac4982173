"""CURVE on the bus: who may connect once the bus leaves this machine.

Off by default: the bus binds loopback, where anyone who can connect already runs on the
machine. To reach consumers on other hosts the bridge takes a server key pair and a directory of
allowed client public keys; ZeroMQ encrypts both sockets and pyzmq's own ZAP authenticator
(`zmq.auth`, in a thread of its own) admits only those keys. Key files are ZeroMQ's certificate
format (`zmq.auth.create_certificates`), which `python -m bridge.keys` writes.

Binding a non-loopback address without CURVE is refused unless asked for explicitly.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger("tws-bridge")


class CurveError(Exception):
    """A key file or directory that cannot be used; the message says which and why."""


def is_local(endpoint: str) -> bool:
    """True for endpoints only this machine can reach: loopback TCP, ipc, inproc (and malformed ones,
    which the bind refuses with its own words)."""
    transport, sep, rest = endpoint.partition("://")
    if not sep or transport in ("ipc", "inproc"):
        return True
    host = rest.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # an interface name or a host name: reachable from elsewhere, as far as we know
        return False


def load_keys(path: Path, need_secret: bool) -> tuple[bytes, bytes | None]:
    """(public, secret) from a ZeroMQ certificate file; CurveError if unreadable or lacking the secret."""
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise CurveError(f"cannot read the key file {path}: {exc}") from None
    if need_secret and not secret:
        raise CurveError(f"{path} holds a public key only; give the secret key file (NAME.key_secret)")
    return public, secret


def client_options(server_key: str | Path, client_key: str | Path) -> dict[int, bytes]:
    """Socket options that make a client socket speak CURVE to the bridge: the bridge's public key file
    and this client's secret key file (CurveError when either cannot be used)."""
    server_public, _ = load_keys(Path(server_key), need_secret=False)
    public, secret = load_keys(Path(client_key), need_secret=True)
    assert secret is not None
    return {zmq.CURVE_SERVERKEY: server_public, zmq.CURVE_PUBLICKEY: public, zmq.CURVE_SECRETKEY: secret}


@dataclass
class BusSecurity:
    """The server side: keys on the sockets and the authenticator that checks clients' keys."""

    public: bytes
    secret: bytes
    clients: Path
    _auth: ThreadAuthenticator | None = None

    @classmethod
    def from_files(cls, secret_file: str, clients_dir: str) -> BusSecurity:
        public, secret = load_keys(Path(secret_file), need_secret=True)
        clients = Path(clients_dir)
        if not clients.is_dir():
            raise CurveError(f"the allowed client keys directory {clients} does not exist")
        if not list(clients.glob("*.key")):
            log.warning("no client public keys (*.key) in %s: no consumer can connect", clients)
        assert secret is not None
        return cls(public, secret, clients)

    def start(self, ctx: zmq.Context, sockets: list[zmq.Socket]) -> None:
        """Run the ZAP authenticator for `ctx` and make `sockets` CURVE servers (before they bind)."""
        self._auth = ThreadAuthenticator(ctx, log=logging.getLogger("tws-bridge.zap"))
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(self.clients))
        for sock in sockets:
            sock.curve_secretkey = self.secret
            sock.curve_publickey = self.public
            sock.curve_server = True

    def stop(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None


def generate(directory: Path, name: str) -> tuple[Path, Path]:
    """A new key pair `name.key` (public: hand it out) and `name.key_secret` (keep it) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(directory, name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)
