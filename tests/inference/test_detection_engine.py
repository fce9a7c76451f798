"""DetectionEngine: streaming steps equal the offline model, online tubes equal offline linking, every frame
answered once in both modes, warm-up, short streams, empty scenes and frames that change size."""
import numpy as np
import pytest
import torch

from streamact.errors import UserError
from streamact.inference.detection import DetectionEngine
from streamact.inference.detection_decode import decode_tubelets
from streamact.inference.runtimes import TorchRuntime
from streamact.inference.tubes import link_tubes
from streamact.models import create_model
from streamact.transforms.boxes import resize

H, W = 48, 64


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = create_model("amma_resnet18", num_classes=2, num_clips=2, clip_len=2, img_size=32).eval()
    with torch.no_grad():  # spread the untrained heatmap: distinct scores to rank and link
        model.head.center[-1].weight.mul_(100)
    return model


def _frames(n, seed=0, size=(H, W)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(n)]


def _run(model, frames, **kwargs):
    steps = []
    engine = DetectionEngine(model, min_display_score=0.0, on_step=lambda f, t: steps.append((f, t)), **kwargs)
    answered = [d for frame in frames for d in engine.push(frame)]
    tail, tubes = engine.finish()
    return steps, answered + tail, tubes


class _Recording(TorchRuntime):
    """A torch runtime that keeps every step's raw head outputs."""

    def __init__(self, model):
        super().__init__(model)
        self.outputs = []

    def step(self, frame, state):
        out, state = super().step(frame, state)
        self.outputs.append(out)
        return out, state


def test_steps_equal_the_offline_model_on_the_same_clips(model):
    frames = _frames(11)
    runtime = _Recording(model)
    steps, _, _ = _run(runtime, frames)
    assert [f for f, _ in steps] == [2, 4, 6, 8, 10, 11]  # a step per clip of t=2, the last over frames 10-11
    cfg = model.pretrained_cfg
    mean, std = np.array(cfg.mean, np.float32) * 255, np.array(cfg.std, np.float32) * 255
    x = (resize(np.stack(frames), np.zeros((0, 1, 4), np.float32), 32)[0] - mean) / std  # (N, S, S, 3)
    x = torch.from_numpy(x).permute(3, 0, 1, 2)[None]  # (1, 3, N, S, S)
    for (end, tubelets), raw in zip(steps, runtime.outputs):
        decoded = decode_tubelets(*(o[0] for o in raw), end_frame=end, clip_len=2, source_size=(H, W),
                                  min_score=0.01)
        assert [(t.label, t.score) for t in tubelets] == [(t.label, t.score) for t in decoded] and tubelets
        if end >= 4 and end % 2 == 0:  # the offline model takes K*t = 4 frames ending on a clip boundary
            with torch.no_grad():
                offline = model(x[:, :, end - 4:end])
            for a, b in zip(raw, offline):
                np.testing.assert_allclose(a, b.numpy(), atol=1e-5)


@pytest.mark.parametrize("mode", ["zero-delay", "interpolated"])
def test_online_tubes_equal_offline_linking_and_every_frame_is_answered_once(model, mode):
    steps, answered, tubes = _run(model, _frames(25), mode=mode)  # long enough for tubes to end mid-stream
    assert [d.frame for d in answered] == list(range(1, 26))
    offline = link_tubes(steps, 25)
    assert len(tubes) == len(offline) > 0

    def key(tube):
        return int(tube.frames[0]), tube.label, tube.score

    for a, b in zip(sorted(tubes, key=key), sorted(offline, key=key)):
        assert a.label == b.label and a.score == b.score
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_allclose(a.boxes, b.boxes)
    # Every tubelet is shown here (min_display_score 0): the tubes returned carry the ids drawn per frame.
    first_seen = list(dict.fromkeys(int(i) for d in answered for i in d.tube_ids))
    assert first_seen == list(range(len(first_seen)))
    assert {t.tube_id for t in tubes} <= set(first_seen)
    for d in answered:
        assert d.boxes.shape == (len(d), 4) and len(d.label_names) == len(d)
        assert (d.boxes[:, 0] >= 0).all() and (d.boxes[:, 2] <= W - 1).all() and (d.boxes[:, 3] <= H - 1).all()


def test_tube_ids_count_the_tubes_shown(model):
    frames = _frames(41, seed=3)
    steps, _, _ = _run(model, frames)
    threshold = float(np.quantile([t.score for _, tubelets in steps for t in tubelets], 0.9))  # show a few
    engine = DetectionEngine(model, min_display_score=threshold)
    answered = [d for frame in frames for d in engine.push(frame)]
    linker_ids = engine.linker._next_id  # every tubelet that started a tube took one of the linker's ids
    assert len(engine._ids) <= len(engine.linker.held_ids())  # the id map holds only tubes still linked
    tail, tubes = engine.finish()
    first_seen = list(dict.fromkeys(int(i) for d in answered + tail for i in d.tube_ids))
    assert first_seen == list(range(len(first_seen))) and 0 < len(first_seen) < linker_ids
    shown = {}  # id -> (first frame it was shown on, its label)
    for d in answered:
        for r, i in enumerate(d.tube_ids):
            shown.setdefault(int(i), (d.frame, int(d.labels[r])))
    for tube in tubes:  # a tube that was shown keeps the id and the label it was shown with
        if tube.tube_id in shown:
            frame, label = shown[tube.tube_id]
            assert label == tube.label and tube.frames[0] <= frame <= tube.frames[-1]
    ids = [t.tube_id for t in tubes]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)


def test_a_live_stream_that_does_not_keep_tubes_holds_none_of_those_that_ended(model):
    from streamact.serve.detection import DetectionStream

    frames = _frames(41, seed=3)
    keeping = DetectionEngine(model, min_display_score=0.0)
    live = DetectionStream(TorchRuntime(model), min_score=0.0)  # the server's engine
    for i, frame in enumerate(frames):
        assert keeping.push(frame)[0].to_json()["detections"] == live.push(frame, i).to_json()["detections"]
    assert keeping._tubes and not live.engine._tubes  # tubes ended mid-stream: kept by one engine only
    _, kept = keeping.finish()
    _, running = live.engine.finish()
    assert 0 < len(running) < len(kept) and {t.tube_id for t in running} <= {t.tube_id for t in kept}


def test_zero_delay_answers_each_push_and_interpolated_waits_for_the_clip(model):
    frames = _frames(6)
    zero = DetectionEngine(model, min_display_score=0.0)
    inter = DetectionEngine(model, mode="interpolated", min_display_score=0.0)
    for i, frame in enumerate(frames, start=1):
        z, d = zero.push(frame), inter.push(frame)
        assert [x.frame for x in z] == [i]
        assert [x.frame for x in d] == ([i - 1, i] if i % 2 == 0 else [])  # t = 2: one frame of delay
        if i == 1:
            assert len(z[0]) == 0  # warm-up: no step yet
        if i % 2 == 0:
            np.testing.assert_array_equal(z[0].boxes, d[-1].boxes)  # on a step frame both show the new boxes
            np.testing.assert_array_equal(z[0].tube_ids, d[-1].tube_ids)
            # Interpolated: the frame between two key frames gets the mean of the tubelet's boxes on them.
            latest = inter._latest
            assert len(latest) == len(d[-1]) > 0
            for row, (tube_id, tubelet) in enumerate(latest):
                assert d[0].tube_ids[row] == tube_id
                expected = tubelet.boxes[0] if i == 2 else (tubelet.boxes[-2] + tubelet.boxes[-1]) / 2
                np.testing.assert_allclose(d[0].boxes[row], expected, rtol=1e-6)
                np.testing.assert_array_equal(d[1].boxes[row], tubelet.boxes[-1])


def test_short_stream_empty_scene_and_size_change(model):
    steps, answered, _ = _run(model, _frames(1))  # shorter than one clip: one step at finish, padded
    assert [f for f, _ in steps] == [1] and [d.frame for d in answered] == [1]

    steps, answered, tubes = _run(model, _frames(8), min_score=0.999)  # nothing scores: no boxes, no tubes
    assert len(steps) == 4 and all(not t for _, t in steps)
    assert [d.frame for d in answered] == list(range(1, 9)) and all(len(d) == 0 for d in answered) and tubes == []

    engine = DetectionEngine(model)
    engine.push(_frames(1)[0])
    with pytest.raises(UserError, match="frame 2 is 32x24 but the stream started at 64x48"):
        engine.push(_frames(1, size=(24, 32))[0])
    engine.reset()
    assert [d.frame for d in engine.push(_frames(1, size=(24, 32))[0])] == [1]


def test_refuses_a_recognition_model():
    recognizer = create_model("tsm_efficientnet_lite0", num_classes=3, pretrained=False)
    with pytest.raises(UserError, match="not a tubelet detector"):
        DetectionEngine(recognizer)
