"""A real Prometheus server scrapes the bridge, and every dashboard query runs against it."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ROOT, Bridge, Process, Simulator, free_port, wait_for

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="needs the prometheus binary (.ci/run installs it)")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Bridge, str]]:
    sim = Simulator(tmp_path)
    bridge = Bridge(tmp_path, sim.port)
    # Our shipped scrape config, pointed at this bridge and scraping fast.
    config = (ROOT / "deploy/prometheus/prometheus.yml").read_text()
    config = config.replace("bridge:9108", f"127.0.0.1:{bridge.metrics_port}").replace("5s", "1s")
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(ROOT / "deploy/prometheus/alerts.yml", tmp_path / "alerts.yml")  # its rule_files
    port = free_port()
    prom = Process(
        "prometheus",
        [f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        tmp_path,
        program=PROMETHEUS or "prometheus",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        yield bridge, url
    finally:
        prom.stop()
        bridge.stop()
        sim.stop()


def query(url: str, expr: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}", timeout=5) as r:
        return json.load(r)


def value(url: str, expr: str) -> float | None:
    try:
        result = query(url, expr)["data"]["result"]
    except OSError:
        return None
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_connection_state_and_moving_counts(stack: tuple[Bridge, str]) -> None:
    bridge, url = stack
    assert bridge.request({"op": "subscribe", "instrument": "BTC.CRYPTO"})["ok"]
    wait_for(lambda: value(url, "twsbridge_tws_up") == 1, 20, "Prometheus to see twsbridge_tws_up == 1")
    wait_for(lambda: (value(url, "rate(twsbridge_messages_published_total[5s])") or 0) > 0, 20, "a publish rate")
    assert value(url, "twsbridge_lines_in_use") == 1
    assert value(url, 'twsbridge_rep_requests_total{op="subscribe",outcome="ok"}') == 1
    wait_for(lambda: (value(url, "histogram_quantile(0.99, rate(twsbridge_publish_latency_seconds_bucket[5s]))")
                      or 0) > 0, 20, "a latency quantile")  # fmt: skip


def test_every_dashboard_query_is_valid_promql_with_data(stack: tuple[Bridge, str]) -> None:
    bridge, url = stack
    assert bridge.request({"op": "subscribe", "instrument": "AAPL"})["ok"]
    wait_for(lambda: value(url, "twsbridge_tws_up") == 1, 20, "first scrape")
    time.sleep(2.5)
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/tws-bridge.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 9
    for expr in exprs:
        answer = query(url, expr)
        assert answer["status"] == "success", (expr, answer)


def rules(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v1/rules", timeout=5) as r:
        return [rule for group in json.load(r)["data"]["groups"] for rule in group["rules"]]


def test_shipped_alert_rules_load_and_evaluate_against_a_real_bridge(stack: tuple[Bridge, str]) -> None:
    _, url = stack
    wait_for(lambda: value(url, "twsbridge_tws_up") == 1, 20, "first scrape")
    loaded = wait_for(lambda: (r := rules(url)) and all(rule["health"] == "ok" for rule in r) and r, 20,
                      "every rule evaluated without error")  # fmt: skip
    assert len(loaded) >= 8
    assert [rule["name"] for rule in loaded if rule["state"] != "inactive"] == []  # a healthy bridge: no alert


def test_dashboard_shows_a_dead_bridge_as_down(stack: tuple[Bridge, str]) -> None:
    bridge, url = stack
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/tws-bridge.json").read_text())
    panel = next(p for p in dashboard["panels"] if p["title"] == "Bridge up")
    expr = panel["targets"][0]["expr"]
    assert panel["fieldConfig"]["defaults"]["mappings"][0]["options"]["0"]["text"] == "DOWN"
    wait_for(lambda: value(url, expr) == 1, 20, "the bridge scraped as up")
    bridge.stop()
    wait_for(lambda: value(url, expr) == 0, 20, "the stopped bridge scraped as down")
    assert value(url, "twsbridge_tws_up") is None  # its own series go stale ("No data"); `up` says down


def test_outage_panels_have_data(stack: tuple[Bridge, str]) -> None:
    _, url = stack
    wait_for(lambda: value(url, "twsbridge_tws_up") == 1, 20, "first scrape")
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/tws-bridge.json").read_text())
    wanted = {"Bridge up", "TWS linked to IB", "TWS data farms", "Stale topics", "TWS stalls (1h)",
              "TWS notices by code", "Bridge process: resident memory"}  # fmt: skip
    panels = [p for p in dashboard["panels"] if p["title"] in wanted]
    assert len(panels) == len(wanted)
    for panel in panels:
        expr = panel["targets"][0]["expr"]
        wait_for(lambda e=expr: query(url, e)["data"]["result"], 10, f"data for {expr}")
