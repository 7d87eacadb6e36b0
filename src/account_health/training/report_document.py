"""A report document: headings, paragraphs, tables, lists and figures, rendered as Markdown or HTML.

The training report is built once as a list of these blocks and rendered twice, so the Markdown and
the HTML carry the same content.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem;
       color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.35rem; padding: 0.6rem 0.8rem; border-radius: 4px; }
h1.validated { background: #dafbe1; color: #116329; }
h1.not-validated { background: #ffebe9; color: #a40e26; }
h2 { font-size: 1.15rem; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #6e7781; font-style: italic; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 0.9rem; }
"""


@dataclass(frozen=True)
class Heading:
    """A heading; `css_class` styles it in HTML (the verdict is green or red)."""

    text: str
    level: int
    css_class: str = ""


@dataclass(frozen=True)
class Paragraph:
    text: str
    note: bool = False


@dataclass(frozen=True)
class TableBlock:
    """A table with a caption; `numeric` marks the columns to right-align."""

    caption: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    numeric: tuple[bool, ...] = ()


@dataclass(frozen=True)
class Items:
    items: list[str]


@dataclass(frozen=True)
class FigureBlock:
    """A PNG in the same folder as the report, named by its file name."""

    file_name: str
    alt: str
    caption: str


Block = Heading | Paragraph | TableBlock | Items | FigureBlock


def render_markdown(blocks: list[Block]) -> str:
    """Render blocks as GitHub-flavoured Markdown; figures become relative image links."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(f"*{block.text}*" if block.note else block.text)
        elif isinstance(block, Items):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, FigureBlock):
            parts.append(f"![{block.alt}]({block.file_name})\n\n*{block.caption}*")
        else:
            parts.append(_markdown_table(block))
    return "\n\n".join(parts) + "\n"


def render_html(blocks: list[Block]) -> str:
    """Render blocks as one HTML page with inline CSS and no scripts or external references."""
    title = next((block.text for block in blocks if isinstance(block, Heading)), "Training report")
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            attribute = f' class="{block.css_class}"' if block.css_class else ""
            body.append(f"<h{block.level}{attribute}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            attribute = ' class="note"' if block.note else ""
            body.append(f"<p{attribute}>{html.escape(block.text)}</p>")
        elif isinstance(block, Items):
            items = "".join(f"<li>{html.escape(item)}</li>" for item in block.items)
            body.append(f"<ul>{items}</ul>")
        elif isinstance(block, FigureBlock):
            body.append(
                f'<figure><img src="{html.escape(block.file_name)}" alt="{html.escape(block.alt)}">'
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
            )
        else:
            body.append(_html_table(block))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _markdown_table(table: TableBlock) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    alignment = [
        "---:" if index < len(table.numeric) and table.numeric[index] else "---"
        for index in range(len(table.columns))
    ]
    lines = [
        f"**{cell(table.caption)}**",
        "",
        "| " + " | ".join(cell(column) for column in table.columns) + " |",
        "| " + " | ".join(alignment) + " |",
    ]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _html_table(table: TableBlock) -> str:
    header = "".join(f"<th>{html.escape(column)}</th>" for column in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for index, value in enumerate(row):
            numeric = index < len(table.numeric) and table.numeric[index]
            attribute = ' class="number"' if numeric else ""
            cells.append(f"<td{attribute}>{html.escape(value)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f"<table><caption>{html.escape(table.caption)}</caption>"
        f"<thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
