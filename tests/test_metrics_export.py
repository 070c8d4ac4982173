"""What a running bridge exports on /metrics: its own series (each listed in the README), process
and Python runtime series, no `_created` series, and TWS notices apart from TWS errors."""

from __future__ import annotations

import re
import urllib.request

from tests.harness import ROOT, Bridge, wait_for


def scrape(bridge: Bridge) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{bridge.metrics_port}/metrics", timeout=5) as r:
        return r.read().decode()


def families(text: str) -> dict[str, str]:
    """Metric name as queried (counters with _total) -> type, from the `# TYPE` lines."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def readme_metrics() -> set[str]:
    section = (ROOT / "README.md").read_text().split("### Metrics and alerts", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(twsbridge_\w+)", section, re.M))


def history_metrics() -> set[str]:
    """The historical scheduler's metrics, documented in docs/bus.md (History and reference data, Metrics)."""
    section = (ROOT / "docs/bus.md").read_text().split("## History and reference data", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(twsbridge_\w+)", section.split("### Metrics", 1)[1], re.M))


def test_readme_lists_exactly_the_metrics_a_running_bridge_exports(bridge: Bridge) -> None:
    exported = {name for name in families(scrape(bridge)) if name.startswith("twsbridge_")}
    assert len(exported) >= 20
    assert readme_metrics() == exported
    assert history_metrics() <= readme_metrics()  # docs/bus.md's History section lists its own


def test_process_and_runtime_metrics_without_created_series(bridge: Bridge) -> None:
    text = scrape(bridge)
    kinds = families(text)
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "python_info",
                 "python_gc_collections_total"):  # fmt: skip
        assert name in kinds, name
    rss = re.search(r"^process_resident_memory_bytes (\S+)$", text, re.M)
    assert rss is not None and float(rss.group(1)) > 10e6
    assert "_created" not in text


def test_tws_notices_are_counted_apart_from_errors(bridge: Bridge) -> None:
    # The simulator greets every connection with farm notices 2104, 2106, 2158; error 200 is a refusal.
    assert bridge.request({"op": "subscribe", "instrument": "NOSUCH"})["code"] == "unknown_instrument"
    metrics = wait_for(lambda: (m := bridge.metrics()).get('twsbridge_tws_errors_total{code="200"}') and m, 10,
                       "error 200 counted")  # fmt: skip
    for code in ("2104", "2106", "2158"):
        assert metrics[f'twsbridge_tws_notices_total{{code="{code}"}}'] == 1
    errors = {name for name in metrics if name.startswith("twsbridge_tws_errors_total")}
    assert errors == {'twsbridge_tws_errors_total{code="200"}'}
