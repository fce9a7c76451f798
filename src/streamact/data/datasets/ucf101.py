"""UCF-101: `classInd.txt` and the three official train / test split lists.

Files::

    ucfTrainTestlist/classInd.txt      "1 ApplyEyeMakeup"  (1-based index, name)
    ucfTrainTestlist/trainlist01.txt   "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    ucfTrainTestlist/testlist01.txt    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"   (class from the folder)
    UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi
"""
from __future__ import annotations

from pathlib import Path

from streamact.data.datasets.common import AnnotationError, BadLines, label_index, read_lines
from streamact.data.records import VideoRecord

__all__ = ["parse_ucf101", "parse_class_ind"]


def parse_class_ind(class_ind: str | Path) -> list[str]:
    """Read `classInd.txt` ("<1-based index> <name>" lines) into names ordered by 0-based index.

    Raises:
        AnnotationError: a malformed line, a repeated index or name, or indices that are not 1..N.
    """
    by_index: dict[int, str] = {}
    for line, text in read_lines(class_ind):
        fields = text.split()
        if len(fields) != 2 or not fields[0].isdigit():
            raise AnnotationError(class_ind, line, f"expected '<index> <class name>', got {text!r}")
        index, name = int(fields[0]), fields[1]
        if index in by_index or name in by_index.values():
            raise AnnotationError(class_ind, line, f"class index {index} or name {name!r} listed twice")
        by_index[index] = name
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        raise AnnotationError(class_ind, None, f"class indices are not 1..{len(by_index)}")
    return [by_index[i] for i in range(1, len(by_index) + 1)]


def parse_ucf101(
    split_file: str | Path, class_ind: str | Path, videos_root: str | Path
) -> tuple[list[VideoRecord], list[str]]:
    """Parse one UCF-101 split list (trainlist0N.txt with labels, or testlist0N.txt without).

    Args:
        split_file: the split list.
        class_ind: classInd.txt.
        videos_root: the `UCF-101` folder holding the class folders.

    Returns:
        (records, class_names) with 0-based labels. Test entries take the class of their folder.

    Raises:
        AnnotationError: a malformed line, a label outside 1..N, a class folder that is not a known class, or a
            label that contradicts the folder.
    """
    class_names = parse_class_ind(class_ind)
    class_to_idx = {name: i for i, name in enumerate(class_names)}
    videos_root = Path(videos_root)
    records = []
    bad = BadLines(split_file)
    for line, text in read_lines(split_file):
        with bad.catch():
            fields = text.split()
            if len(fields) not in (1, 2) or "/" not in fields[0]:
                raise AnnotationError(split_file, line, f"expected '<Class>/<video>.avi [label]', got {text!r}")
            relative = fields[0]
            folder_class = relative.split("/", 1)[0]
            label = label_index(folder_class, class_to_idx, split_file, line)
            if len(fields) == 2:
                if not fields[1].isdigit() or not 1 <= int(fields[1]) <= len(class_names):
                    raise AnnotationError(split_file, line, f"label {fields[1]!r} is not in 1..{len(class_names)}")
                if int(fields[1]) - 1 != label:
                    raise AnnotationError(
                        split_file, line, f"label {fields[1]} ({class_names[int(fields[1]) - 1]}) contradicts "
                        f"folder {folder_class!r}"
                    )
            meta = {"id": Path(relative).stem, "label_name": folder_class}
            records.append(VideoRecord(path=videos_root / relative, label=label, meta=meta))
    bad.check(records, class_names)
    return records, class_names
