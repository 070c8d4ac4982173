"""The one exception type the protocol layer raises."""


class ProtocolError(Exception):
    """The peer broke the TWS API protocol in a way we cannot step over.

    Raised for a bad handshake, a frame longer than the limit, or a server version outside
    the range we speak. A single malformed message inside a well-formed frame is *not* an
    error: it becomes a `MalformedMessage` event and the stream goes on.
    """
