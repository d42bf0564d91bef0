"""The model zoo: fp16 round trips, sha256 checked before deserialising, damaged / missing /
unknown entries refused naming the file, names validated, the size budget kept, atomic
writes."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay import runs, zoo
from coplay.runs import RunError
from coplay.zoo import ZooError


def _params(seed: int = 0, n: int = 40) -> dict:
    rng = np.random.default_rng(seed)
    return {"params": {"actor": {"dense0": {"kernel": rng.normal(size=(n, 16)).astype(np.float32),
                                            "bias": rng.normal(size=(16,)).astype(np.float32)}},
                       "policy": {"kernel": rng.normal(size=(16, 6)).astype(np.float32) * 0.01,
                                  "bias": np.zeros((6,), np.float32)}},
            "step": np.asarray(7, np.int32)}


def _file(tmp_path, name):
    return tmp_path / zoo.list_entries(tmp_path)[name]["file"]


def test_default_zoo_dir_is_the_repo_zoo_or_the_env_var(monkeypatch, tmp_path):
    monkeypatch.delenv(zoo.ZOO_ENV, raising=False)
    d = zoo.default_zoo_dir()
    assert d.name == "zoo" and (d.parent / "coplay" / "zoo.py").is_file()
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path))
    assert zoo.default_zoo_dir() == tmp_path


def test_the_repos_zoo_verifies():
    """The committed zoo/ (manifest, files) is consistent and within its budget."""
    d = zoo.default_zoo_dir()
    assert (d / zoo.MANIFEST).is_file() and (d / "README.md").is_file()
    assert all(ok for _, ok, _ in zoo.verify(d))


@pytest.mark.parametrize("dtype, tol", [("float16", 2 ** -10), ("bfloat16", 2 ** -7)])
def test_round_trip_keeps_structure_and_values_within_rounding(tmp_path, dtype, tol):
    p = _params()
    meta = {"layout": "random1", "role": "br", "network": {"hidden_sizes": [16]}}
    entry = zoo.save_entry("random1/hsp-s0/member03-br", p, meta, tmp_path, dtype=dtype)
    assert entry["file"] == "random1/hsp-s0/member03-br.msgpack"
    assert entry["dtype"] == dtype and entry["bytes"] == _file(
        tmp_path, "random1/hsp-s0/member03-br").stat().st_size
    got, got_meta = zoo.load_entry("random1/hsp-s0/member03-br", tmp_path)
    assert got_meta == meta
    assert jax.tree.structure(got) == jax.tree.structure(p)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(p), strict=True):
        assert a.shape == b.shape
        if np.issubdtype(b.dtype, np.floating):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=tol, atol=1e-7)
            # exactly the cast: nothing else changed the values
            np.testing.assert_array_equal(a, b.astype(zoo.DTYPES[dtype]).astype(np.float32))
        else:
            assert a.dtype == b.dtype and np.array_equal(a, b)
    # float16 files are half the float32 size (plus msgpack framing)
    assert entry["bytes"] < sum(x.nbytes for x in jax.tree.leaves(p)) * 0.6


def test_manifest_entry_holds_file_sha_bytes_dtype_meta(tmp_path):
    zoo.save_entry("a/b", _params(), {"k": 1}, tmp_path)
    man = json.loads((tmp_path / "manifest.json").read_text())
    e = man["entries"]["a/b"]
    assert set(e) >= {"file", "sha256", "bytes", "dtype", "meta"} and len(e["sha256"]) == 64
    assert zoo.list_entries(tmp_path, prefix="a/") == {"a/b": e}
    assert zoo.list_entries(tmp_path, prefix="x/") == {}


def test_jax_arrays_and_other_dtypes(tmp_path):
    p = {"w": jnp.ones((3, 2), jnp.float32), "b": jnp.zeros((2,), jnp.bfloat16)}
    zoo.save_entry("x", p, {}, tmp_path)
    got, _ = zoo.load_entry("x", tmp_path)
    assert got["w"].dtype == np.float32 and got["b"].dtype == np.float32
    with pytest.raises(ValueError, match="float16 or bfloat16"):
        zoo.save_entry("y", p, {}, tmp_path, dtype="float32")
    with pytest.raises(ValueError, match="int8"):
        zoo.save_entry("y", p, {}, tmp_path, dtype="int8")


def test_flipped_byte_is_refused_before_deserialising_naming_the_file(tmp_path, monkeypatch):
    zoo.save_entry("random1/x", _params(), {}, tmp_path)
    f = _file(tmp_path, "random1/x")
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    called = []
    monkeypatch.setattr(zoo.serialization, "msgpack_restore",
                        lambda b: called.append(1))  # must never be reached
    with pytest.raises(ZooError, match=r"random1/x\.msgpack is damaged: sha256 [0-9a-f]{64}"
                                       r".*expected [0-9a-f]{64}") as e:
        zoo.load_entry("random1/x", tmp_path)
    assert str(f) in str(e.value) and not called
    assert isinstance(e.value, RunError)


def test_truncated_file_is_refused(tmp_path):
    zoo.save_entry("t", _params(), {}, tmp_path)
    f = _file(tmp_path, "t")
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(ZooError, match=r"t\.msgpack is damaged"):
        zoo.load_entry("t", tmp_path)


def test_missing_file_is_refused(tmp_path):
    zoo.save_entry("m/n", _params(), {}, tmp_path)
    _file(tmp_path, "m/n").unlink()
    with pytest.raises(ZooError, match=r"m/n\.msgpack is missing"):
        zoo.load_entry("m/n", tmp_path)


def test_unknown_name_is_refused_with_close_names(tmp_path):
    zoo.save_entry("random1/hsp-s0/member03-br", _params(), {}, tmp_path)
    with pytest.raises(ZooError, match=r"no zoo entry .*member03-bx.*close names: "
                                       r"random1/hsp-s0/member03-br.*coplay zoo list"):
        zoo.load_entry("random1/hsp-s0/member03-bx", tmp_path)
    with pytest.raises(ZooError, match="coplay zoo list"):
        zoo.load_entry("elsewhere", tmp_path)


def test_no_manifest_and_malformed_manifest(tmp_path):
    with pytest.raises(ZooError, match="manifest.json does not exist"):
        zoo.load_entry("a", tmp_path)
    assert zoo.list_entries(tmp_path) == {}
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ZooError, match=r"manifest.*manifest\.json is not valid JSON"):
        zoo.load_entry("a", tmp_path)
    (tmp_path / "manifest.json").write_text('{"entries": []}')
    with pytest.raises(ZooError, match=r"manifest\.json is malformed"):
        zoo.list_entries(tmp_path)
    (tmp_path / "manifest.json").write_text('{"entries": {"a": {"file": "a.msgpack"}}}')
    with pytest.raises(ZooError, match=r"malformed: entry 'a' needs"):
        zoo.verify(tmp_path)


@pytest.mark.parametrize("name", ["", "/abs/path", "../up", "a/../b", "a//b", "a/./b",
                                  "a b", "a\\b", "C:/x", "a/b/", "ü", "manifest", "x;rm"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="zoo entry name"):
        zoo.save_entry(name, _params(), {}, tmp_path)
    assert not any(tmp_path.iterdir())


def test_existing_entries_need_overwrite(tmp_path):
    zoo.save_entry("e", _params(0), {"v": 0}, tmp_path)
    with pytest.raises(ZooError, match="exists.*overwrite"):
        zoo.save_entry("e", _params(1), {"v": 1}, tmp_path)
    zoo.save_entry("e", _params(1), {"v": 1}, tmp_path, overwrite=True)
    got, meta = zoo.load_entry("e", tmp_path)
    assert meta == {"v": 1} and len(zoo.list_entries(tmp_path)) == 1
    np.testing.assert_allclose(got["params"]["policy"]["kernel"],
                               _params(1)["params"]["policy"]["kernel"], rtol=1e-3, atol=1e-7)


def test_size_budget_is_enforced(tmp_path):
    size = zoo.save_entry("one", _params(), {}, tmp_path)["bytes"]
    assert zoo.SIZE_BUDGET == 60_000_000
    with pytest.raises(ZooError, match=r"over its budget of"):
        zoo.save_entry("two", _params(), {}, tmp_path, budget=2 * size - 1)
    assert not (tmp_path / "two.msgpack").exists() and set(zoo.list_entries(tmp_path)) == {
        "one"}
    zoo.save_entry("two", _params(), {}, tmp_path, budget=2 * size)
    # replacing an entry counts its new size, not both
    zoo.save_entry("two", _params(), {}, tmp_path, budget=2 * size, overwrite=True)
    with pytest.raises(ZooError, match="over its budget"):
        zoo.save_json("doc", {"a": 1}, zoo_dir=tmp_path, budget=2 * size)


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path, monkeypatch):
    zoo.save_entry("a/b", _params(), {}, tmp_path)
    zoo.save_json("a/doc", {"x": [1, 2]}, {"m": 1}, tmp_path)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                   if p.is_file())
    assert files == ["a/b.msgpack", "a/doc.json", "manifest.json"]
    assert zoo.load_json("a/doc", tmp_path) == ({"x": [1, 2]}, {"m": 1})
    # a write that fails midway leaves the old file and manifest, and no temp file
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(runs.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        zoo.save_entry("a/b", _params(5), {}, tmp_path, overwrite=True)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def test_json_and_params_entries_are_not_confused(tmp_path):
    zoo.save_entry("p", _params(), {}, tmp_path)
    zoo.save_json("d", [1], zoo_dir=tmp_path)
    with pytest.raises(ZooError, match="load_json"):
        zoo.load_entry("d", tmp_path)
    with pytest.raises(ZooError, match="load_entry"):
        zoo.load_json("p", tmp_path)


def test_verify_names_damaged_missing_and_stray_files(tmp_path):
    for n in ("ok", "bad", "gone"):
        zoo.save_entry(f"l/{n}", _params(), {}, tmp_path)
    assert all(ok for _, ok, _ in zoo.verify(tmp_path))
    f = _file(tmp_path, "l/bad")
    f.write_bytes(b"\x00" + f.read_bytes()[1:])
    _file(tmp_path, "l/gone").unlink()
    (tmp_path / "l" / "stray.msgpack").write_bytes(b"x")
    res = {n: (ok, msg) for n, ok, msg in zoo.verify(tmp_path)}
    assert res["l/ok"][0]
    assert not res["l/bad"][0] and "l/bad.msgpack is damaged" in res["l/bad"][1]
    assert not res["l/gone"][0] and "l/gone.msgpack is missing" in res["l/gone"][1]
    assert not res["l/stray.msgpack"][0] and "not in the zoo manifest" in \
        res["l/stray.msgpack"][1]


def test_zoo_references_round_trip_and_other_references_are_refused():
    ref = zoo.ref_of("random1/coot-s0")
    assert ref == "zoo:random1/coot-s0" and zoo.is_ref(ref)
    assert zoo.ref_name(ref) == "random1/coot-s0"
    for other in ("runs/ring/coot-s0", "zoo", None, 3):
        assert not zoo.is_ref(other)
    with pytest.raises(ZooError, match="not a zoo reference"):
        zoo.ref_name("runs/ring/coot-s0")
