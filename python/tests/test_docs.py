"""The documentation's Python examples run: every ```python block of
README.md and docs/*.md, each in a fresh namespace and a directory of its
own, as written. A block is left out only where the text just before it
says the documentation test "does not run this block" and why (the shell
blocks are tests/docs.rs's)."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOT_RUN = "does not run this block"


def _documents():
    return [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))


def _python_blocks():
    """(where, code, left out) of every ```python block."""
    found = []
    for doc in _documents():
        text = doc.read_text()
        prose_start = 0
        for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
            before = " ".join(text[prose_start : match.start()][-600:].split())
            prose_start = match.end()
            if match.group(1) != "python":
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{doc.relative_to(REPO)}:{line}", match.group(2), NOT_RUN in before))
    return found


BLOCKS = _python_blocks()


def test_the_documents_have_python_examples():
    # README's, the manual's From Python and its digits block, the
    # snapshots' line. Left out: exactly the blocks that need a package
    # gputrain does not depend on (scikit-learn, matplotlib).
    assert len(BLOCKS) >= 4, BLOCKS
    assert [where for where, _, left_out in BLOCKS if left_out] == [
        where for where, code, _ in BLOCKS if "sklearn" in code or "matplotlib" in code
    ]


@pytest.mark.parametrize("where,code", [(w, c) for w, c, out in BLOCKS if not out])
def test_documented_python_runs(where, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        exec(compile(code, where, "exec"), {"__name__": "__docs__"})
    except Exception as e:  # pragma: no cover - the message is the point
        pytest.fail(f"{where}: {type(e).__name__}: {e}")
