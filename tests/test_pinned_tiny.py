"""Every `tiny` preset pinned: the numbers each writes (metrics rows, evaluations, manifests)
equal the ones recorded in ``tests/pinned/tiny_numbers.json`` before the house-keeping
refactor (issue 19). A refactor that changes behaviour — a key used in another order, a loss
term summed differently beyond float noise, a dropped metric — fails here by name.

Regenerate (only after a deliberate change of behaviour, said so in the commit):
``COPLAY_REPIN=1 python -m pytest -n 0 tests/test_pinned_tiny.py``.
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


def _run(tmp: Path, name: str, argv: list[str]) -> Path:
    assert main(argv + ["--out", str(tmp / name)]) == 0, name
    return tmp / name


def _ipd_a2c(tmp: Path) -> dict:
    d = _run(tmp, "a2c", ["ipd", "train", "--preset", "tiny", "--seed", "1"])
    return {"metrics": _metrics(d), "eval": _json(d, "eval.json")}


def _ipd_a2c_step1(tmp: Path) -> dict:
    d = _run(tmp, "a2c_step1", ["ipd", "train", "--preset", "tiny", "--seed", "2",
                                "--stage", "step1"])
    return {"metrics": _metrics(d), "eval": _json(d, "eval.json")}


def _ipd_ppi(tmp: Path) -> dict:
    d = _run(tmp, "ppi", ["ipd", "train", "--algo", "ppi", "--preset", "tiny", "--seed", "2",
                          "--eval-episodes", "16"])
    return {"metrics": _metrics(d), "eval": _json(d, "eval.json")}


def _overcooked_ppo(tmp: Path) -> dict:
    d = _run(tmp, "ppo", ["overcooked", "train", "--preset", "tiny", "--layout",
                          "cramped_room", "--seed", "0"])
    return {"metrics": _metrics(d), "eval": _json(d, "eval.json")}


def _population_hsp(tmp: Path) -> dict:
    d = _run(tmp, "hsp", ["populations", "train", "--preset", "tiny", "--seed", "3"])
    return {"metrics": _metrics(d), "manifest": _json(d, "manifest.json"),
            "crossplay": _json(d, "crossplay.json")}


def _population_mep_and_stage2(tmp: Path) -> dict:
    d = _run(tmp, "mep", ["populations", "train", "--kind", "mep", "--preset", "tiny",
                          "--seed", "0"])
    mep = {"metrics": _metrics(d), "manifest": _json(d, "manifest.json")}
    d = _run(tmp, "mep2", ["populations", "train", "--kind", "mep-adaptive", "--pop",
                           str(tmp / "mep"), "--preset", "tiny", "--seed", "0"])
    return {"population_mep": mep,
            "mep_adaptive": {"metrics": _metrics(d), "eval": _json(d, "eval.json")}}


# one case per preset (MEP stage 2 needs its stage 1), so that the two test processes share
# them; each returns {pinned key: numbers}
CASES = {
    "ipd_a2c": lambda tmp: {"ipd_a2c": _ipd_a2c(tmp)},
    "ipd_a2c_step1": lambda tmp: {"ipd_a2c_step1": _ipd_a2c_step1(tmp)},
    "ipd_ppi": lambda tmp: {"ipd_ppi": _ipd_ppi(tmp)},
    "overcooked_ppo": lambda tmp: {"overcooked_ppo": _overcooked_ppo(tmp)},
    "population_hsp": lambda tmp: {"population_hsp": _population_hsp(tmp)},
    "population_mep": _population_mep_and_stage2,
}
# the pinned keys each case writes
CASE_KEYS = {**{case: {case} for case in CASES}, "population_mep": {"population_mep",
                                                                    "mep_adaptive"}}


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


def test_the_cases_cover_every_pinned_key():
    pinned = set(json.loads(PINNED.read_text()))
    covered = set().union(*CASE_KEYS.values())
    assert pinned == covered, f"pinned keys {sorted(pinned)} vs the cases' {sorted(covered)}"


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_tiny_preset_gives_the_pinned_numbers(case, tmp_path):
    # the JSON form, as pinned, with the run folders' paths made relative
    got = json.loads(json.dumps(CASES[case](tmp_path)).replace(str(tmp_path), "<tmp>"))
    if os.environ.get("COPLAY_REPIN"):
        # one case at a time (run with -n 0): this case's keys replaced, the others kept
        pinned = json.loads(PINNED.read_text()) if PINNED.exists() else {}
        pinned.update(got)
        PINNED.parent.mkdir(exist_ok=True)
        tmp = PINNED.with_suffix(".tmp")
        tmp.write_text(json.dumps(pinned, indent=1) + "\n")
        tmp.replace(PINNED)
        pytest.skip(f"re-pinned {sorted(got)} in {PINNED}")
    assert set(got) == CASE_KEYS[case], f"{case} wrote {sorted(got)}"
    want = json.loads(PINNED.read_text())
    missing = sorted(set(got) - set(want))
    assert not missing, f"not pinned: {missing}"
    errors: list[str] = []
    _compare(got, {k: want[k] for k in got}, "tiny", errors)
    assert not errors, f"{len(errors)} differences, first ones:\n" + "\n".join(errors[:30])
