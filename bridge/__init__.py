"""tws-bridge: one TWS API connection shared over ZeroMQ."""

__version__ = "0.1.0"
