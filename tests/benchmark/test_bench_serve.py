"""The serve benchmark: its goals judged from a run's numbers, and its report."""
from streamact.benchmark.serve import batching, goals, to_markdown
from streamact.cli.recognize import DEFAULT_MODEL


def _result(*, drop_rate: float, p95: float, growth: float) -> dict:
    def level(n):
        return {"streams": n, "fps": 15.0, "seconds": 8, "sent": 120 * n, "processed_fps": 15.0 * n,
                "results_fps": 7.5 * n, "drop_rate": drop_rate if n == 12 else 0.0,
                "latency_ms": {"p50": 5.0, "p95": p95}, "rss_mb": 900.0}

    return {"quick": True, "model": "m", "runtime": "openvino", "fps": 15.0, "seconds_per_level": 8,
            "frame": {"size": "160x160 JPEG", "mean_bytes": 5000}, "rss_idle_mb": 850.0,
            "levels": [level(1), level(12)],
            "soak": {"seconds": 60, "cycles": 3, "streams_opened": 12, "rss_mb": [900.0, 900.0 + growth],
                     "growth_mb": growth, "open_after": 0},
            "batching": [{"streams": 1, "batched_cpu_ms": 2.0, "single_cpu_ms": 1.5},
                         {"streams": 16, "batched_cpu_ms": 1.4, "single_cpu_ms": 1.47}],
            "detector": {"model": "d", "runtime": "openvino", "frame": {"size": "160x120 JPEG", "mean_bytes": 4000},
                         "rss_idle_mb": 300.0, "levels": [{**level(4), "results_fps": 15.0, "rss_mb": 310.0}]}}


def test_goals_follow_the_numbers():
    assert [g["met"] for g in goals(_result(drop_rate=0.0, p95=40.0, growth=1.0))] == ["yes", "yes"]
    assert [g["met"] for g in goals(_result(drop_rate=0.02, p95=40.0, growth=1.0))] == ["**no**", "yes"]
    assert [g["met"] for g in goals(_result(drop_rate=0.0, p95=200.0, growth=50.0))] == ["**no**", "**no**"]


def test_report_has_one_row_per_load_level():
    text = to_markdown(_result(drop_rate=0.005, p95=40.0, growth=1.0))
    assert "| 12 | 180 | 180 | 90 | 0.50% | 5 | 40 | 900 |" in text
    assert "Serving many streams" in text
    assert "| 16 | 1.400 | 1.470 | 1.05x |" in text
    assert "best batch of this run (16 streams) computes a frame 1.05x as fast" in text and "does not batch." in text
    assert "The bundled detector (d) on openvino" in text and "| 4 | 60 | 60 | 15 | 0.00% | 5 | 40 | 310 |" in text


def test_batched_steps_run_the_shipped_graph_at_every_batch_size():
    rows = batching(DEFAULT_MODEL, repeats=2, sizes=(1, 3))
    assert [r["streams"] for r in rows] == [1, 3]
    assert all(r["batched_cpu_ms"] > 0 and r["single_cpu_ms"] > 0 for r in rows)
