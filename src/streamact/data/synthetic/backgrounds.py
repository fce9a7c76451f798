"""Empty synthetic scenes (no hand) for background MixUp (`generate_backgrounds`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from streamact.data.synthetic.render import _SKIN_TONES, _background

__all__ = ["generate_backgrounds"]


def generate_backgrounds(out_dir: str | Path, *, num: int, seed: int = 0, size: int = 160) -> dict:
    """Write `num` background scenes (PNG) of the kind the gestures are filmed against, without a hand.

    Background MixUp (LIGAR, `streamact.transforms.regularizers.BackgroundMixUp`) mixes such images into training
    clips; LIGAR draws them from ImageNet, which is not available offline. Use a seed different from the dataset's
    so the scenes are new.

    Returns:
        A summary: output directory, number of images, seed, size.
    """
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(num):
        tone = int(rng.integers(len(_SKIN_TONES) - 1))
        skin = (_SKIN_TONES[tone] + (_SKIN_TONES[tone + 1] - _SKIN_TONES[tone]) * rng.random()).astype(np.float32)
        Image.fromarray(_background(rng, size, skin).astype(np.uint8)).save(out / f"background_{i:04d}.png")
    return {"out_dir": str(out), "num": num, "seed": seed, "size": size}

