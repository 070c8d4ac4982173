"""Sharing and leases, without sockets or clocks."""

from bridge.book import LineKey, SubscriptionBook
from bridge.protocol import Contract

BTC = Contract("BTC", "CRYPTO", "PAXOS", "USD", 479624278)
KEY = LineKey("BTC.CRYPTO.PAXOS.USD", "quote")


def test_two_consumers_of_one_instrument_cost_one_tws_request() -> None:
    book = SubscriptionBook()
    line, first, new1 = book.subscribe(KEY, BTC, 10, lease=30, now=0)
    same, second, new2 = book.subscribe(KEY, BTC, 11, lease=30, now=1)
    assert (new1, new2) == (True, False)
    assert same is line and line.req_id == 10 and first != second
    assert book.by_req_id == {10: line} and book.by_req_field == {b"10": line}
    assert book.subscription_count() == 2


def test_the_tws_request_goes_when_the_last_consumer_leaves() -> None:
    book = SubscriptionBook()
    line, a, _ = book.subscribe(KEY, BTC, 10, 30, 0)
    _, b, _ = book.subscribe(KEY, BTC, 11, 30, 0)
    assert book.unsubscribe(a) == (True, None)
    assert book.unsubscribe(b) == (True, line)
    assert book.by_req_id == {} and book.by_req_field == {} and book.lines() == []
    assert book.unsubscribe(b) == (False, None)


def test_a_lapsed_lease_drops_only_that_consumer() -> None:
    book = SubscriptionBook()
    line, short, _ = book.subscribe(KEY, BTC, 10, lease=5, now=0)
    _, long, _ = book.subscribe(KEY, BTC, 11, lease=60, now=0)
    assert book.expire(now=4.9) == ([], [])
    assert book.expire(now=5.0) == ([short], [])
    assert list(line.leases) == [long]
    assert book.expire(now=60) == ([long], [line])


def test_renewal_keeps_a_consumer_alive_by_its_own_lease() -> None:
    book = SubscriptionBook()
    _, sub, _ = book.subscribe(KEY, BTC, 10, lease=5, now=0)
    assert book.renew([sub, "nope"], now=4) == ([sub], ["nope"])
    assert book.expire(now=8.9) == ([], [])
    assert book.expire(now=9.0)[0] == [sub]


def test_different_kinds_types_and_generic_ticks_are_different_lines_and_topics() -> None:
    book = SubscriptionBook()
    keys = [
        KEY,
        KEY._replace(kind="trades"),
        KEY._replace(market_data_type="delayed"),
        KEY._replace(generic_ticks="233"),
    ]
    lines = [book.subscribe(k, BTC, i, 30, 0)[0] for i, k in enumerate(keys)]
    assert len({id(line) for line in lines}) == 4
    assert [line.topic for line in lines] == [
        b"quote/BTC.CRYPTO.PAXOS.USD",
        b"trades/BTC.CRYPTO.PAXOS.USD",
        b"quote/BTC.CRYPTO.PAXOS.USD/delayed",
        b"quote/BTC.CRYPTO.PAXOS.USD/g233",
    ]


def test_a_refused_line_is_forgotten_with_all_its_consumers() -> None:
    book = SubscriptionBook()
    line, a, _ = book.subscribe(KEY, BTC, 10, 30, 0)
    _, b, _ = book.subscribe(KEY, BTC, 11, 30, 0)
    assert sorted(book.remove_line(line)) == sorted([a, b])
    assert book.subscription_count() == 0 and book.by_req_id == {} and book.by_req_field == {}
    assert book.renew([a], 1) == ([], [a])


def test_after_a_reconnect_a_line_answers_to_its_new_request_id() -> None:
    book = SubscriptionBook()
    line, _, _ = book.subscribe(KEY, BTC, 10, 30, 0)
    book.reassign(line, 99)
    assert book.by_req_id == {99: line} and book.by_req_field == {b"99": line}
