"""Control characters from data are shown as escapes, never sent to the terminal."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from account_health.cli.terminal import guard, visible


def test_visible_writes_controls_as_escapes():
    assert visible("a\x1b[31mRED\x07\tb\nc\x9b") == "a\\x1b[31mRED\\x07\tb\nc\\x9b"


def test_guarded_console_escapes_data_only():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=80)
    guard([console])
    table = Table("reason")
    table.add_row("a\x1b[2J\x1b[31mRED")
    console.print(table)
    console.print("[bold]bold[/bold]")
    printed = out.getvalue()
    assert "a\\x1b[2J\\x1b[31mRED" in printed
    assert "\x1b[2J" not in printed
    assert "\x1b[31m" not in printed
    assert "\x1b[1mbold" in printed
