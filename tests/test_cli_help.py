"""``--help`` names every flag's default."""

import argparse

import pytest

from tuner_prune.cli import build_parser


def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("name", ["search", "export", "report", "sweep"])
def test_every_flag_shows_its_default(name, capsys):
    parser = subcommands()[name]
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    flags = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert flags
    for action in flags:
        helped = " ".join(parser._get_formatter()._get_help_string(action).split())
        assert "default" in helped, action.option_strings
        shown = helped.replace("%(default)s", str(action.default)).replace("%%", "%")
        assert shown in text, action.option_strings


def test_the_top_level_help_speaks_to_users(capsys):
    """Before, it printed cli.py's docstring, written for developers in reST."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "calls one function" not in text
    assert "COMMAND --help" in text
