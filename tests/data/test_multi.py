import numpy as np
import pytest
import torch

from streamact.data.multi import join_records, split_by_dataset
from streamact.data.records import VideoRecord


def test_join_records_keeps_local_labels_and_routes_by_index():
    ucf = [VideoRecord("u0.mp4", 1, meta={"id": "u0"}), VideoRecord("u1.mp4", 0)]
    hmdb = [VideoRecord("h0.mp4", 2)]
    joint = join_records({"ucf": (ucf, ["a", "b"]), "hmdb": (hmdb, ["x", "y", "z"])})
    assert joint.class_sizes == (2, 3) and joint.names == ["ucf", "hmdb"]
    assert [r.label for r in joint.records] == [1, 0, 2]  # labels stay in their dataset's classes
    assert joint.dataset_ids.tolist() == [0, 0, 1]
    assert joint.records[0].meta == {"id": "u0", "dataset_id": 0, "dataset": "ucf"}
    assert ucf[0].meta == {"id": "u0"}  # inputs untouched
    # A shuffled batch: sample indices -> dataset ids -> positions per head.
    batch_index = torch.tensor([2, 0, 1])
    ids = joint.dataset_of(batch_index)
    assert ids.tolist() == [1, 0, 0]
    per_head = split_by_dataset(ids, 2)
    assert [p.tolist() for p in per_head] == [[1, 2], [0]]
    assert [p.tolist() for p in split_by_dataset(torch.tensor([0, 0]), 2)] == [[0, 1], []]


def test_join_records_errors():
    with pytest.raises(ValueError, match="outside"):
        join_records({"a": ([VideoRecord("x.mp4", 3)], ["only"])})
    with pytest.raises(ValueError, match="no records"):
        join_records({"a": ([], ["c"])})
    with pytest.raises(ValueError, match="no datasets"):
        join_records({})
    with pytest.raises(ValueError, match="dataset ids"):
        split_by_dataset(torch.tensor([0, 2]), 2)
    assert isinstance(join_records({"a": ([VideoRecord("x.mp4", 0)], ["c"])}).dataset_ids, np.ndarray)
