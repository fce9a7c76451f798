"""Tubelet decoding: peaks, floor for the row, movement and per-clip sizes, scaling to source pixels."""
import ast
import inspect

import numpy as np

from streamact.inference import detection_decode
from streamact.inference.detection_decode import decode_tubelets, key_frames, local_maxima
from streamact.losses.detection import tubelet_targets


def test_no_torch_in_decoding():
    tree = ast.parse(inspect.getsource(detection_decode))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
             for a in n.names} | {n.module.split(".")[0] for n in ast.walk(tree)
                                  if isinstance(n, ast.ImportFrom) and n.module}
    assert "torch" not in names


def test_local_maxima():
    hm = np.array([[[0.5, 0.1, 0.0, 0.2, 0.1], [0.3, 0.4, 0.0, 0.1, 0.9], [0.0, 0.0, 0.0, 0.0, 0.1]]])
    expected = np.zeros_like(hm)
    expected[0, 0, 0], expected[0, 1, 4] = 0.5, 0.9  # 0.2 is beaten by its diagonal neighbour 0.9
    np.testing.assert_array_equal(local_maxima(hm), expected)


def test_key_frames():
    np.testing.assert_array_equal(key_frames(20, 3, 4), [12, 16, 20])
    np.testing.assert_array_equal(key_frames(5, 3, 4), [1, 1, 5])


def test_row_is_floored_for_peaks_in_the_right_half():
    # Peak at row 2, column 7 of a 10x10 map: idx = 27; round(27 / 10) = 3 would be the wrong row.
    h = w = 10
    heat = np.zeros((1, h, w), np.float32)
    heat[0, 2, 7] = 0.9
    size = np.full((2, h, w), 2.0, np.float32)
    (t,) = decode_tubelets(heat, np.zeros((2, h, w), np.float32), size, end_frame=9, clip_len=4,
                           source_size=(h, w), top_k=1)
    np.testing.assert_allclose(t.boxes[0], [6, 1, 8, 3])  # centre (7, 2)
    assert t.label == 0 and abs(t.score - 0.9) < 1e-6 and t.key_frames.tolist() == [9]


def test_decode_inverts_targets():
    """Targets drawn for a tubelet, used as perfect predictions, decode back to its boxes (in source pixels)."""
    k, h, w, stride = 3, 12, 16, 8
    grid_boxes = np.array([[2.0, 3.0, 6.0, 9.0], [3.0, 3.0, 7.0, 9.5], [4.0, 3.0, 8.0, 11.0]])  # key centre on a cell
    t = tubelet_targets([(2, grid_boxes)], num_classes=3, num_clips=k, output_size=(h, w), max_objects=2)
    movement = np.zeros((2 * k, h, w), np.float32)
    size = np.zeros((2 * k, h, w), np.float32)
    y, x = divmod(int(t["index"][0]), w)
    movement[:, y, x] = t["movement"][0]
    for i, cell in enumerate(t["index_all"][0]):
        cy, cx = divmod(int(cell), w)
        size[2 * i:2 * i + 2, cy, cx] = t["size"][0, 2 * i:2 * i + 2]
    source = (h * stride * 2, w * stride * 2)  # the source is twice the model input
    (best, *_) = decode_tubelets(t["heatmap"], movement, size, end_frame=30, clip_len=4, source_size=source)
    assert best.label == 2 and best.score == 1.0
    np.testing.assert_allclose(best.boxes, grid_boxes * stride * 2, atol=1e-4)
    np.testing.assert_array_equal(best.key_frames, [22, 26, 30])


def test_top_k_order_and_clipping():
    h = w = 8
    heat = np.zeros((2, h, w), np.float32)
    heat[0, 1, 1], heat[1, 5, 5], heat[1, 1, 6] = 0.3, 0.8, 0.5
    size = np.full((2, h, w), 100.0, np.float32)  # huge boxes are clipped to the frame
    out = decode_tubelets(heat, np.zeros((2, h, w), np.float32), size, end_frame=1, clip_len=4,
                          source_size=(80, 80), top_k=2)
    assert [(o.label, round(o.score, 2)) for o in out] == [(1, 0.8), (1, 0.5)]
    assert out[0].boxes.min() >= 0 and out[0].boxes.max() <= 79


def test_a_negative_size_decodes_to_a_point_box_that_suppression_can_compare():
    """A blank frame (the server's warm-up) can regress sizes below zero; such boxes became x2 < x1, of zero
    '+1' area, and IoU between two of them was 0 / 0."""
    import warnings

    from streamact.inference.tubes import nms_tubelets

    h = w = 8
    heat = np.zeros((2, h, w), np.float32)
    heat[0, 3, 3], heat[1, 3, 3] = 0.6, 0.5
    size = np.full((2, h, w), -2.0, np.float32)
    tubelets = decode_tubelets(heat, np.zeros((2, h, w), np.float32), size, end_frame=4, clip_len=4,
                               source_size=(h, w), top_k=2)
    for t in tubelets:
        np.testing.assert_allclose(t.boxes[0], [3, 3, 3, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = nms_tubelets(tubelets)
    assert [round(t.score, 6) for t in kept] == [0.6, 0.0]  # the same point: the best one suppresses the other
