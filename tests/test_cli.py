"""The `coplay` dispatcher."""

from coplay.cli import main


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
