"""The request socket parses outside input: any bytes give a request or a RequestError."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.config import Settings
from bridge.ops import CONFLATE_MAX, CONFLATE_MIN, RequestError, parse_request, subscribe_args, view_args
from bridge.service import Bridge

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=30)
    | st.binary(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(
    ["op", "instrument", "kind", "market_data_type", "generic_ticks", "lease", "id", "ids", "conflate", "fields"]
)
requests = st.dictionaries(keys, values, max_size=6)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=300), values.map(msgpack.packb), requests.map(msgpack.packb)))
def test_any_bytes_parse_to_a_request_or_a_bad_request_error(raw: bytes) -> None:
    try:
        request = parse_request(raw)
    except RequestError as exc:
        assert exc.code == "bad_request" and exc.message
    else:
        assert isinstance(request, dict) and isinstance(request["op"], str)


@settings(max_examples=300, deadline=None)
@given(request=requests)
def test_any_subscribe_arguments_are_valid_or_refused_by_name(request: dict[str, Any]) -> None:
    try:
        contract, kind, md_type, _generic, lease = subscribe_args(request, 30.0)
    except RequestError as exc:
        assert exc.code == "bad_request" and exc.message
    else:
        assert contract.symbol and kind and md_type and 1 <= lease <= 3600


@settings(max_examples=300, deadline=None)
@given(request=requests | st.fixed_dictionaries({"conflate": values | st.floats(0.01, 100), "fields": values}))
def test_any_view_arguments_are_a_bounded_view_or_refused_by_name(request: dict[str, Any]) -> None:
    try:
        view = view_args(request)
    except RequestError as exc:
        assert exc.code == "bad_request" and exc.message
    else:
        if view is not None:
            assert CONFLATE_MIN * 1000 <= view.interval_ms <= CONFLATE_MAX * 1000 and len(view.fields) <= 32
            assert all(f.isascii() and f.isidentifier() and f.islower() for f in view.fields)
            assert list(view.fields) == sorted(set(view.fields))


@settings(max_examples=200, deadline=None)
@given(request=requests.map(lambda r: {**r, "op": r.get("op") if r.get("op") != "subscribe" else "ping"}))
def test_any_other_op_answers_or_refuses_without_tws(request: dict[str, Any]) -> None:
    if not isinstance(request.get("op"), str):
        request["op"] = "list"
    bridge = Bridge(Settings(metrics=""))
    try:
        reply = asyncio.run(bridge.handle(request))
    except RequestError as exc:
        assert exc.code in ("bad_request", "not_found")
    else:
        assert reply["ok"] is True
    finally:
        bridge.router.close(0)
        bridge.pub.close(0)
        bridge._ctx.term()
