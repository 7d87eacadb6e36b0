"""Keep control characters in data from reaching the terminal.

Account names, watch reasons and other values come from exports and the API. An escape sequence in
one of them, printed raw, could recolour, hide or rewrite what a CSM reads in `watch --list`, `tasks`
or `explain`. A render hook on the CLI's consoles shows every control character in such text as a
visible escape (`\\x1b`), while the styles and cursor moves that Rich itself emits pass unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderableType, RenderHook, RenderResult
from rich.segment import Segment

# C0 controls but tab and newline, DEL, and the C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """Return `text` with each control character written as its escape, such as \\x1b."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


class _Visible:
    """A renderable whose text segments have their control characters made visible."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.renderable, options):
            if segment.control or not _CONTROL.search(segment.text):
                yield segment
            else:
                yield Segment(visible(segment.text), segment.style)


class _VisibleControls(RenderHook):
    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Visible(renderable) for renderable in renderables]


def guard(consoles: Sequence[Console]) -> None:
    """Make control characters in printed text visible on each of `consoles`."""
    for console in consoles:
        console.push_render_hook(_VisibleControls())


__all__ = ["guard", "visible"]
