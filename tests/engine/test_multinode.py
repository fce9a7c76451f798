"""Training across machines: `torchrun --nnodes=2` as two nodes of this machine, meeting over c10d rendezvous on
127.0.0.1 (one process per node, gloo on the loopback interface), as the README's multi-machine command runs."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from streamact.data.synthetic import generate_gestures

TINY = ["--model.name=tsm_mobilenetv2_100", "--model.pretrained=false", "--data.input_size=48",
        "--data.clip_len=4", "--data.batch_size=2", "--data.num_workers=0", "--data.val_split=", "--optim.lr=0.05",
        "--epochs=1", "--max_steps=3"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two torchrun agents and two training processes (about 20 s on 2 cores)
def test_two_nodes_train_in_step_and_end_with_identical_parameters(tmp_path):
    data = tmp_path / "gestures"
    generate_gestures(data, per_class=2, seed=0, size=56, progress=False)
    out = tmp_path / "run"
    script = tmp_path / "train_and_dump.py"
    script.write_text(
        "import os, sys, torch\n"
        "from streamact.engine.config import load_config\n"
        "from streamact.engine.trainer import Trainer\n"
        "from streamact.engine import distributed as dist\n"
        f"cfg = load_config(None, {TINY!r} + ['--data.root={data}', '--out_dir={out}'])\n"
        "t = Trainer(cfg, progress=False)\n"
        "before = torch.cat([p.detach().flatten().clone() for p in t.model.parameters()])\n"
        "t.fit()\n"
        "after = torch.cat([p.detach().flatten() for p in t.model.parameters()])\n"
        "info = {k: int(os.environ[k]) for k in ('RANK', 'LOCAL_RANK', 'GROUP_RANK', 'WORLD_SIZE')}\n"
        f"torch.save({{'params': after, 'moved': not torch.equal(before, after), 'steps': t.step, **info}}, "
        f"'{tmp_path}/rank' + str(dist.rank()) + '.pt')\n")
    port = free_port()
    # Gloo and the agents talk over loopback only, whatever this machine's hostname resolves to.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
               "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=streamact-test",
               "--local_addr=127.0.0.1", "--max_restarts=0", str(script)]
    nodes = [subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try:
        logs = [node.communicate(timeout=300)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(log[-2000:] for log in logs)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert [(r["RANK"], r["LOCAL_RANK"], r["WORLD_SIZE"]) for r in ranks] == [(0, 0, 2), (1, 0, 2)]
    assert sorted(r["GROUP_RANK"] for r in ranks) == [0, 1]  # one process on each of two nodes
    assert all(r["moved"] and r["steps"] == 3 for r in ranks)  # both trained, in step
    assert torch.equal(ranks[0]["params"], ranks[1]["params"])
    assert (out / "last.pt").exists()
