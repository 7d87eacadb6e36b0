from __future__ import annotations

from pathlib import Path

import typer.main

from account_health.cli.app import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_readme_documents_every_command_and_option():
    group = typer.main.get_command(app)
    for parameter in group.params:
        for option in parameter.opts:
            assert option in README, f"global option {option} is not in README.md"
    for name, command in group.commands.items():
        assert f"account-health {name}" in README, f"command {name} is not in README.md"
        for parameter in command.params:
            if parameter.name == "help":
                continue
            names = [*parameter.opts, parameter.metavar or parameter.name.upper()]
            assert any(option in README for option in names), f"{name}: {parameter.opts} is not in README.md"


def test_readme_set_up_is_two_one_line_commands():
    blocks = README.split("## Set-up", 1)[1].split("## ", 1)[0].split("```")
    commands = [block.strip() for block in blocks[1::2]]
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/account-health quickstart",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest",
    ]
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci
