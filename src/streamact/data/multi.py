"""Joint training on several datasets with one classifier head per dataset (LIGAR, section IV.i).

Batches are drawn from the union of the datasets' samples, but each dataset keeps its own label space and head, so
similar classes of different datasets never compete. The data side is just bookkeeping: the records of all datasets
in one list (labels stay local to their dataset) plus the dataset of every index, which the trainer looks up from
the batch's sample indices to route each sample to its head.

    join_records({"ucf": (recs, names), "hmdb": (recs, names)}) ─► JointRecords.records ─► VideoDataset ─► loader
    batch.index ─► JointRecords.dataset_of ─► split_by_dataset ─► head d scores samples of dataset d
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from streamact.data.records import VideoRecord

__all__ = ["JointRecords", "join_records", "split_by_dataset"]


@dataclass
class JointRecords:
    """The records of several datasets, concatenated in dataset order.

    Attributes:
        records: every record, labelled in its own dataset's classes; `meta["dataset_id"]` and `meta["dataset"]`
            name its dataset.
        dataset_ids: (N,) dataset number of every record.
        names: dataset names, in head order.
        class_names: class names of every dataset, in head order.
    """

    records: list[VideoRecord]
    dataset_ids: np.ndarray
    names: list[str]
    class_names: list[list[str]]

    @property
    def class_sizes(self) -> tuple[int, ...]:
        """Classes per dataset: the head sizes (e.g. `create_model(..., num_classes=joint.class_sizes)`)."""
        return tuple(len(c) for c in self.class_names)

    def dataset_of(self, index: torch.Tensor) -> torch.Tensor:
        """Dataset numbers (B,) of the samples with dataset indices `index` (B,) (a batch's sample indices)."""
        return torch.from_numpy(self.dataset_ids)[index.long()]


def join_records(parts: Mapping[str, tuple[Sequence[VideoRecord], Sequence[str]]]) -> JointRecords:
    """Concatenate datasets for joint multi-head training.

    Args:
        parts: dataset name -> (records, class names), in head order (e.g. the output of `build_records`).

    Returns:
        The `JointRecords`; the input records are not modified (copies carry the dataset in `meta`).

    Raises:
        ValueError: no dataset, an empty dataset, or a label outside its dataset's classes.
    """
    if not parts:
        raise ValueError("join_records: no datasets")
    records, ids, names, class_names = [], [], [], []
    for number, (name, (recs, classes)) in enumerate(parts.items()):
        if len(recs) == 0:
            raise ValueError(f"join_records: dataset {name!r} has no records")
        # Stream records (label -1) carry their labels per frame in meta["segments"].
        bad = [r.label for r in recs if not 0 <= r.label < len(classes) and "segments" not in r.meta]
        if bad:
            raise ValueError(f"join_records: dataset {name!r} has labels {sorted(set(bad))[:5]} outside its "
                             f"{len(classes)} classes")
        records += [dataclasses.replace(r, meta={**r.meta, "dataset_id": number, "dataset": name}) for r in recs]
        ids += [number] * len(recs)
        names.append(name)
        class_names.append(list(classes))
    return JointRecords(records, np.asarray(ids, dtype=np.int64), names, class_names)


def split_by_dataset(dataset_ids: torch.Tensor, num_datasets: int) -> list[torch.Tensor]:
    """Positions in the batch of each dataset's samples, for scoring them with that dataset's head.

    Args:
        dataset_ids: (B,) dataset number of every sample.
        num_datasets: number of heads.

    Returns:
        `num_datasets` index tensors (possibly empty) that together cover the batch once.

    Raises:
        ValueError: a dataset number outside [0, num_datasets).
    """
    if len(dataset_ids) and (int(dataset_ids.min()) < 0 or int(dataset_ids.max()) >= num_datasets):
        raise ValueError(f"split_by_dataset: dataset ids must be in [0, {num_datasets})")
    return [torch.nonzero(dataset_ids == d).flatten() for d in range(num_datasets)]
