"""The study file: which layout, how long, which agents behind which colours.

A study is a TOML file (read with :mod:`tomllib`)::

    [study]
    name = "coord-ring"            # letters, digits, - and _
    game = "overcooked"            # or "ipd": rounds of the prisoner's dilemma, C / D buttons
    layout = "random1"             # a layout name (coplay.envs.overcooked.layout_names)
    episode_length = 200           # steps per episode
    episodes_per_agent = 10        # episodes with each agent, one after another
    tick_hz = 6.0                  # steps per second (Overcooked-AI's demo: 6)
    human_seat = 0                 # the cook the participant steers (0 or 1)

    [[agents]]
    name = "hsp"                                 # internal name (never shown)
    ref = "zoo:random1/hsp-adaptive-s0"          # an agent reference (coplay.experiments.refs):
                                                 # run folder, zoo:NAME, "scripted[:eps]"
                                                 # (ipd: an IPD run folder or "classic:TFT")
    colour = "red"                               # what the participant sees

Every agent plays through the one :class:`~coplay.agents.base.Agent` interface (reset / act /
end of episode); its state (a CooT context) carries over across the participant's episodes
with it. :func:`load_study` checks everything and raises :class:`~coplay.config.ConfigError`
naming the field (an unknown layout or agent included) before anything is served.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
from pathlib import Path

from coplay.config import ConfigError, checker, is_int
from coplay.envs.overcooked import LayoutError, get_layout, layout_names
from coplay.experiments.refs import resolve

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
HEX_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
# Colour names the page understands (the cooks of the PNG renderer are blue and orange).
COLOURS = {
    "red": "#d94a3d", "green": "#3aa655", "purple": "#8e5bd0", "teal": "#1fa3a3",
    "pink": "#e05fa8", "brown": "#8b5a2b", "grey": "#7d7d7d", "yellow": "#e0b400",
    "orange": "#ec8424", "blue": "#346cdc",
}
HUMAN_COLOUR = "#346cdc"  # render._COOK_RGB[0]
GAMES = ("overcooked", "ipd")


@dataclasses.dataclass(frozen=True)
class AgentEntry:
    """One agent of a study."""

    name: str
    """internal name (letters, digits, - and _), never shown to the participant"""
    ref: str
    """an agent reference (:mod:`coplay.experiments.refs`): a run folder (any kind, a CooT
    included), ``zoo:<entry>``, ``scripted[:eps]`` or (ipd) ``classic:NAME``"""
    colour: str
    """the agent's cook on the canvas: a name of COLOURS or ``#rrggbb``"""
    greedy: bool = False
    """most likely action instead of a sample"""

    @property
    def hex(self) -> str:
        return COLOURS.get(self.colour, self.colour)


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """A human-agent study (see the module docstring)."""

    agents: tuple[AgentEntry, ...]
    name: str = "study"
    game: str = "overcooked"
    """``overcooked`` (a kitchen at a fixed tick) or ``ipd`` (``episode_length`` rounds of the
    prisoner's dilemma, one per click; ``layout``, ``tick_hz`` and ``human_seat`` unused)"""
    layout: str = "random1"
    episode_length: int = 200
    episodes_per_agent: int = 10
    tick_hz: float = 6.0
    human_seat: int = 0
    max_participants: int = 10_000
    """joins refused beyond this many participants"""

    def validate(self) -> StudyConfig:
        need = checker(self, "study")
        need(isinstance(self.name, str) and bool(NAME_RE.match(self.name)), "name",
             "letters, digits, - and _ (1-40)")
        need(self.game in GAMES, "game", " or ".join(GAMES))
        need(isinstance(self.layout, str) and bool(self.layout), "layout", "a layout name")
        for f in ("episode_length", "episodes_per_agent", "max_participants"):
            need(is_int(getattr(self, f)) and getattr(self, f) >= 1, f, "an integer >= 1")
        need(self.episode_length <= 10_000, "episode_length", "at most 10000")
        need(isinstance(self.tick_hz, (int, float)) and not isinstance(self.tick_hz, bool)
             and math.isfinite(self.tick_hz) and 0.1 <= self.tick_hz <= 100, "tick_hz",
             "steps per second in [0.1, 100]")
        need(self.human_seat in (0, 1) and is_int(self.human_seat), "human_seat", "0 or 1")
        need(len(self.agents) >= 1, "agents", "at least one [[agents]] table")
        seen: set[str] = set()
        for i, a in enumerate(self.agents):
            where = f"agents[{i}]"
            if not (isinstance(a.name, str) and NAME_RE.match(a.name)):
                raise ConfigError(f"{where}.name = {a.name!r}: letters, digits, - and _ (1-40)")
            if a.name in seen:
                raise ConfigError(f"{where}.name = {a.name!r}: two agents share this name")
            seen.add(a.name)
            if not isinstance(a.ref, str) or not a.ref:
                raise ConfigError(f"{where}.ref = {a.ref!r}: an agent reference (run "
                                  "folder, zoo:NAME, scripted[:eps], classic:NAME)")
            if not isinstance(a.colour, str) or not (a.colour in COLOURS
                                                     or HEX_RE.match(a.colour)):
                raise ConfigError(f"{where}.colour = {a.colour!r}: one of "
                                  f"{', '.join(sorted(COLOURS))} or #rrggbb")
            if a.hex.lower() == HUMAN_COLOUR:
                raise ConfigError(f"{where}.colour = {a.colour!r}: that is the participant's "
                                  "own cook colour")
            if not isinstance(a.greedy, bool):
                raise ConfigError(f"{where}.greedy = {a.greedy!r}: true or false")
        return self

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StudyConfig:
        raw = json.loads(text)
        raw["agents"] = tuple(AgentEntry(**a) for a in raw["agents"])
        return cls(**raw)


_STUDY_KEYS = {f.name for f in dataclasses.fields(StudyConfig)} - {"agents"}
_AGENT_KEYS = {f.name for f in dataclasses.fields(AgentEntry)}


def parse_study(text: str, where: str = "study file") -> StudyConfig:
    """A StudyConfig from TOML text (structure and values checked, agents not yet loaded)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not valid TOML ({e})") from None
    unknown = set(raw) - {"study", "agents"}
    if unknown:
        raise ConfigError(f"{where}: unknown table(s) {sorted(unknown)} (expected [study] "
                          "and [[agents]])")
    study = raw.get("study", {})
    if not isinstance(study, dict):
        raise ConfigError(f"{where}: [study] must be a table")
    bad = set(study) - _STUDY_KEYS
    if bad:
        raise ConfigError(f"{where}: [study] has unknown key(s) {sorted(bad)} (known: "
                          f"{', '.join(sorted(_STUDY_KEYS))})")
    agents = raw.get("agents", [])
    if not isinstance(agents, list) or not all(isinstance(a, dict) for a in agents):
        raise ConfigError(f"{where}: agents must be an array of tables ([[agents]])")
    entries = []
    for i, a in enumerate(agents):
        bad = set(a) - _AGENT_KEYS
        missing = {"name", "ref", "colour"} - set(a)
        if bad or missing:
            raise ConfigError(f"{where}: agents[{i}] " + (f"has unknown key(s) {sorted(bad)}"
                              if bad else f"lacks {sorted(missing)}"))
        entries.append(AgentEntry(**a))
    return StudyConfig(agents=tuple(entries), **study).validate()


def load_study(path: str | Path) -> StudyConfig:
    """Read and check the study file ``path`` (layout included; agents: :func:`load_agents`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"study file {path}: {e.strerror}") from None
    cfg = parse_study(text, str(path))
    if cfg.game == "overcooked":
        check_layout(cfg)
    return cfg


def check_layout(cfg: StudyConfig):
    """The study's Layout; ConfigError naming it if it is unknown or unplayable."""
    try:
        return get_layout(cfg.layout)
    except (LayoutError, ValueError, OSError) as e:
        raise ConfigError(f"study.layout = {cfg.layout!r}: not a layout ({e}; known: "
                          f"{', '.join(layout_names())})") from None


def load_agents(cfg: StudyConfig) -> dict:
    """name -> :class:`~coplay.agents.base.Agent` for every agent of the study; ConfigError
    naming the agent whose reference cannot be loaded."""
    layout = check_layout(cfg) if cfg.game == "overcooked" else None
    agents = {}
    for i, a in enumerate(cfg.agents):
        where = f"agents[{i}] ({a.name}).ref = {a.ref!r}"
        try:
            agent = resolve(a.ref, layout=layout)
        except Exception as e:  # RunError, ZooError, ValueError: the message names it
            raise ConfigError(f"{where}: cannot load this agent ({e})") from None
        if agent.kind != cfg.game:
            raise ConfigError(f"{where}: a {agent.kind} agent, not one for study.game = "
                              f"{cfg.game!r}")
        agents[a.name] = agent
    return agents
