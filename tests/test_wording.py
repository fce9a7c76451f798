"""Docstrings, comments and docs cite papers by title, never by the project's internal reading-list numbers."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INTERNAL = re.compile(r"\bseeds? 00\d|\bREFERENCE\b|shared/seeds")


def test_sources_and_docs_cite_papers_by_title():
    files = [*sorted((ROOT / "src").rglob("*.py")), *sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    hits = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            for path in files
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if INTERNAL.search(line)]
    assert not hits, "\n".join(hits)
