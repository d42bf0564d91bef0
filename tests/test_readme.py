"""The README's quick start runs as printed (from the zoo alone) and plays real episodes."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_quick_start_runs_as_printed():
    text = README.read_text()
    quick = text[text.index("## Quick start"):text.index("## Results")]
    blocks = re.findall(r"```python\n(.*?)```", quick, re.S)
    assert len(blocks) == 1
    scope: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(compile(blocks[0], str(README), "exec"), scope)  # noqa: S102 (our own README)
    returns = np.asarray(scope["out"]["returns"])
    assert returns.shape == (3, 2) and np.all(returns >= 0)
    assert printed.getvalue().strip()


def test_the_front_door_names_no_path_outside_the_repository():
    assert "../" not in README.read_text()
