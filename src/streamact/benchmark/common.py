"""What every benchmark report shares: the machine description and the report files.

A report is a Markdown body followed by the machine it ran on (CPU model, cores, the ISA extensions that decide CPU
inference speed: AVX-512, its bf16 and VNNI instructions, AMX) and the exact command. `streamact bench` writes it
to its run folder; `write_section` also replaces the benchmark's own section of the repository's docs/RESULTS.md.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from streamact.errors import UserError

__all__ = ["machine_info", "machine_description", "report", "write_section", "markdown_table", "RESULTS",
           "ISA_FLAGS"]

# The repository's results file, found from the package's location in a source checkout (src/streamact/...), so
# it does not depend on the working directory. An installed package has none.
RESULTS = Path(__file__).resolve().parents[3] / "docs" / "RESULTS.md"
HEADER = ("# Results\n\nEvery number below was measured on the machine described in its section, by the command "
          "written beside it. Benchmarks rewrite only their own section.\n")

# /proc/cpuinfo flag -> what it enables. Absolute frames/s differ 2.4x between two 2-core hosts of this kind, so
# a number is only comparable on a CPU with the same extensions.
ISA_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_bf16": "AVX-512 bf16",
    "avx512_vnni": "AVX-512 VNNI (int8)",
    "amx_bf16": "AMX bf16",
    "amx_int8": "AMX int8",
}


def _cpuinfo_field(name: str, text: str) -> str | None:
    match = re.search(rf"^{name}\s*:\s*(.*)$", text, re.M)
    return match.group(1).strip() if match else None


def machine_info(cpuinfo: str | None = None) -> dict:
    """The machine a benchmark runs on, as a JSON-able dict.

    Args:
        cpuinfo: text of /proc/cpuinfo (default: read it; empty on systems without one).

    Returns:
        ``cpu`` (model name), ``cores`` (logical CPUs), ``isa`` (names of the `ISA_FLAGS` the CPU has, in that
        order), ``python``, ``torch``, ``commit`` (short hash, or None outside a git checkout) and ``time`` (UTC).
    """
    import torch

    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.exists() else ""
    flags = set((_cpuinfo_field("flags", cpuinfo) or "").split())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {
        "cpu": _cpuinfo_field("model name", cpuinfo) or platform.processor() or "unknown CPU",
        "cores": os.cpu_count(),
        "isa": [label for flag, label in ISA_FLAGS.items() if flag in flags],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "commit": commit or None,
        "time": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
    }


def machine_description(info: dict | None = None) -> str:
    """One line for a report: CPU, cores, ISA extensions, versions, commit and time (`machine_info`)."""
    m = info or machine_info()
    return (f"{m['cpu']}, {m['cores']} cores, ISA: {', '.join(m['isa']) or 'none of ' + ', '.join(ISA_FLAGS.values())}; "
            f"Python {m['python']}, torch {m['torch']}, commit {m['commit'] or 'n/a'}, {m['time']}")


def report(body: str, command: str, machine: dict | None = None) -> str:
    """A benchmark's Markdown report: its body, then the machine and the exact command that produced it."""
    return f"{body.rstrip()}\n\nMachine: {machine_description(machine)}  \nCommand: `{command}`\n"


def write_section(name: str, body: str, command: str | None = None, *, machine: dict | None = None,
                  path: Path | None = None) -> Path:
    """Replace (or append) the section `name` of the repository's docs/RESULTS.md with `report(body, ...)`.

    Raises:
        UserError: no docs/ folder next to the package (an installed package, not a source checkout).
    """
    path = path or RESULTS
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: no docs folder to update; updating the results needs a source checkout "
                        "of streamact (pip install -e .)")
    command = command or "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    block = f"<!-- section:{name} -->\n{report(body, command, machine).rstrip()}\n<!-- /section:{name} -->"
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(rf"<!-- section:{re.escape(name)} -->.*?<!-- /section:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    return path


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{row.get(c):.3f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
