"""Dataset shards on disk: round trip, atomic writes, errors."""

import numpy as np
import pytest

from coplay.data.shards import ShardStore
from coplay.runs import RunError


def _arrays(n, seed=0):
    rng = np.random.default_rng(seed)
    return {"action": rng.integers(0, 2, (n, 7)).astype(np.int8),
            "reward": rng.normal(size=(n, 7)).astype(np.float16)}


def test_round_trip_and_concatenation(tmp_path):
    store = ShardStore(tmp_path / "data")
    a, b = _arrays(3, 0), _arrays(5, 1)
    store.write("d0", a)
    store.write("phase001-learner0", b)
    assert store.names() == ["d0", "phase001-learner0"]
    back = store.read("d0")
    for k in a:
        np.testing.assert_array_equal(back[k], a[k])
        assert back[k].dtype == a[k].dtype
    both = store.read_many(["d0", "phase001-learner0"])
    np.testing.assert_array_equal(both["action"], np.concatenate([a["action"], b["action"]]))
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.endswith(".tmp")]


def test_overwrite_is_atomic_and_temp_files_are_not_shards(tmp_path):
    store = ShardStore(tmp_path)
    store.write("x", _arrays(2, 0))
    (tmp_path / ".x.npz.123.tmp").write_bytes(b"half a file")  # what a kill mid-write leaves
    store.write("x", _arrays(4, 1))
    assert store.names() == ["x"] and len(store.read("x")["action"]) == 4


def test_errors_name_the_problem(tmp_path):
    store = ShardStore(tmp_path)
    with pytest.raises(RunError, match="does not exist"):
        store.read("nope")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(RunError, match="unreadable"):
        store.read("bad")
    with pytest.raises(ValueError, match="differ in length"):
        store.write("y", {"a": np.zeros(2), "b": np.zeros(3)})
    store.write("z", {"a": np.zeros(2)})
    store.write("w", {"b": np.zeros(2)})
    with pytest.raises(RunError, match="expected"):
        store.read_many(["z", "w"])


def test_length_counts_trajectories_and_names_a_missing_or_damaged_shard(tmp_path):
    store = ShardStore(tmp_path)
    store.write("d0", _arrays(5))
    assert store.length("d0") == 5
    with pytest.raises(RunError, match="does not exist"):
        store.length("nope")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(RunError, match="unreadable"):
        store.length("bad")
