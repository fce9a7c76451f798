"""Start a detector with more clips per tubelet (a larger K) from a trained one, computing exactly what it did
(`streamact.models.amma.with_more_clips`), as the initial weights of a fine-tune:

    python bench/detection_more_clips.py runs/detection_flip2/last.pt --clips 4 --out runs/clips4_init.safetensors
    streamact train configs/detection_amma_effl0.yaml --data.num_clips=4 \\
        --model.init_weights=runs/clips4_init.safetensors ...
"""
from __future__ import annotations

import argparse

from safetensors.torch import save_file

from streamact.models._pretrained import load_state_dict
from streamact.models.amma import with_more_clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a detection checkpoint or weights file")
    parser.add_argument("--clips", type=int, required=True, help="K of the new detector")
    parser.add_argument("--out", required=True, help="where to write its initial weights (.safetensors)")
    args = parser.parse_args()
    try:
        state = with_more_clips(load_state_dict(args.source), args.clips)
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: {e}") from e
    save_file({k: v.contiguous() for k, v in state.items()}, args.out, metadata={"source": args.source})
    print(f"wrote {args.out}: K = {args.clips} from {args.source}")


if __name__ == "__main__":
    main()
