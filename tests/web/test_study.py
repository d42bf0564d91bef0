"""The study file: every key checked, unknown layouts and agents named before serving."""

from __future__ import annotations

import pytest

from coplay.config import ConfigError
from coplay.web.study import StudyConfig, load_agents, load_study, parse_study

from .conftest import study_toml


def test_a_good_study(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(study_toml(episode_length=20, episodes=3, tick_hz=6))
    cfg = load_study(p)
    assert (cfg.layout, cfg.episode_length, cfg.episodes_per_agent, cfg.tick_hz) == (
        "cramped_room", 20, 3, 6)
    assert [a.name for a in cfg.agents] == ["alpha", "beta"]
    assert cfg.agents[0].hex == "#d94a3d"
    assert StudyConfig.from_json(cfg.to_json()) == cfg
    assert set(load_agents(cfg)) == {"alpha", "beta"}


def test_unknown_layout_is_named(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(study_toml(layout="atlantis"))
    with pytest.raises(ConfigError, match=r"study.layout = 'atlantis': not a layout.*known: "):
        load_study(p)


def test_unknown_agent_is_named(tmp_path):
    cfg = parse_study(study_toml(ref_b="zoo:no-such/agent"))
    with pytest.raises(ConfigError, match=r"agents\[1\] \(beta\).ref = 'zoo:no-such/agent': "
                                          "cannot load this agent"):
        load_agents(cfg)
    cfg = parse_study(study_toml(ref_b="scripted:2.5"))
    with pytest.raises(ConfigError, match=r"agents\[1\].*must be in \[0, 1\]"):
        load_agents(cfg)


@pytest.mark.parametrize("edit, says", [
    (lambda t: t.replace('name = "tiny"', 'name = "../etc"'), "study.name"),
    (lambda t: t.replace("tick_hz = 40.0", "tick_hz = 0"), "study.tick_hz"),
    (lambda t: t.replace("episode_length = 12", "episode_length = 0"), "study.episode_length"),
    (lambda t: t.replace("episode_length = 12", "episode_lenght = 12"), "unknown key"),
    (lambda t: t.replace('colour = "red"', 'colour = "blue"'), "participant's own cook"),
    (lambda t: t.replace('colour = "red"', 'colour = "mauve"'), r"agents\[0\].colour"),
    (lambda t: t.replace('name = "beta"', 'name = "alpha"'), "two agents share"),
    (lambda t: t.replace('ref = "scripted"\n', ''), "lacks"),
    (lambda t: t + "\n[extra]\n", "unknown table"),
    (lambda t: t.replace("[study]", "[study"), "not valid TOML"),
    (lambda t: t.split("[[agents]]")[0], "at least one"),
])
def test_bad_study_files_say_which_field(edit, says):
    with pytest.raises(ConfigError, match=says):
        parse_study(edit(study_toml()))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="study file .*nope.toml"):
        load_study(tmp_path / "nope.toml")
