"""Run code in a fresh interpreter where torch, torchvision and timm cannot be imported.

An import hook raises ImportError and records each attempt; at exit the interpreter prints ``IMPORT ATTEMPTS:
[...]`` on stderr, so an import anywhere on the path, even one caught and worked around, shows. Import as ``from
no_torch import ...`` (the tests folder is on the path while pytest runs).
"""
import os
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
NO_ATTEMPTS = "IMPORT ATTEMPTS: []"

BLOCK_TORCH = textwrap.dedent("""
    import atexit, sys
    attempts = []

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision", "timm"):
                attempts.append(name)
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)

    sys.meta_path.insert(0, NoTorch())
    atexit.register(lambda: print("IMPORT ATTEMPTS:", sorted(set(attempts)), file=sys.stderr))
""")


def without_torch(code: str) -> str:
    """`code` (dedented) preceded by the import hook, for ``python -c``."""
    return BLOCK_TORCH + textwrap.dedent(code)


def lean_env(cache_dir: Path) -> dict:
    """The environment of such an interpreter: this checkout's sources, an OpenVINO cache of the test's own."""
    return {**os.environ, "PYTHONPATH": str(SRC), "STREAMACT_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1"}
