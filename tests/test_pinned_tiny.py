"""Every `tiny` preset pinned: the numbers each writes (metrics rows, evaluations, manifests)
equal the ones recorded in ``tests/pinned/tiny_numbers.json`` before the house-keeping
refactor (issue 19). A refactor that changes behaviour — a key used in another order, a loss
term summed differently beyond float noise, a dropped metric — fails here by name.

Regenerate (only after a deliberate change of behaviour, said so in the commit):
``COPLAY_REPIN=1 python -m pytest tests/test_pinned_tiny.py``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from coplay.cli import main

PINNED = Path(__file__).parent / "pinned" / "tiny_numbers.json"
# wall-clock fields and anything that is not a result of the computation
VOLATILE = {"time_s", "train_s", "collect_s", "train_time_s"}
RTOL, ATOL = 1e-4, 1e-5


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _metrics(folder: Path) -> list:
    return [_strip(json.loads(x)) for x in (folder / "metrics.jsonl").read_text().splitlines()
            if x.strip()]


def _json(folder: Path, name: str):
    return _strip(json.loads((folder / name).read_text()))


def _runs(tmp: Path) -> dict:
    """Run every tiny preset through the CLI; the numbers each run wrote."""
    out: dict = {}

    def run(name, argv):
        assert main(argv) == 0, name
        return tmp / name

    d = run("a2c", ["ipd", "train", "--preset", "tiny", "--seed", "1", "--out", str(tmp / "a2c")])
    out["ipd_a2c"] = {"metrics": _metrics(d), "eval": _json(d, "eval.json")}
    d = run("a2c_step1", ["ipd", "train", "--preset", "tiny", "--seed", "2", "--stage", "step1",
                          "--out", str(tmp / "a2c_step1")])
    out["ipd_a2c_step1"] = {"metrics": _metrics(d), "eval": _json(d, "eval.json")}
    d = run("ppi", ["ipd", "train", "--algo", "ppi", "--preset", "tiny", "--seed", "2",
                    "--eval-episodes", "16", "--out", str(tmp / "ppi")])
    out["ipd_ppi"] = {"metrics": _metrics(d), "eval": _json(d, "eval.json")}
    d = run("ppo", ["overcooked", "train", "--preset", "tiny", "--layout", "cramped_room",
                    "--seed", "0", "--out", str(tmp / "ppo")])
    out["overcooked_ppo"] = {"metrics": _metrics(d), "eval": _json(d, "eval.json")}
    d = run("hsp", ["populations", "train", "--preset", "tiny", "--seed", "3",
                    "--out", str(tmp / "hsp")])
    out["population_hsp"] = {"metrics": _metrics(d), "manifest": _json(d, "manifest.json"),
                             "crossplay": _json(d, "crossplay.json")}
    d = run("mep", ["populations", "train", "--kind", "mep", "--preset", "tiny", "--seed", "0",
                    "--out", str(tmp / "mep")])
    out["population_mep"] = {"metrics": _metrics(d), "manifest": _json(d, "manifest.json")}
    d = run("mep2", ["populations", "train", "--kind", "mep-adaptive", "--pop", str(tmp / "mep"),
                     "--preset", "tiny", "--seed", "0", "--out", str(tmp / "mep2")])
    out["mep_adaptive"] = {"metrics": _metrics(d), "eval": _json(d, "eval.json")}
    return out


def _compare(got, want, where: str, errors: list[str]) -> None:
    if isinstance(want, dict):
        if not isinstance(got, dict):
            errors.append(f"{where}: {type(got).__name__} instead of a dict")
            return
        for k in sorted(set(want) | set(got)):
            if k not in got:
                errors.append(f"{where}.{k}: missing")
            elif k not in want:
                errors.append(f"{where}.{k}: new key (not pinned)")
            else:
                _compare(got[k], want[k], f"{where}.{k}", errors)
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            errors.append(f"{where}: length {len(got) if isinstance(got, list) else got!r} "
                          f"instead of {len(want)}")
            return
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _compare(g, w, f"{where}[{i}]", errors)
    elif isinstance(want, float) and isinstance(got, (int, float)) and \
            not isinstance(got, bool):
        if not (math.isclose(got, want, rel_tol=RTOL, abs_tol=ATOL)
                or (math.isnan(got) and math.isnan(want))):
            errors.append(f"{where}: {got!r} instead of {want!r}")
    elif got != want:
        errors.append(f"{where}: {got!r} instead of {want!r}")


@pytest.mark.slow
def test_every_tiny_preset_gives_the_pinned_numbers(tmp_path):
    # the JSON form, as pinned, with the run folders' paths made relative
    got = json.loads(json.dumps(_runs(tmp_path)).replace(str(tmp_path), "<tmp>"))
    if os.environ.get("COPLAY_REPIN"):
        PINNED.parent.mkdir(exist_ok=True)
        PINNED.write_text(json.dumps(got, indent=1) + "\n")
        pytest.skip(f"re-pinned {PINNED}")
    want = json.loads(PINNED.read_text())
    errors: list[str] = []
    _compare(got, want, "tiny", errors)
    assert not errors, f"{len(errors)} differences, first ones:\n" + "\n".join(errors[:30])
