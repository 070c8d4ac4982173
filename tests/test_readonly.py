"""The bridge cannot send an order, account or FA message: there is no code that could."""

import re
from pathlib import Path

from bridge.protocol import Out
from bridge.protocol import requests as rq

ROOT = Path(__file__).resolve().parent.parent

# Names of the official client's outgoing messages that place, change or read orders,
# accounts, positions, P&L or FA configuration.
FORBIDDEN = re.compile(
    r"ORDER|ACCT|ACCOUNT|FA\b|_FA|POSITION|EXERCISE|PNL|GLOBAL_CANCEL|EXECUTIONS|VERIFY|DISPLAY_GROUP"
)


def test_no_outgoing_message_of_ours_is_an_order_account_or_fa_message() -> None:
    from ibapi.message import OUT as OFFICIAL

    official_names = {m.value: m.name for m in OFFICIAL}
    for ours in Out:
        assert official_names[ours.value] == ours.name, f"{ours.name} is {official_names[ours.value]} in IB's table"
        assert not FORBIDDEN.search(ours.name), ours.name
    forbidden_ids = {v for v, name in official_names.items() if FORBIDDEN.search(name)}
    assert forbidden_ids, "the official table should name order messages"
    assert not forbidden_ids & {m.value for m in Out}


def test_every_request_type_encodes_to_one_of_our_ids_only() -> None:
    assert {msg_id for msg_id, _ in rq.ENCODERS.values()} == set(Out)


def test_runtime_code_imports_no_ib_sdk() -> None:
    sdk = re.compile(r"^\s*(import|from)\s+(ibapi|ib_async|ib_insync)\b", re.MULTILINE)
    for folder in ("bridge", "consumers"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not sdk.search(path.read_text()), f"{path} imports an IB SDK"
