"""Flags win over the environment, which wins over the TOML file."""

from pathlib import Path

import pytest

from bridge.config import Settings, load


def test_defaults_are_loopback_and_paper_port() -> None:
    s = load([], environ={})
    assert s == Settings()
    assert (s.tws_port, s.pub, s.rep, s.metrics_address) == (
        7497, "tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556", ("127.0.0.1", 9108)
    )  # fmt: skip


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    toml = tmp_path / "bridge.toml"
    toml.write_text('tws_port = 4002\nclient_id = 5\npub = "tcp://127.0.0.1:6000"\nsimulate = true\n')
    env = {"TWSBRIDGE_CLIENT_ID": "6", "TWSBRIDGE_PUB": "tcp://127.0.0.1:6001"}
    s = load(["--config", str(toml), "--pub", "tcp://127.0.0.1:6002"], environ=env)
    assert (s.tws_port, s.client_id, s.pub, s.simulate) == (4002, 6, "tcp://127.0.0.1:6002", True)


def test_metrics_can_be_turned_off() -> None:
    assert load(["--metrics", ""], environ={}).metrics_address is None


def test_a_bad_value_names_its_source(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="TWSBRIDGE_TWS_PORT sets tws_port to 'abc'"):
        load([], environ={"TWSBRIDGE_TWS_PORT": "abc"})
    bad = tmp_path / "b.toml"
    bad.write_text("nonsense = 1\n")
    with pytest.raises(SystemExit, match="unknown keys"):
        load(["--config", str(bad)], environ={})


def test_consumers_default_to_the_bridges_endpoints_and_variables() -> None:
    import consumers.config as consumer_defaults

    bridge = load([], environ={})
    assert (bridge.pub, bridge.rep) == (consumer_defaults.DEFAULT_PUB, consumer_defaults.DEFAULT_REP)
    env = {consumer_defaults.PUB_ENV: "tcp://127.0.0.1:7000", consumer_defaults.REP_ENV: "tcp://127.0.0.1:7001"}
    assert (load([], environ=env).pub, load([], environ=env).rep) == ("tcp://127.0.0.1:7000", "tcp://127.0.0.1:7001")
