"""The API handshake, both ends, as bytes."""

import pytest

from bridge.protocol import ClientConnection, ClientState, ProtocolError, ServerConnection, frame
from bridge.protocol import events as ev
from bridge.protocol.handshake import client_greeting, negotiate, parse_server_hello, parse_version_range
from bridge.protocol.requests import ReqCurrentTime, StartApi


def test_client_greeting_is_api_nul_then_framed_version_range() -> None:
    assert client_greeting() == b"API\x00\x00\x00\x00\x09v157..200"
    assert client_greeting(157, 176, "+PACEAPI") == b"API\x00\x00\x00\x00\x12v157..176 +PACEAPI"


def test_server_picks_the_highest_version_both_speak() -> None:
    assert negotiate(157, 200, 200) == 200
    assert negotiate(157, 178, 200) == 178
    assert negotiate(100, 226, 176) == 176
    assert negotiate(180, 200, 176) is None


def test_server_hello_gives_version_and_connection_time() -> None:
    assert parse_server_hello(b"176\x0020261125 14:00:00 UTC\x00", 157, 200) == (176, "20261125 14:00:00 UTC")


def test_a_server_too_old_for_us_is_refused_with_what_to_do() -> None:
    with pytest.raises(ProtocolError, match=r"server version 151; tws-bridge speaks 157\.\.200.*Update TWS"):
        parse_server_hello(b"151\x00t\x00", 157, 200)


@pytest.mark.parametrize("payload", [b"", b"abc\x00", b"176\x00t", b"176\x00t\x00x\x00"])
def test_a_garbled_server_hello_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_server_hello(payload, 157, 200)


def test_version_range_with_connect_options() -> None:
    assert parse_version_range(b"v100..226 +PACEAPI") == (100, 226, "+PACEAPI")
    with pytest.raises(ProtocolError):
        parse_version_range(b"hello")


def test_client_and_server_connections_talk_through_bytes_alone() -> None:
    client, server = ClientConnection(client_id=3), ServerConnection()
    [hello] = server.receive_data(client.initiate())
    assert hello.min_version == 157 and hello.max_version == 200
    answer = server.accept(hello, 176, "20261125 14:00:00 UTC")
    assert answer == frame(b"176\x0020261125 14:00:00 UTC\x00")
    client.receive_data(answer)
    assert client.events() == [ev.Connected(176, "20261125 14:00:00 UTC")]
    assert client.state is ClientState.CONNECTED and client.server_version == 176
    assert server.receive_data(client.send(StartApi(3))) == [StartApi(3, "")]


def test_requests_sent_before_the_server_answered_are_held_not_lost() -> None:
    server = ServerConnection()
    greeting = client_greeting()
    early = frame(b"49\x001\x00")  # reqCurrentTime
    [hello] = server.receive_data(greeting + early)
    server.accept(hello, 200, "t")
    assert server.receive_data(b"") == [ReqCurrentTime()]


def test_a_greeting_that_is_not_api_nul_is_refused() -> None:
    with pytest.raises(ProtocolError, match="not 'API"):
        ServerConnection().receive_data(b"GET / HTTP/1.1\r\n")


def test_the_server_refuses_clients_whose_range_it_cannot_meet() -> None:
    server = ServerConnection()
    [hello] = server.receive_data(client_greeting(180, 200))
    assert server.accept(hello, 176, "t") is None


def test_sending_before_the_handshake_is_refused() -> None:
    with pytest.raises(ProtocolError, match="cannot send StartApi"):
        ClientConnection().send(StartApi(1))


def test_after_a_bad_hello_the_connection_stays_failed() -> None:
    client = ClientConnection()
    client.initiate()
    client.receive_data(frame(b"99\x00t\x00"))
    with pytest.raises(ProtocolError):
        client.events()
    assert client.state is ClientState.FAILED
    with pytest.raises(ProtocolError, match="already failed"):
        client.events()
