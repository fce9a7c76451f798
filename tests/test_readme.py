"""Every command and snippet of README.md runs as written on a fresh folder.

The ```bash and ```python blocks are read from README.md and run in order in an empty folder that holds only what
a fresh clone has (`configs/`, `src/`). Sizes shrink through `SUBSTITUTIONS`, an explicit table: each entry is a
(pattern, replacement, reason) applied to every command it matches, and must match at least one. A command this
test cannot run is listed in `SKIPPED` with the reason; every other line runs, so a command added to the README is
covered by default (add a substitution or a skip entry, with its reason, if it needs one).
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

# Command (after substitutions, comments removed) -> why it is not run here.
SKIPPED = {
    "make demo": "builds .venv and runs the full demo; `streamact demo` is covered by tests/cli/test_demo.py",
    "make test": "the test suite itself",
    "make bench": "minutes of timing on a shared machine; tests/benchmark cover `streamact bench`",
    "source .venv/bin/activate": "shell setup; the test runs the venv's interpreter directly",
    "torchrun --nproc_per_node=2 -m streamact train configs/gestures_tsm_effl0_8f.yaml --out_dir=runs/ddp":
        "two training processes; DDP on CPU is covered by tests/engine/test_trainer.py",
    "streamact bench --quick": "minutes of timing on a shared machine; tests/benchmark cover the command around it",
    "streamact bench --quick --format json > bench.json": "as above (and a shell redirection)",
    "streamact recognize clip.mp4 --model runs/x/last_streaming.xml --max-frames 24 --no-progress": "the IR it names is "
        "written by an export line further down; tests/inference/test_lean_path.py runs recognize on an exported IR",
    "pip install 'streamact[runtime]'": "installs packages; tests/inference/test_lean_path.py runs that path with "
                                        "PyTorch made unimportable",
    "streamact serve": "a server that runs until stopped; tests/serve run it on loopback",
    "streamact serve --allow-dir videos --token change-me --max-streams 24 --port 8080": "as above",
    "streamact serve --model runs/detection_amma_effl0/last_streaming.xml": "as above; "
        "tests/serve/test_detection_serve.py serves an exported detector",
    "streamact bench --task serve --quick": "minutes of load on a shared machine; tests/serve cover the load "
                                            "generator and tests/benchmark the report",
    "streamact bench --task lean --quick": "fresh processes timed on a shared machine; "
                                           "tests/benchmark/test_bench_lean.py runs it",
    "ray start --head --port 6379": "starts a Ray cluster; tests/cluster start a two-node one on loopback",
    "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=streamact.cluster.serve.proxy_middlewares ray start --head --port 6379":
        "as above, with the proxy hook that tests/cluster/conftest.py sets for its nodes",
    "streamact serve --ray --replicas 2 --port 8000": "Ray Serve replicas that run until stopped; "
                                                      "tests/cluster/test_ray_serve.py deploys two on loopback",
    "streamact serve --ray HEAD:6379 --replicas 4 --host 0.0.0.0 --token change-me": "needs a cluster; as above",
    "streamact bench --task cluster --quick": "minutes of load on a shared machine; "
                                              "tests/benchmark/test_bench_cluster.py covers the report",
    "streamact recognize --batch /shared/videos --out /shared/labels --ray HEAD:6379 --workers 16 --max-frames 24 "
    "--no-progress": "needs a cluster and a shared folder; tests/cluster run --batch on a two-node Ray cluster",
    "torchrun --nnodes=2 --nproc_per_node=2 --rdzv_backend=c10d --rdzv_endpoint=10.0.0.1:29400 --rdzv_id=gestures -m "
    "streamact train configs/gestures_tsm_effl0_8f.yaml --out_dir=/shared/runs/gestures_2x2":
        "two machines; tests/engine/test_multinode.py runs it as two nodes on loopback",
}

# Small sizes, applied in order: (regex, replacement, reason).
TINY_TRAIN = "--data.input_size=48 --data.batch_size=8 --data.num_workers=0 --data.clip_len=4 --no-progress"
SUBSTITUTIONS = [
    (r"--per-class 150 --seed 0 --size 128 --workers 2", "--per-class 6 --seed 0 --size 48 --workers 1",
     "6 videos per class still fill the train, validation and test splits"),
    (r"--per-class 20 --subjects 10", "--per-class 6 --subjects 2 --size 48", "a tiny untrimmed set"),
    (r"--num-images 100", "--num-images 3", "a few background images"),
    (r"--out data/streams --seed 1$", "--out data/streams --seed 1 --num-streams 2 1 1 --num-gestures 3 --size 48",
     "a few short streams"),
    (r"^streamact models 'tsm_\*' --complexity$", "streamact models 'tsm_mobilenetv2_*' --complexity",
     "counting MACs of every model takes a minute"),
    (r"^streamact models --complexity --format json$", "streamact models 'tsn_mobilenetv2_*' --complexity --format json",
     "as above"),
    (r"--epochs 6", "--epochs 1", "one epoch"),
    (r"^(streamact train .*)$", rf"\1 --epochs=1 {TINY_TRAIN}", "one epoch of tiny clips"),
    (r"--resume --epochs=1", "--resume --epochs=2", "one more epoch after the first run"),
    (r"(ligar_recipe.yaml .*)$", r"\1 --optim.freeze_epochs=0.25 --optim.warmup_epochs=0.25",
     "the staged schedule's head-only and warm-up stages fit in the one epoch"),
    (r"data/mine", "data/gestures", "'your own classes': the synthetic set stands in"),
    (r"^streamact recognize 0 ", "streamact recognize clip.mp4 ", "no camera here: a generated clip stands in"),
    (r"^(streamact recognize .*)$", r"\1 --max-frames 24 --no-progress", "a few frames"),
    (r"--realtime", "", "pacing a recorded clip at its frame rate only adds waiting"),
    (r"^streamact export (.*)$", r"streamact export \1 --num-frames 8", "a short parity stream"),
    (r"--num-videos 120 --workers 2", "--num-videos 4 --workers 1", "a few detection videos"),
    (r"^(streamact train configs/detection_amma_effl0.yaml .*)$", r"\1 --data.input_size=32 --data.num_clips=2 "
     "--max_steps=2", "a detector's input size is a multiple of 32; two steps"),
    (r"synthetic:detection\?frames=120", "synthetic:detection?frames=12", "a short scene"),
]
PYTHON_SUBSTITUTIONS = [
    (r"torch\.randn\(1, 3, 8, 160, 160\)", "torch.randn(1, 3, 8, 64, 64)", "a smaller clip"),
]


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```", README.read_text(), re.S | re.M)


def readme_commands() -> list[str]:
    """The README's shell commands, one per logical line (continuations joined, comments removed)."""
    commands = []
    for block in _blocks("bash"):
        lines = block.replace("\\\n", " ").splitlines()
        while lines:
            line = lines.pop(0)
            if re.fullmatch(r"cat > \S+ <<'EOF'", line.strip()):  # a here-document: kept whole, with its lines
                end = lines.index("EOF")
                commands.append("\n".join([line.strip(), *lines[:end], "EOF"]))
                del lines[:end + 1]
                continue
            words = shlex.split(line, comments=True)
            if words:
                commands.append(" ".join(shlex.quote(w) if w != ">" else w for w in words))
    return commands


def substitute(command: str, table: list[tuple[str, str, str]], used: set[int]) -> str:
    for i, (pattern, replacement, _) in enumerate(table):
        new = re.sub(pattern, replacement, command)
        if new != command:
            used.add(i)
            command = re.sub(r"\s+", " ", new).strip()
    return command


def test_tables_name_real_commands():
    commands = readme_commands()
    assert commands, "no ```bash blocks found in README.md"
    used: set[int] = set()
    final = [substitute(c, SUBSTITUTIONS, used) for c in commands]
    assert sorted(used) == list(range(len(SUBSTITUTIONS))), \
        f"substitutions matching no README command: {[SUBSTITUTIONS[i][0] for i in set(range(len(SUBSTITUTIONS))) - used]}"
    assert set(SKIPPED) <= set(final), f"skipped commands not in README: {set(SKIPPED) - set(final)}"
    assert all(SKIPPED.values()), "every skipped command needs a reason"


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    """An empty folder with what a fresh clone has next to the README (configs/, src/) and a generated clip.mp4
    standing in for a camera or a user's video."""
    from streamact.data.synthetic import generate_stream

    root = tmp_path_factory.mktemp("readme")
    for name in ("configs", "src"):
        (root / name).symlink_to(REPO / name)
    generate_stream(root / "clip.mp4", num_gestures=1, seed=0, size=64)
    return root


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run(argv, stdin=subprocess.DEVNULL, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_readme_runs_as_written(fresh_clone, monkeypatch, capsys):
    """`streamact` commands run in this process (through the same entry point as the console script), which saves
    the interpreter start-up of each; their exit codes and one-line errors are what a shell would see. The Python
    snippets run after them, in fresh interpreters, as they read what the commands wrote (one test, so that no
    scheduler can run them first or in another folder)."""
    from streamact.cli.main import main

    monkeypatch.chdir(fresh_clone)
    used: set[int] = set()
    ran = 0
    for command in readme_commands():
        command = substitute(command, SUBSTITUTIONS, used)
        if command in SKIPPED:
            continue
        if command.startswith("cat > "):  # a here-document: write the file as the shell would
            head, *body, _ = command.split("\n")
            Path(head.split()[2]).write_text("\n".join(body) + "\n")
            continue
        words = shlex.split(command)
        assert words[0] == "streamact", f"no rule to run {command!r}: add it to SKIPPED with a reason"
        start = time.perf_counter()
        try:
            code = main(words[1:])
        except SystemExit as exc:  # --help, and argparse's usage errors
            code = exc.code or 0
        err = capsys.readouterr().err
        print(f"{time.perf_counter() - start:6.1f} s  {command}", file=sys.__stderr__)
        assert code == 0, f"`{command}` exited {code}:\n{err[-3000:]}"
        ran += 1
    assert ran >= 15
    _run_python_snippets(fresh_clone)


def _run_python_snippets(fresh_clone: Path) -> None:
    used: set[int] = set()
    for block in _blocks("python"):
        code = substitute_python(block, used)
        result = _run([sys.executable, "-c", code], fresh_clone)
        assert result.returncode == 0, f"README snippet failed:\n{code}\n{result.stderr[-3000:]}"
        if "engine.push" in code:
            assert result.stdout.strip(), "the streaming snippet prints predictions"
    assert sorted(used) == list(range(len(PYTHON_SUBSTITUTIONS)))


def substitute_python(code: str, used: set[int]) -> str:
    for i, (pattern, replacement, _) in enumerate(PYTHON_SUBSTITUTIONS):
        new = re.sub(pattern, replacement, code)
        if new != code:
            used.add(i)
            code = new
    return code
