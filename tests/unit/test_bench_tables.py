"""The tables `make bench-scale` and `make bench-soak` print: every target beside its figure,
a missed one flagged, each soak interval counted in the minute it began."""

from __future__ import annotations

from typing import Any

from bench import tables


def _scale(decision_p99: float, lag_p99: float) -> dict[str, Any]:
    synced = {"pss_total_mib": 380.0}
    return {
        "args": {"namespaces": 100000},
        "policies": 300000,
        "date": "2026-12-02",
        "memory": [
            {
                "mode": "preload",
                "workers": 2,
                "readyz_s": 32.2,
                "guardrail_cpu_s": 15,
                "apiserver_etcd_cpu_s": 38,
                "memory_synced": synced,
                "load_average": "3.07 1 1",
            },
            {"mode": "per-worker", "workers": 2, "memory_synced": {"pss_total_mib": 704.0}},
        ],
        "decision": {
            "decision_p50_us": 40.0,
            "decision_p99_us": decision_p99,
            "decision_cpu_p99_us": decision_p99,
            "first_in_namespace_p50_us": 610.0,
            "first_in_namespace_p99_us": 1340.0,
        },
        "lag": {
            "events_per_s": 499.4,
            "probes": 273,
            "lag_p50_ms": 0.4,
            "lag_p99_ms": lag_p99,
            "lag_max_ms": 14.8,
        },
    }


def test_scale_flags_the_target_missed_and_only_that() -> None:
    text = tables.scale_table(_scale(decision_p99=105.5, lag_p99=12.7))
    decision = next(line for line in text.splitlines() if line.startswith("| decision"))
    assert decision.endswith("| p99 < 100 µs | **no** |")
    lag = next(line for line in text.splitlines() if line.startswith("| watch event"))
    assert lag.endswith("| p99 < 100 ms | yes |")
    assert "| PSS of the pod after the sync (MiB) | 380 | < 600 MiB | yes |" in text
    assert "| `--no-preload`: PSS after the sync (MiB) | 704 |" in text
    assert "32.2 [3.07]" in text


def test_scale_met_everywhere_says_so() -> None:
    text = tables.scale_table(_scale(decision_p99=62.0, lag_p99=12.7))
    assert "**no**" not in text


def test_soak_counts_each_interval_in_the_minute_it_began() -> None:
    ends = [30.1, 60.2, 90.3, 120.3, 150.4, 180.5]  # the clock drifts past each minute
    intervals = [
        {
            "elapsed_s": end,
            "requests": 6000,
            "errors": {"timeout": 1} if i == 5 else {},
            "p99_ms": 3.0 + i,
            "rss_total_mib": 900.0,
            "pss_total_mib": 400.0 + i,
        }
        for i, end in enumerate(ends)
    ]
    summary = {
        "requests": 36000,
        "achieved_rate": 200.0,
        "errors": {"timeout": 1},
        "median_p99_ms": 5.0,
        "worst_p99_ms": 8.0,
        "rss_first_mib": 900.0,
        "rss_last_mib": 900.0,
        "rss_slope_mib_per_min": 0.0,
        "pss_first_mib": 400.0,
        "pss_last_mib": 405.0,
        "pss_slope_mib_per_min": 1.0,
    }
    text = tables.soak_table(summary, intervals)
    assert "| requests | 12,000 | 12,000 | 12,000 |" in text
    assert "| errors | 0 | 0 | 1 |" in text
    assert "| p99 (ms), the worse interval | 4.0 | 6.0 | 8.0 |" in text
    assert "| 0 errors | 1 | **no** |" in text
    assert "| p99 < 10 ms at 200 requests/s | median interval 5.0, worst 8.0 | yes |" in text
