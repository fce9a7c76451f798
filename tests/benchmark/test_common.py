"""The machine description every benchmark report carries, and where reports go."""
import json


from streamact.benchmark import TASKS, load_task
from streamact.benchmark.common import machine_description, machine_info, report, write_section

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 amx_tile amx_int8
"""


def test_machine_info_reads_cpu_model_and_isa_flags():
    info = machine_info(CPUINFO)
    assert info["cpu"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert info["isa"] == ["AVX2", "AVX-512", "AVX-512 bf16", "AVX-512 VNNI (int8)", "AMX bf16", "AMX int8"]
    line = machine_description(info)
    assert line.startswith("Intel(R) Xeon(R) Platinum 8480+, ") and "ISA: AVX2, AVX-512, AVX-512 bf16" in line
    without = machine_info("model name : Old CPU\nflags : fpu sse\n")
    assert without["isa"] == [] and "ISA: none of AVX2" in machine_description(without)


def test_report_and_section_carry_machine_and_command(tmp_path):
    info = machine_info(CPUINFO)
    text = report("## Speed\n\nfast", "streamact bench --quick", info)
    assert "Machine: Intel(R) Xeon(R) Platinum 8480+" in text and "Command: `streamact bench --quick`" in text
    results = tmp_path / "docs" / "RESULTS.md"
    results.parent.mkdir()
    results.write_text("# Results\n\n<!-- section:other -->\nkept\n<!-- /section:other -->\n")
    write_section("speed", "## Speed\n\nv1", command="c1", machine=info, path=results)
    write_section("speed", "## Speed\n\nv2", command="c2", machine=info, path=results)
    text = results.read_text()
    assert "kept" in text and "v2" in text and "v1" not in text and text.count("<!-- section:speed -->") == 1


def test_tasks_have_the_interface():
    for name in TASKS:
        module = load_task(name)
        assert callable(module.run) and callable(module.to_markdown) and isinstance(module.SECTION, str)


def test_bench_writes_to_out_and_prints_only_json(tmp_path, monkeypatch, capfd):
    """The CLI around a task: report files in --out, nothing in the working directory or docs/, stdout parseable
    as is even when the task (or a native library) prints progress."""
    import os

    from streamact.benchmark import streaming
    from streamact.cli.main import main

    def fake_run(*, quick, data_root):
        print("progress on stdout from Python")
        os.write(1, b"progress on stdout from native code\n")
        return {"quick": quick, "value": 1.5}

    monkeypatch.setattr(streaming, "run", fake_run)
    monkeypatch.setattr(streaming, "to_markdown", lambda result: f"## Streaming speed\n\nvalue {result['value']}")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report"
    assert main(["bench", "--quick", "--format", "json", "--out", str(out)]) == 0
    captured = capfd.readouterr()
    result = json.loads(captured.out)
    assert result["value"] == 1.5 and result["machine"]["cpu"] and "isa" in result["machine"]
    assert "progress on stdout from native code" in captured.err
    assert json.loads((out / "streaming.json").read_text())["value"] == 1.5
    md = (out / "streaming.md").read_text()
    assert "value 1.5" in md and "Machine: " in md and "Command: `streamact bench --task streaming --quick`" in md
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no ./docs written
    # the default --out is a fresh run folder under runs/bench/
    assert main(["bench", "--quick"]) == 0
    (run,) = (tmp_path / "runs" / "bench").iterdir()
    assert run.name.startswith("streaming-") and (run / "streaming.md").exists()
    assert "## Streaming speed" in capfd.readouterr().out


def test_update_docs_rewrites_the_section_of_the_checkout(tmp_path, monkeypatch, capsys):
    from streamact.benchmark import common, streaming
    from streamact.cli.main import main

    monkeypatch.setattr(streaming, "run", lambda *, quick, data_root: {"value": 2.0})
    monkeypatch.setattr(streaming, "to_markdown", lambda result: f"## Streaming speed\n\nvalue {result['value']}")
    results = tmp_path / "docs" / "RESULTS.md"
    results.parent.mkdir()
    monkeypatch.setattr(common, "RESULTS", results)
    assert main(["bench", "--out", str(tmp_path / "run"), "--update-docs"]) == 0
    assert "value 2.0" in results.read_text() and "Machine: " in results.read_text()
    assert json.loads((results.parent / "bench_streaming.json").read_text())["value"] == 2.0
