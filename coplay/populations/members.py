"""Population members on disk: parameter files, the manifest, snapshots, and the network a
member's parameters belong to. Pure data handling: nothing here trains or plays."""

from __future__ import annotations

from pathlib import Path

import jax
from flax import serialization

from coplay.agents.actor_critic import make_network
from coplay.envs.overcooked import Overcooked
from coplay.populations.hsp import BIASED, BR
from coplay.runs import RunError, read_json, write_json


def snapshot_path(path: Path, update: int) -> Path:
    return Path(path) / "snapshots" / f"update_{update:07d}.msgpack"


def write_manifest(path: str | Path, manifest: dict) -> None:
    write_json(Path(path) / "manifest.json", manifest)


def network_of(algo, env: Overcooked):
    return make_network(algo.network, algo.hidden_sizes, algo.activation, algo.cnn_filters,
                        env.num_actions)


def load_params(file: str | Path) -> dict:
    """Parameters stored with flax.serialization (no template needed)."""
    try:
        return serialization.msgpack_restore(Path(file).read_bytes())
    except FileNotFoundError:
        raise RunError(f"{file} does not exist") from None


def member_policies(path: str | Path, member: int, which: str = "final") -> tuple[dict, dict]:
    """(biased params, best-response params) of one member: ``which`` = final or mid."""
    man = read_json(Path(path) / "manifest.json")
    entry = man["members"][member]
    if which == "final":
        p = load_params(Path(path) / entry["checkpoint"])
    elif which == "mid":
        p = take(load_params(Path(path) / entry["mid_skill"]["file"]), member)
    else:
        raise ValueError(f"which = {which!r}: final or mid")
    return take(p, BIASED), take(p, min(BR, len(jax.tree.leaves(p)[0]) - 1))


def take(tree, i: int):
    """Entry i of the leading axis of every leaf."""
    return jax.tree.map(lambda x: x[i], tree)
