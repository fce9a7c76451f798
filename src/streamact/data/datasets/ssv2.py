"""Something-Something v2: JSON label and annotation files, one webm per video.

Files::

    labels.json        {"Approaching something with your camera": "0", ...}  template (no brackets) -> index
    train.json         [{"id": "78687", "label": "holding potato next to vicks vaporub bottle",
                         "template": "Holding [something] next to [something]", "placeholders": [...]}, ...]
    validation.json    same as train.json
    test.json          [{"id": "1420"}, ...]                                   (unlabelled)
    20bn-something-something-v2/<id>.webm

The class of an entry is its template with the square brackets removed (as in the TSM preparation script).
"""
from __future__ import annotations

from pathlib import Path

from streamact.data.datasets.common import AnnotationError, BadLines, iter_json_items, label_index, resolve_video
from streamact.data.records import VideoRecord

__all__ = ["parse_ssv2"]


def parse_ssv2(
    annotation_json: str | Path, labels_json: str | Path, videos_root: str | Path
) -> tuple[list[VideoRecord], list[str]]:
    """Parse one Something-Something v2 split.

    Args:
        annotation_json: train.json, validation.json or test.json.
        labels_json: labels.json mapping template names to class indices.
        videos_root: folder holding `<id>.webm`.

    Returns:
        (records, class_names); entries without a template (the test split) get label -1.

    Raises:
        AnnotationError: invalid JSON, an entry without an id, a template that is not a known class, or class
            indices in labels.json that are not 0..N-1.
    """
    by_index: dict[int, str] = {}
    for line, name, value in iter_json_items(labels_json):
        if name is None:
            raise AnnotationError(labels_json, line, "expected an object {template: index}")
        try:
            index = int(value)
        except (TypeError, ValueError):
            raise AnnotationError(labels_json, line, f"class index {value!r} of {name!r} is not an integer") from None
        if index in by_index:
            raise AnnotationError(labels_json, line, f"class index {index} used twice")
        by_index[index] = name
    if sorted(by_index) != list(range(len(by_index))):
        raise AnnotationError(labels_json, None, f"class indices are not 0..{len(by_index) - 1}")
    class_names = [by_index[i] for i in range(len(by_index))]
    class_to_idx = {name: i for i, name in enumerate(class_names)}

    videos_root = Path(videos_root)
    records = []
    bad = BadLines(annotation_json)
    for line, _, entry in iter_json_items(annotation_json):
        with bad.catch():
            if not isinstance(entry, dict) or not str(entry.get("id", "")).strip():
                raise AnnotationError(annotation_json, line, f"expected an object with an 'id', got {entry!r}")
            video_id = str(entry["id"]).strip()
            template = entry.get("template")
            if template is None:
                label, name = -1, None
            else:
                name = str(template).replace("[", "").replace("]", "")
                label = label_index(name, class_to_idx, annotation_json, line)
            meta = {"id": video_id, "label_name": name, "placeholders": entry.get("placeholders")}
            records.append(VideoRecord(path=resolve_video(videos_root, video_id), label=label, meta=meta))
    bad.check(records, class_names)
    return records, class_names
