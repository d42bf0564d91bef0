"""The `coplay` dispatcher."""
import pytest

from coplay.cli import COMMANDS, main


def test_cli_reports_value_errors_without_traceback(capsys):
    assert main(["overcooked", "render", "--layout", "nowhere", "--out", "/tmp/x.gif"]) == 2
    err = capsys.readouterr().err
    assert "unknown layout 'nowhere'" in err and "Traceback" not in err


def test_cli_unknown_command(capsys):
    assert main(["ipd", "fly"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_usage_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("ipd train", "ipd eval", "ipd report", "overcooked render", "overcooked play"):
        assert cmd in out


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=" ".join)
def test_every_command_answers_help_with_its_own_usage(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"coplay {' '.join(command)}" in out  # tyro's usage line names the command


@pytest.mark.parametrize("system", sorted({s for s, _ in COMMANDS}))
def test_a_system_alone_lists_its_commands(system, capsys):
    assert main([system, "--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"coplay {system} {c}" in out for s, c in COMMANDS if s == system)
    assert not any(f"coplay {s} " in out for s, _ in COMMANDS if s != system)


def test_ipd_help_shows_the_chosen_presets_values(capsys):
    with pytest.raises(SystemExit):
        main(["ipd", "train", "--preset", "tiny", "--help"])
    out = capsys.readouterr().out
    assert "--a2c.num-updates" in out and "(default: 6)" in out  # tiny's 6 updates
    assert "--checkpoint-every" in out and "--probe-episodes" in out
    with pytest.raises(SystemExit):
        main(["ipd", "train", "--algo", "ppi", "--preset", "tiny", "--help"])
    assert "--ppi.num-phases" in capsys.readouterr().out
