"""One way to name an agent: the reference grammar, and :func:`resolve` from a reference to an
:class:`~coplay.agents.base.Agent`. Every command that takes an agent (``coot eval`` /
``collect`` / ``dagger``, ``populations``, ``ipd axelrod``, ``zoo export``, the study server)
goes through here.

======================  ==========================================================
``PATH``                a finished run folder of any kind in :data:`READERS`
``PATH#N``              member N of a population, learner N of an IPD run
``PATH#N,S``            member N, seat S (HSP: 0 the biased policy, 1 its best
                        response; self-play PPO: ``#0,S``)
``PATH#N,S@mid``        the same at the member's mid-skill snapshot
``zoo:NAME``            a zoo entry (``coplay zoo list``)
``scripted[:EPS]``      the scripted Overcooked cook, ε-random (default 0.05)
``classic:NAME``        a classic IPD strategy (TFT, AllC, AllD, Pavlov, GTFT, ...)
======================  ==========================================================

A run folder's ``config.json`` is read once (:func:`locate`), and its ``experiment`` picks
the reader (:data:`READERS`, in :mod:`coplay.experiments.run_agents`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp

from coplay import zoo
from coplay.agents.base import Agent
from coplay.agents.classic import classic_agent, scripted_cook
from coplay.envs.overcooked import Overcooked
from coplay.experiments import run_agents as ra
from coplay.experiments.zoo_agents import zoo_agent
from coplay.runs import RunDir, RunError, read_json

SCRIPTED = "scripted"
CLASSIC = "classic"
SCRIPTED_EPS = 0.05

Reader = Callable[[Path, dict, ra.Choice], Agent]
READERS: dict[str, Reader] = {
    "ipd": ra.ipd_agent,
    "overcooked-ppo": ra.self_play_agent,
    "hsp-population": ra.population_agent,
    "mep-population": ra.population_agent,
    "hsp-adaptive": ra.adaptive_agent,
    "mep-adaptive": ra.adaptive_agent,
    "hsp-responses": ra.adaptive_agent,
    "mep-responses": ra.adaptive_agent,
    "coot": ra.coot_run_agent,
    "coot-bc": ra.bc_run_agent,
    "coot-dagger": ra.dagger_agent,
}
"""Run kind (``config.json``'s ``experiment``) -> the reader of its folder."""


@dataclasses.dataclass(frozen=True)
class AgentRef:
    """A parsed reference: ``path`` (a run folder, ``zoo:NAME``, ``scripted[:EPS]`` or
    ``classic:NAME``) and what to pick inside a run folder."""

    path: str
    member: int | None = None
    seat: int | None = None
    which: str = "final"

    def __str__(self) -> str:
        picks = [str(x) for x in (self.member, self.seat) if x is not None]
        if self.seat is not None and self.member is None:
            picks = ["0", str(self.seat)]
        sel = "#" + ",".join(picks) if picks else ""
        return f"{self.path}{sel}{'@' + self.which if self.which != 'final' else ''}"

    def label(self) -> str:
        """The reference in words (tables, reports)."""
        parts = [f"member {self.member}"] * (self.member is not None)
        parts += [f"seat {self.seat}"] * (self.seat is not None)
        parts += [self.which] * (self.which != "final")
        return f"{self.path} ({', '.join(parts)})" if parts else self.path

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> AgentRef:
        return cls(str(d["path"]), d.get("member"), d.get("seat"), d.get("which", "final"))

    def load(self, layout: str | None = None) -> Agent:
        return resolve(self, layout=layout)


def parse(ref: str | AgentRef) -> AgentRef:
    """The :class:`AgentRef` of a reference string; RunError naming what is malformed."""
    if isinstance(ref, AgentRef):
        return ref
    if not isinstance(ref, str) or not ref.strip():
        raise RunError(f"agent reference {ref!r}: expected PATH, PATH#member[,seat][@mid], "
                       "zoo:NAME, scripted[:EPS] or classic:NAME")
    ref = ref.strip()
    if "#" not in ref:
        if "@" in ref and not zoo.is_ref(ref):
            raise RunError(f"{ref!r}: @mid follows a member (PATH#member[,seat]@mid)")
        return AgentRef(ref)
    path, sel = ref.rsplit("#", 1)
    sel, _, which = sel.partition("@")
    if which not in ("", "mid"):
        raise RunError(f"{ref!r}: after @ only mid (the mid-skill snapshot)")
    try:
        nums = [int(x) for x in sel.split(",")]
    except ValueError:
        raise RunError(f"{ref!r}: after # give member or member,seat (integers)") from None
    if len(nums) > 2 or not path:
        raise RunError(f"{ref!r}: expected PATH#member or PATH#member,seat")
    return AgentRef(path, nums[0], nums[1] if len(nums) == 2 else None, which or "final")


class Source(NamedTuple):
    """A located reference: its ``kind`` (a run kind of :data:`READERS`, ``zoo``,
    ``scripted`` or ``classic``), the ``layout`` it was trained on where recorded, and the
    run's ``config.json`` (or the zoo entry's meta), read once."""

    ref: AgentRef
    kind: str
    layout: str | None
    config: dict | None


def locate(ref: str | AgentRef | Source) -> Source:
    """Where the reference points, checked (no weights read yet); RunError / ZooError
    naming a missing folder, a folder that is no run, an unknown run kind or zoo entry."""
    if isinstance(ref, Source):
        return ref
    r = parse(ref)
    head = r.path.split(":", 1)[0]
    if head in (SCRIPTED, CLASSIC) and not Path(r.path).exists():
        if r != AgentRef(r.path):
            raise RunError(f"{r}: {head} agents take no member, seat or @mid")
        return Source(r, head, None, None)
    if zoo.is_ref(r.path):
        if r != AgentRef(r.path):
            raise ValueError(f"{r}: a zoo entry holds one policy (no member, seat or @mid "
                             "to choose)")
        meta = zoo.entry(zoo.ref_name(r.path)).get("meta") or {}
        return Source(r, "zoo", meta.get("layout"), meta)
    path = Path(r.path)
    if not path.is_dir():
        raise RunError(f"{path}: no such run folder")
    if not (path / RunDir.CONFIG).is_file():
        raise RunError(f"{path} is not a run folder: no {RunDir.CONFIG} (agents come from "
                       f"the folders of {', '.join(READERS)} runs)")
    raw = read_json(path / RunDir.CONFIG)
    kind = raw.get("experiment") if isinstance(raw, dict) else None
    if kind not in READERS:
        raise RunError(f"{path / RunDir.CONFIG}: experiment {kind!r} holds no agent "
                       f"(expected one of {', '.join(READERS)})")
    return Source(r, kind, raw.get("layout"), raw)


def resolve(ref: str | AgentRef | Source, *, layout=None,
            name: str | None = None) -> Agent:
    """The agent a reference names (``name`` renames it). ``layout``: the game's layout, for
    ``scripted`` (which needs one); ValueError for an option the kind does not take."""
    src = locate(ref)
    r = src.ref
    if src.kind == SCRIPTED:
        if layout is None:
            raise ValueError(f"{r}: the scripted cook needs the game's layout")
        eps = r.path[len(SCRIPTED) + 1:] or str(SCRIPTED_EPS)
        try:
            agent = scripted_cook(layout, float(eps))
        except ValueError as e:
            raise ValueError(f"{r}: {e}") from None
    elif src.kind == CLASSIC:
        agent = classic_agent(r.path[len(CLASSIC) + 1:])
    elif src.kind == "zoo":
        agent = zoo_agent(zoo.ref_name(r.path))
    else:
        agent = READERS[src.kind](Path(r.path), src.config, ra.Choice(r.member, r.seat, r.which))
    return agent if name is None else agent.replace(name=name)


def check_obs(agent: Agent, env: Overcooked, ref: AgentRef) -> None:
    """RunError naming ``ref`` unless ``agent`` takes ``env``'s observations."""
    # an actor-critic of another layout fails deep inside flax; name the mismatch instead
    x = jnp.zeros(env.obs_shape)
    try:
        jax.eval_shape(lambda o: agent.policy(jax.random.PRNGKey(0), agent.reset(
            jax.random.PRNGKey(0)), o), x)
    except Exception as e:  # noqa: BLE001 (flax raises several kinds on a shape mismatch)
        raise RunError(f"{ref.label()} does not take {env.layout.name!r} observations "
                       f"{env.obs_shape}: {type(e).__name__}") from None
