"""The lean-path benchmark: its goals judged from a run's numbers, its report, and `streamact bench --task lean`."""
import json

import pytest

from streamact.benchmark.lean import goals, to_markdown
from streamact.cli.main import main


def _result(*, cold_start_s=0.8, rss=150.0, int8_cpu_ms=1.0, int8_top1=0.5) -> dict:
    def path(name, seconds, mb):
        return {"path": name, "cold_start_s": seconds, "cold_start_min_s": seconds - 0.1, "peak_rss_mb": mb,
                "cpu_s": seconds / 2}

    accuracy = {"fp32": {"videos": 90, "top1": 0.5, "steps": 1350, "step_agreement": None},
                "bf16": {"videos": 90, "top1": 0.5, "steps": 1350, "step_agreement": 0.99},
                "int8": {"videos": 90, "top1": int8_top1, "steps": 1350, "step_agreement": 0.93}}
    return {"quick": False, "model": "m", "load_average": 3.0, "repeats": 5,
            "calibration": {"data": "data/g", "samples": 300, "made_with": "streamact data synth gestures --out "
                                                                          "data/g --per-class 40 --size 128 --seed 1"},
            "cold_start": [path("lean (shipped IR, cached compile)", cold_start_s, rss),
                           path("rebuild from PyTorch (before)", 7.0, 1180.0)],
            "precision": [{"size": 112, "fp32_ms": 4.0, "bf16_ms": 2.0, "int8_ms": 1.0, "fp32_cpu_ms": 4.0,
                           "bf16_cpu_ms": 2.0, "int8_cpu_ms": int8_cpu_ms, "accuracy": accuracy},
                          {"size": 224, "fp32_ms": 9.0, "bf16_ms": 5.0, "int8_ms": 4.0, "fp32_cpu_ms": 9.0,
                           "bf16_cpu_ms": 5.0, "int8_cpu_ms": 4.0}],
            "detector": {"model": "d", "clip": [3, 4, 128, 128], "made_with": "streamact data synth detection ...",
                         "fp32_ms": 30.0, "bf16_ms": 20.0, "int8_ms": 16.0, "fp32_cpu_ms": 30.0, "bf16_cpu_ms": 20.0,
                         "int8_cpu_ms": 16.0,
                         "accuracy": {k: {"videos": 30, "frame_map@0.5": m, "video_map@0.2": m + 0.05,
                                          "video_map@0.5": m / 2} for k, m in (("fp32", 0.2), ("bf16", 0.19),
                                                                              ("int8", 0.16))}}}


def test_goals_follow_the_numbers():
    assert [g["met"] for g in goals(_result())] == ["yes", "yes", "yes", "yes"]
    missed = goals(_result(cold_start_s=1.2, rss=300.0, int8_cpu_ms=1.8, int8_top1=0.48))
    assert [g["met"] for g in missed] == ["**no**"] * 4
    assert [g["measured"] for g in missed] == ["1.20 s", "300 MB", "1.11x", "-2.0 points (int8 - fp32)"]


def test_report_shows_every_path_and_size():
    text = to_markdown(_result())
    assert text.startswith("## Running without PyTorch: cold start, memory, int8\n")
    assert "| lean (shipped IR, cached compile) | 0.80 s | 0.70 s | 0.40 s | 150 MB |" in text
    assert "| 112² | 4.00 / 4.00 | 2.00 / 2.00 | 1.00 / 1.00 | 2.00x | 0.500 / 0.500 / 0.500 | 0.990 / 0.930 |" in text
    assert "| 224² | 9.00 / 9.00 | 5.00 / 5.00 | 4.00 / 4.00 | 1.25x | n/a | n/a |" in text
    assert "(made with `streamact data synth gestures --out data/g --per-class 40 --size 128 --seed 1`)" in text
    assert "one standard error of such a top-1 is about 0.053" in text  # sqrt(0.5 * 0.5 / 90)
    assert ("| 4 frames at 128x128 | 30.00 / 30.00 | 20.00 / 20.00 | 16.00 / 16.00 | 1.25x | 20.0 / 19.0 / 16.0 "
            "| 25.0 / 24.0 / 21.0 | 10.0 / 9.5 / 8.0 |") in text
    assert "on the 30 test videos" in text


@pytest.mark.slow  # fresh `streamact recognize` processes (PyTorch ones among them) and an int8 quantization: ~1.5 min
@pytest.mark.export
def test_bench_task_lean_runs_quick_into_its_out_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working folder
    out = tmp_path / "report"
    assert main(["bench", "--task", "lean", "--quick", "--out", str(out), "--format", "json",
                 "--data", str(tmp_path / "no_data")]) == 0
    result = json.loads(capsys.readouterr().out)  # stdout is the JSON alone
    assert json.loads((out / "lean.json").read_text()) == result
    assert [row["path"] for row in result["cold_start"]] == [
        "lean (shipped IR, cached compile)", "lean, first run (empty cache)", "rebuild from PyTorch (before)",
        "PyTorch eager (--runtime torch)"]
    assert all(row["cold_start_s"] > 0 and row["peak_rss_mb"] > 0 for row in result["cold_start"])
    # the lean path's own memory, not the benchmark's: it imports no PyTorch, the others do
    lean, _, rebuild, _ = result["cold_start"]
    assert lean["peak_rss_mb"] < rebuild["peak_rss_mb"] / 2
    (row,) = result["precision"]
    assert row["size"] == 112 and "accuracy" not in row and row["int8_cpu_ms"] > 0
    detector = result["detector"]  # scored on a detection set the run made itself
    assert detector["clip"] == [3, 4, 160, 160] and detector["int8_cpu_ms"] > 0
    assert set(detector["accuracy"]) == {"fp32", "bf16", "int8"}
    assert all(0 <= a["frame_map@0.5"] <= 1 and a["videos"] > 0 for a in detector["accuracy"].values())
    report = (out / "lean.md").read_text()
    assert "## Running without PyTorch" in report and "Command: `streamact bench --task lean --quick`" in report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
