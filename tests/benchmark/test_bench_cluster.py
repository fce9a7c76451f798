"""The cluster benchmark: Ray's overhead against the local pool from a run's numbers, and its report."""
from streamact.benchmark.cluster import overheads, to_markdown


def _corpus(engine: str, workers: int, first_s: float, steady: float, videos_per_s: float = 0.8) -> dict:
    return {"engine": engine, "workers": workers, "videos": 8, "frames": 768, "seconds": 10.0,
            "videos_per_s": videos_per_s, "frames_per_s": 76.8, "first_s": first_s, "steady_s_per_video": steady,
            "driver_ray_cpu_ms_per_video": 90.0 if engine == "ray" else 10.0}


def _streams(server: str, n: int, p50: float) -> dict:
    return {"server": server, "streams": n, "fps": 15.0, "seconds": 8.0, "sent": 120 * n,
            "processed_fps": 15.0 * n, "results_fps": 7.5 * n, "drop_rate": 0.0125,
            "latency_ms": {"p50": p50, "p95": 2 * p50}, "rss_mb": 500.0}


def _result(ray_videos_per_s: float = 0.5) -> dict:
    return {"quick": True, "model": "m", "cpus": 2, "load_average_start": 3.5, "load_average_end": 4.0,
            "ray_start_s": 6.2,
            "corpus": [_corpus("local", 1, 2.0, 0.5), _corpus("ray", 1, 5.5, 0.52, ray_videos_per_s),
                       _corpus("local", 2, 2.5, 0.9), _corpus("ray", 2, 6.0, 0.95, ray_videos_per_s)],
            "serve": [_streams("streamact serve", 2, 10.0), _streams("1 replica", 2, 14.0),
                      _streams("2 replicas", 2, 15.0)]}


def test_overheads_are_ray_minus_pool_at_each_worker_count():
    assert overheads(_result()) == [
        {"workers": 1, "start-up (Ray − pool)": "+3.50 s", "per video once running (Ray − pool)": "+20 ms"},
        {"workers": 2, "start-up (Ray − pool)": "+3.50 s", "per video once running (Ray − pool)": "+50 ms"}]


def test_report_has_every_run_and_the_load_it_ran_under():
    text = to_markdown(_result())
    assert text.startswith("## Beyond one machine: corpus on Ray Data, server replicas on Ray Serve — quick run\n")
    assert "| local process pool | 1 | 0.80 | 76.8 | 10.0 | 2.0 s | 0.50 | 10 |" in text
    assert "| Ray Data actors | 2 | 0.50 | 76.8 | 10.0 | 6.0 s | 0.95 | 90 |" in text
    assert "| 2 replicas | 2 | 30 | 30 | 1.25% | 15 | 30 |" in text
    assert "8 synthetic gesture videos of 96 frames" in text and "its start, 6.2 s, not counted" in text
    assert "(2 CPU cores; load average 3.5 at the start, 4.0 at the end)" in text


def test_expectations_carry_the_runs_costs_of_ray():
    text = to_markdown(_result())
    assert ("a start-up paid once per actor (+3.5 s against a pool process here: a Ray worker process, its imports, "
            "the model)") in text
    assert "90 ms per video against the pool's 10 ms" in text
    assert ("Ray's workers took +20 ms per video against the pool's with 1 worker (+4% of a 96-frame video) and "
            "+50 ms with 2.") in text
    assert "the process pool was the faster choice at every worker count" in text
    assert "a Serve proxy (+4.0 ms at the median with 2 streams here, 1 replica against the plain server)" in text
    assert "Ray kept up with the process pool" in to_markdown(_result(ray_videos_per_s=0.9))
