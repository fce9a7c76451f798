import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, Dataset

from streamact.data.acs import ACSClipSampler, ACSScoreStore, segment_probabilities
from streamact.data.records import VideoRecord
from streamact.data.sampling import ClipSampler


def test_segment_probabilities_eq1_hand_computed():
    # Positive parts [1, 0, 0, 3]; windows of 2: sums [1, 0, 3], +1 each: [2, 1, 4] over 7.
    p = segment_probabilities(np.array([1.0, -2.0, 0.0, 3.0]), 2)
    assert p == pytest.approx([2 / 7, 1 / 7, 4 / 7])
    # All scores negative: every term is zero, so sampling is uniform.
    assert segment_probabilities(np.full(5, -3.0), 3) == pytest.approx([1 / 3] * 3)
    with pytest.raises(ValueError, match="window"):
        segment_probabilities(np.zeros(3), 4)


def _store(**kw) -> ACSScoreStore:
    return ACSScoreStore(3, warmup_epochs=0, **kw)


def test_update_rule_eq2():
    store = _store()
    # Clip of video 0 decoded frames 2 and 4: covers 2..4; correct with P̂ = 0.8.
    store.update([0], [[2, 4]], [1], [0.8], [1], num_frames=[8])
    # Clip covering 3..5, wrong with P̂ = 0.5.
    store.update(torch.tensor([0]), torch.tensor([[5, 3]]), torch.tensor([2]), torch.tensor([0.5]),
                 torch.tensor([1]), num_frames=torch.tensor([8]))
    assert store.scores(0) is None  # buffered until sync
    assert store.sync() == 2
    assert store.scores(0) == pytest.approx([0, 0, 0.8, 0.3, 0.3, -0.5, 0, 0])
    assert store.scores(1) is None
    with pytest.raises(ValueError, match="outside"):
        store.update([0], [[8]], [0], [1.0], [0], num_frames=[8])


def test_readiness_at_70_percent_and_warmup():
    store = ACSScoreStore(2, warmup_epochs=1)
    store.update([0], [[0, 9]], [0], [1.0], [0], num_frames=[10])
    store.sync()
    assert store.scores(0) is None  # the first epoch is not collected
    store.set_epoch(1)
    store.update([0], [[0, 5]], [0], [1.0], [0], num_frames=[10])  # 6 of 10 frames scored
    store.sync()
    assert not store.is_ready(0) and store.snapshot() == {} and store.ready_fraction() == 0
    store.update([0], [[6]], [1], [0.25], [0], num_frames=[10])  # 7 of 10
    store.sync()
    assert store.is_ready(0) and store.ready_fraction() == pytest.approx(0.5)
    snap = store.snapshot()
    assert list(snap) == [0] and snap[0] == pytest.approx([1] * 6 + [0] * 4)  # negative -0.25 clipped to 0


def test_readiness_counts_the_record_window():
    records = [VideoRecord("a.mp4", 0, start=10, end=20)]
    store = ACSScoreStore.from_records(records, warmup_epochs=0)
    store.update([0], [[10, 16]], [0], [1.0], [0], num_frames=[100])  # 7 of the 10 usable frames
    store.sync()
    assert store.is_ready(0)


def test_sampler_follows_eq1_and_falls_back():
    sampler = ACSClipSampler(clip_len=2, frame_interval=2)  # windows of 4 frames
    scores = np.array([0, 0, 0, 0, 0, 0, 6, 0], np.float32)  # 5 windows; those holding frame 6 have sum 6
    sampler.snapshot = {0: scores}
    expected = segment_probabilities(scores, 4)  # [1, 1, 1, 7, 7] / 17
    assert expected == pytest.approx(np.array([1, 1, 1, 7, 7]) / 17)
    rng = np.random.default_rng(0)
    starts = [sampler(8, train=True, rng=rng, video=0).indices[0] for _ in range(6000)]
    freq = np.bincount(starts, minlength=5)[:5] / len(starts)
    assert freq == pytest.approx(expected, abs=0.02)
    info = sampler(8, train=True, rng=rng, video=0)
    assert info.indices[1] - info.indices[0] == 2 and info.clip_len == 2

    base = ClipSampler(mode="dense", clip_len=2, frame_interval=2)
    # Not ready, short (loop-padded) and test-time samples are exactly the base sampler's.
    for n, video, train in ((8, 1, True), (3, 0, True), (8, 0, False)):
        sampler.snapshot = {0: np.zeros(n, np.float32) + 5}
        got = sampler(n, train=train, rng=np.random.default_rng(1), video=video)
        want = base(n, train=train, rng=np.random.default_rng(1))
        assert got.indices == want.indices
    # All scores negative in the store: the snapshot holds zeros and sampling is uniform, without error.
    store = _store()
    store.update([0] * 3, [[0, 3], [3, 6], [5, 9]], [1, 1, 1], [0.9, 0.9, 0.9], [0, 0, 0], num_frames=[10] * 3)
    store.sync()
    sampler.snapshot = store.snapshot()
    assert sampler.snapshot[0].max() == 0
    starts = [sampler(10, train=True, rng=rng, video=0).indices[0] for _ in range(2000)]
    assert np.bincount(starts, minlength=7) / 2000 == pytest.approx([1 / 7] * 7, abs=0.04)
    # Sampling inside a record window [start, end).
    sampler.snapshot = {0: np.array([0] * 10 + [9] * 4 + [0] * 6, np.float32)}
    got = {sampler(20, train=True, rng=rng, video=0, start=10, end=16).indices[0] for _ in range(200)}
    assert got <= {10, 11, 12} and 10 in got
    with pytest.raises(ValueError, match="dense"):
        ACSClipSampler(mode="segment")


class _IndexDataset(Dataset):
    """The piece of VideoDataset that matters here: the sampler is called with the sample's index."""

    def __init__(self, sampler: ACSClipSampler) -> None:
        self.sampler = sampler
        self.epoch = 0

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng([0, self.epoch, index])
        return torch.tensor(self.sampler(20, train=True, rng=rng, video=index).indices)


def test_snapshot_reaches_dataloader_workers():
    sampler = ACSClipSampler(clip_len=2, frame_interval=2)
    dataset = _IndexDataset(sampler)
    loader = DataLoader(dataset, batch_size=2, num_workers=2)
    first = torch.cat(list(loader))  # no snapshot: uniform
    # A snapshot set between epochs reaches the re-created workers: video 1 is pinned to the window at frame 12.
    scores = np.zeros(20, np.float32)
    scores[12:16] = 1e9
    sampler.snapshot = {1: scores}
    dataset.epoch = 0
    second = torch.cat(list(loader))
    assert second[1].tolist() == [12, 14]
    for video in (0, 2, 3):  # same seeds, not in the snapshot: unchanged
        assert torch.equal(second[video], first[video])
    assert all(torch.equal(second[v], torch.tensor(sampler(20, train=True, rng=np.random.default_rng([0, 0, v]),
                                                             video=v).indices)) for v in range(4))


def test_state_round_trip(tmp_path):
    store = _store()
    store.update([2, 0, 1], [[0, 4], [0, 2], [0, 1]], [1, 0, 0], [0.6, 0.7, 0.9], [1, 1, 0], num_frames=[5, 3, 4])
    with pytest.raises(RuntimeError, match="sync"):
        store.state_dict()
    store.sync()
    store.set_epoch(4)
    torch.save(store.state_dict(), tmp_path / "acs.pt")
    restored = _store()
    restored.load_state_dict(torch.load(tmp_path / "acs.pt", weights_only=True))
    assert restored.epoch == 4
    for video in (0, 1, 2):
        assert restored.scores(video) == pytest.approx(store.scores(video))
    # Video 1 has 2 of 4 frames scored: not ready after the round trip either.
    assert restored.snapshot().keys() == store.snapshot().keys() == {0, 2}
    assert restored.ready_fraction() == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="outside"):
        ACSScoreStore(1).load_state_dict(store.state_dict())


def _ddp_worker(rank: int, port: int, queue) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        store = ACSScoreStore(2, warmup_epochs=0)
        # Each rank saw a different clip of video 0 (rank 1 also one of video 1).
        if rank == 0:
            store.update([0], [[0, 1]], [0], [0.5], [0], num_frames=[4])
        else:
            store.update([0, 1], [[1, 3], [0, 0]], [0, 1], [0.25, 1.0], [0, 0], num_frames=[4, 2])
        applied = store.sync()
        queue.put((rank, applied, store.scores(0).tolist(), store.scores(1).tolist()))
    finally:
        dist.destroy_process_group()


def test_sync_gathers_across_ddp_ranks():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("fork")  # children inherit the imported modules: no second torch import
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    for _, applied, video0, video1 in results:  # both ranks hold the union of the updates
        assert applied == 3
        assert video0 == pytest.approx([0.5, 0.75, 0.25, 0.25])
        assert video1 == pytest.approx([-1.0, 0.0])
