"""Run-folder helpers: atomic writes."""

import os
import stat

from coplay.runs import atomic_write_text


def test_atomic_write_replaces_the_file_and_gives_it_the_usual_mode(tmp_path):
    path = tmp_path / "sub" / "report.md"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["report.md"]  # no temporary left
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # as open() would, not 0600
