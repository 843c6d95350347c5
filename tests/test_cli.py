"""The command line's shape: every command listed with its summary, only the one run imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from latentgeo.cli import build_parser, command_names, main
from latentgeo.cli import commands


def test_every_command_module_has_a_summary_and_registers_under_its_name():
    assert command_names() == sorted(commands.SUMMARIES)
    parser = build_parser()  # every command in full
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sorted(sub.choices) == command_names()
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert helps == commands.SUMMARIES


def test_overview_imports_no_command_and_no_heavy_library():
    code = ("import sys\nfrom latentgeo.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "loaded = [m for m in ('numpy', 'pandas', 'scipy', 'torch', 'latentgeo.cli.commands.finetune') "
            "if m in sys.modules]\nprint('LOADED', loaded)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in out
    for name, summary in commands.SUMMARIES.items():
        assert name in out and summary[:40] in out


def test_a_command_runs_with_only_its_module_registered(capsys):
    assert main(["params", "check"]) == 0
    assert "valid (profile 'default')" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["no-such-command"])
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err
