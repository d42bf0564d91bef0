"""The model zoo: trained weights committed to the repository, with a manifest and sha256s.

A zoo is one folder (``zoo/`` at the repository root, or ``$COPLAY_ZOO``) holding

- ``manifest.json``: ``{"version": 1, "entries": {name: entry}}``, one entry per stored file:
  ``{"file": relative path, "format": "msgpack" | "json", "sha256", "bytes", "dtype", "meta"}``,
- ``<name>.msgpack``: a parameter tree (nested dicts of arrays) written with
  ``flax.serialization.msgpack_serialize`` — no pickle — its float leaves cast to float16
  (or bfloat16),
- ``<name>.json``: a small JSON document (e.g. a population's selection).

Names are ``/``-separated segments of ``[A-Za-z0-9._-]`` (``random1/hsp-s0/member03-br``).
Every file is written atomically, then the manifest (atomically too). A loader reads the bytes,
checks their sha256 against the manifest *before* deserialising, and raises :class:`ZooError`
naming the file when it is missing or damaged. The whole zoo is kept under
:data:`SIZE_BUDGET` bytes (it is committed to git).

Writers are not locked against each other: one person (or process) writes a zoo at a time.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from coplay.runs import RunError, atomic_write_bytes, read_json, to_jsonable, write_json

ZOO_ENV = "COPLAY_ZOO"
MANIFEST = "manifest.json"
VERSION = 1
SIZE_BUDGET = 60_000_000
"""Bytes the files of a zoo may take together (the committed zoo: 60 MB, issue 38)."""
DTYPES = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(jnp.bfloat16)}
FORMATS = {"msgpack": ".msgpack", "json": ".json"}
_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
REF_PREFIX = "zoo:"
"""How an agent or population reference names a zoo entry (or prefix), beside run folders."""


class ZooError(RunError):
    """A zoo entry cannot be written or read as asked (unknown, damaged, over budget, ...)."""


def is_ref(ref) -> bool:
    """Whether ``ref`` names the zoo (``zoo:<name>``) rather than a run folder."""
    return isinstance(ref, str) and ref.startswith(REF_PREFIX)


def ref_name(ref: str) -> str:
    """The entry name (or prefix) a ``zoo:<name>`` reference names."""
    if not is_ref(ref):
        raise ZooError(f"{ref!r}: not a zoo reference ({REF_PREFIX}<name>)")
    return ref[len(REF_PREFIX):]


POPULATION_ENTRY = "population"
"""The JSON entry ``<prefix>/population`` that indexes a population stored under ``<prefix>``."""


def load_population_entry(prefix: str, zoo_dir=None) -> tuple[Any, dict]:
    """(document, meta) of the population stored under ``prefix`` (its members' entry names,
    returns, features and selection); ZooError naming a missing or damaged entry."""
    return load_json(f"{check_name(prefix.rstrip('/'))}/{POPULATION_ENTRY}", zoo_dir)


def reselect_population(source_prefix: str, out_prefix: str, selection: dict, zoo_dir=None,
                        overwrite: bool = False) -> str:
    """A new ``<out_prefix>/population`` entry: the zoo population ``source_prefix`` with
    another ``selection`` (e.g. more evaluation partners). Its members keep their entry names,
    so the new population shares the source's stored weights (a few KB, no copy). Returns the
    entry's name; ZooError when the source is not a population or the names collide."""
    src = check_name(source_prefix.rstrip("/"))
    out = check_name(out_prefix.rstrip("/"))
    if out == src:
        raise ZooError(f"{out}: give a new prefix; the source population's entry (and the "
                       "results measured on its selection) stay as they are")
    doc, meta = load_population_entry(src, zoo_dir)
    if not isinstance(doc, dict) or doc.get("kind") not in ("hsp-population", "mep-population"):
        raise ZooError(f"zoo:{src}: not a population entry")
    name = f"{out}/{POPULATION_ENTRY}"
    save_json(name, {**doc, "selection": selection, "selected_from": f"zoo:{src}"},
              {**meta, "source": f"zoo:{src}"}, zoo_dir, overwrite=overwrite)
    return name


def ref_of(name: str) -> str:
    """The reference (``zoo:<name>``) of entry ``name``."""
    return REF_PREFIX + name


def default_zoo_dir() -> Path:
    """``$COPLAY_ZOO`` if set, else the repository's ``zoo/`` folder."""
    env = os.environ.get(ZOO_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "zoo"


def _dir(zoo_dir) -> Path:
    return default_zoo_dir() if zoo_dir is None else Path(zoo_dir)


def check_name(name: str) -> str:
    """``name`` if it is a valid entry name, else ValueError saying why."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"zoo entry name {name!r}: must be a non-empty string such as "
                         "'random1/hsp-s0/member03-br'")
    if name.startswith("/") or "\\" in name or re.match(r"^[A-Za-z]:", name):
        raise ValueError(f"zoo entry name {name!r}: must be a relative path inside the zoo "
                         "(no leading '/', no '\\', no drive)")
    for seg in name.split("/"):
        if seg in ("", ".", ".."):
            raise ValueError(f"zoo entry name {name!r}: empty, '.' and '..' segments are "
                             "not allowed")
        if not _SEGMENT.match(seg):
            raise ValueError(f"zoo entry name {name!r}: segment {seg!r} may hold only "
                             "letters, digits, '.', '_' and '-'")
    if name.split("/")[0] == Path(MANIFEST).stem:
        raise ValueError(f"zoo entry name {name!r}: 'manifest' is reserved for the zoo's "
                         f"{MANIFEST}")
    return name


# --- the manifest ---------------------------------------------------------------------------
def read_manifest(zoo_dir=None, missing_ok: bool = True) -> dict:
    """The zoo's manifest (an empty one when the zoo has none yet and ``missing_ok``)."""
    path = _dir(zoo_dir) / MANIFEST
    if not path.is_file():
        if missing_ok:
            return {"version": VERSION, "entries": {}}
        raise ZooError(f"{path} does not exist: {path.parent} is not a zoo (make entries "
                       "with coplay zoo export)")
    try:
        man = read_json(path)
    except RunError as e:
        raise ZooError(f"zoo manifest {e}") from None
    if not isinstance(man, dict) or not isinstance(man.get("entries"), dict):
        raise ZooError(f"zoo manifest {path} is malformed: expected an object with "
                       "'entries' (an object of name -> entry)")
    for name, e in man["entries"].items():
        if not isinstance(e, dict) or not all(k in e for k in ("file", "sha256", "bytes")):
            raise ZooError(f"zoo manifest {path} is malformed: entry {name!r} needs file, "
                           "sha256 and bytes")
    return man


def _write_manifest(zoo: Path, man: dict) -> None:
    man = {"version": VERSION, **{k: v for k, v in man.items() if k != "entries"},
           "entries": dict(sorted(man["entries"].items()))}
    write_json(zoo / MANIFEST, man)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- writing --------------------------------------------------------------------------------
def _cast(params, dtype: str):
    if dtype not in DTYPES:
        raise ValueError(f"dtype = {dtype!r}: the zoo stores float16 or bfloat16")
    target = DTYPES[dtype]

    def cast(x):
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.floating) or x.dtype == DTYPES["bfloat16"]:
            return x.astype(target)
        return x

    return jax.tree.map(cast, serialization.to_state_dict(params))


def _store(name: str, data: bytes, fmt: str, dtype: str | None, meta: dict, zoo_dir,
           budget: int | None, overwrite: bool) -> dict:
    check_name(name)
    zoo = _dir(zoo_dir)
    man = read_manifest(zoo)
    entries = man["entries"]
    if name in entries and not overwrite:
        raise ZooError(f"zoo entry {name!r} exists ({zoo / entries[name]['file']}); pass "
                       "overwrite=True (coplay zoo export --overwrite) to replace it")
    budget = SIZE_BUDGET if budget is None else int(budget)
    used = sum(int(e["bytes"]) for n, e in entries.items() if n != name)
    if used + len(data) > budget:
        raise ZooError(f"zoo entry {name!r} ({len(data):,} bytes) would bring {zoo} to "
                       f"{used + len(data):,} bytes, over its budget of {budget:,} bytes")
    file = name + FORMATS[fmt]
    entry = {"file": file, "format": fmt, "sha256": _sha256(data), "bytes": len(data),
             "dtype": dtype, "meta": to_jsonable(meta)}
    json.dumps(entry)  # meta must be JSON: fail before anything is written
    atomic_write_bytes(zoo / file, data)
    entries[name] = entry
    _write_manifest(zoo, man)
    return entry


def save_entry(name: str, params, meta: dict, zoo_dir=None, dtype: str = "float16",
               budget: int | None = None, overwrite: bool = False) -> dict:
    """Store the parameter tree ``params`` (float leaves cast to ``dtype``) as zoo entry
    ``name`` with ``meta`` (a JSON object); returns the manifest entry. ZooError when the
    entry exists (unless ``overwrite``) or the zoo would exceed ``budget`` bytes
    (default :data:`SIZE_BUDGET`); ValueError for a bad name or dtype."""
    check_name(name)
    if not isinstance(meta, dict):
        raise ValueError(f"meta: a dict, got {type(meta).__name__}")
    data = serialization.msgpack_serialize(_cast(params, dtype))
    return _store(name, data, "msgpack", dtype, meta, zoo_dir, budget, overwrite)


def save_json(name: str, obj: Any, meta: dict | None = None, zoo_dir=None,
              budget: int | None = None, overwrite: bool = False) -> dict:
    """Store a JSON document as zoo entry ``name`` (file ``<name>.json``)."""
    check_name(name)
    data = (json.dumps(to_jsonable(obj), indent=2) + "\n").encode("utf-8")
    return _store(name, data, "json", None, dict(meta or {}), zoo_dir, budget, overwrite)


# --- reading --------------------------------------------------------------------------------
def entry(name: str, zoo_dir=None) -> dict:
    """The manifest entry ``name`` (file, sha256, meta); ZooError naming close names when
    there is no such entry."""
    return _entry(name, _dir(zoo_dir))


def _entry(name: str, zoo: Path) -> dict:
    check_name(name)
    man = read_manifest(zoo, missing_ok=False)
    entries = man["entries"]
    if name not in entries:
        close = difflib.get_close_matches(name, list(entries), n=5, cutoff=0.5)
        hint = f"close names: {', '.join(close)}" if close else \
            f"the zoo holds {len(entries)} entries"
        raise ZooError(f"no zoo entry {name!r} in {zoo / MANIFEST} ({hint}; list them with "
                       f"coplay zoo list --zoo {zoo})")
    return entries[name]


def _verified_bytes(entry: dict, zoo: Path) -> bytes:
    path = zoo / entry["file"]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ZooError(f"{path} is missing (the zoo manifest lists it; restore it from git "
                       "or export the entry again)") from None
    sha = _sha256(data)
    if sha != entry["sha256"] or len(data) != int(entry["bytes"]):
        raise ZooError(f"{path} is damaged: sha256 {sha} ({len(data):,} bytes), expected "
                       f"{entry['sha256']} ({int(entry['bytes']):,} bytes); restore it from "
                       "git or export the entry again")
    return data


def _to_float32(tree):
    def up(x):
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.floating) or x.dtype == DTYPES["bfloat16"]:
            return x.astype(np.float32)
        return x

    return jax.tree.map(up, tree)


def load_entry(name: str, zoo_dir=None) -> tuple[dict, dict]:
    """(parameters as a tree of float32 NumPy arrays, meta) of zoo entry ``name``; the file's
    sha256 is checked before it is deserialised (ZooError naming the file otherwise)."""
    zoo = _dir(zoo_dir)
    entry = _entry(name, zoo)
    if entry.get("format", "msgpack") != "msgpack":
        raise ZooError(f"zoo entry {name!r} is a {entry.get('format')} document, not "
                       "parameters: read it with load_json")
    data = _verified_bytes(entry, zoo)
    try:
        tree = serialization.msgpack_restore(data)
    except Exception as e:  # msgpack raises many kinds on corrupt input
        raise ZooError(f"{zoo / entry['file']} is damaged: it cannot be read as msgpack "
                       f"({e})") from None
    return _to_float32(tree), dict(entry.get("meta") or {})


def load_json(name: str, zoo_dir=None) -> tuple[Any, dict]:
    """(document, meta) of the JSON zoo entry ``name`` (sha256 checked first)."""
    zoo = _dir(zoo_dir)
    entry = _entry(name, zoo)
    if entry.get("format") != "json":
        raise ZooError(f"zoo entry {name!r} holds parameters: read it with load_entry")
    data = _verified_bytes(entry, zoo)
    try:
        return json.loads(data), dict(entry.get("meta") or {})
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ZooError(f"{zoo / entry['file']} is damaged: not JSON ({e})") from None


def list_entries(zoo_dir=None, prefix: str = "") -> dict:
    """name -> manifest entry, for the names starting with ``prefix`` (sorted)."""
    entries = read_manifest(zoo_dir)["entries"]
    return {n: e for n, e in sorted(entries.items()) if n.startswith(prefix)}


def verify(zoo_dir=None) -> list[tuple[str, bool, str]]:
    """(name, ok, message) for every manifest entry (present, sha256, readable), then for
    every data file in the zoo that the manifest does not list (not ok: stray)."""
    zoo = _dir(zoo_dir)
    man = read_manifest(zoo, missing_ok=False)
    out: list[tuple[str, bool, str]] = []
    listed = set()
    total = 0
    for name, entry in sorted(man["entries"].items()):
        listed.add(str(entry["file"]))
        total += int(entry["bytes"])
        try:
            check_name(name)
            data = _verified_bytes(entry, zoo)
            if entry.get("format", "msgpack") == "msgpack":
                serialization.msgpack_restore(data)
            else:
                json.loads(data)
        except (ZooError, ValueError) as e:
            out.append((name, False, str(e)))
            continue
        except Exception as e:  # noqa: BLE001 — the bytes match but do not parse
            out.append((name, False, f"{zoo / entry['file']} is damaged: {e}"))
            continue
        out.append((name, True, f"{zoo / entry['file']}: ok ({len(data):,} bytes)"))
    for f in sorted(zoo.rglob("*")):
        rel = f.relative_to(zoo).as_posix()
        if f.is_file() and rel != MANIFEST and (f.suffix in FORMATS.values()
                                                 or f.name.endswith(".tmp")) \
                and rel not in listed:
            out.append((rel, False, f"{f} is not in the zoo manifest (a stray file: remove "
                                    "it or store it with save_entry)"))
    if total > SIZE_BUDGET:
        out.append((MANIFEST, False, f"{zoo} holds {total:,} bytes, over its budget of "
                                     f"{SIZE_BUDGET:,} bytes"))
    return out
