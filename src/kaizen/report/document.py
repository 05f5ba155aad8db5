"""A report written twice: Markdown with PNG files beside it, and one self-contained HTML file.

A :class:`Document` collects headings, paragraphs, tables and figures once; ``write`` renders it
as ``<stem>.md`` (figures as ``<stem>_<name>.png`` next to it) and ``<stem>.html`` (figures
embedded as base64 data URIs, styles inline, no external resource).
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; }
td.number { text-align: right; }
th { background: #eee; }
figure { margin: 1em 0; }
img { max-width: 100%; }
img.broken { outline: 3px solid #c00; }
figcaption { color: #555; font-size: 0.9em; }
"""


def cell(value: object, digits: int = 4) -> str:
    """A table cell: floats with ``digits`` decimals, None and NaN as "n/a", booleans as yes /
    no."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def data_uri(png: bytes) -> str:
    """The PNG image as a ``data:`` URI, to embed it in HTML without a separate file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


_NUMBER = re.compile(r"[-+]?\d")


def _html_cell(text: str) -> str:
    """A table cell; cells that start with a number are right-aligned."""
    align = ' class="number"' if _NUMBER.match(text) else ""
    return f"<td{align}>{html.escape(text)}</td>"


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass(frozen=True)
class _Heading:
    text: str

    def markdown(self, stem: str) -> str:
        return f"## {self.text}"

    def html(self) -> str:
        return f"<h2>{html.escape(self.text)}</h2>"


@dataclass(frozen=True)
class _Paragraph:
    text: str

    def markdown(self, stem: str) -> str:
        return self.text

    def html(self) -> str:
        return f"<p>{html.escape(self.text)}</p>"


@dataclass(frozen=True)
class _Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def markdown(self, stem: str) -> str:
        lines = [
            "| " + " | ".join(_markdown_cell(text) for text in self.header) + " |",
            "|" + "---|" * len(self.header),
        ]
        lines += [
            "| " + " | ".join(_markdown_cell(text) for text in row) + " |" for row in self.rows
        ]
        return "\n".join(lines)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(text)}</th>" for text in self.header)
        body = "".join(
            "<tr>" + "".join(_html_cell(text) for text in row) + "</tr>" for row in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass(frozen=True)
class _Figure:
    name: str
    png: bytes
    caption: str

    def file_name(self, stem: str) -> str:
        return f"{stem}_{self.name}.png"

    def markdown(self, stem: str) -> str:
        alt = _markdown_cell(self.caption).replace("[", "\\[").replace("]", "\\]")
        return f"![{alt}]({self.file_name(stem)})"

    def html(self) -> str:
        caption = html.escape(self.caption)
        return (
            f'<figure><img src="{data_uri(self.png)}" alt="{caption}" '
            "onerror=\"this.classList.add('broken')\">"
            f"<figcaption>{caption}</figcaption></figure>"
        )


class Document:
    """Headings, paragraphs, tables and figures, in order, under one title."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._blocks: list[_Heading | _Paragraph | _Table | _Figure] = []

    def heading(self, text: str) -> None:
        self._blocks.append(_Heading(text))

    def paragraph(self, text: str) -> None:
        self._blocks.append(_Paragraph(text))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if any(len(row) != len(header) for row in rows):
            raise ValueError(f"every row of table {list(header)} needs {len(header)} cells")
        self._blocks.append(_Table(tuple(header), tuple(tuple(row) for row in rows)))

    def figure(self, name: str, png: bytes, caption: str) -> None:
        """A PNG image; ``name`` (unique in the document) becomes part of its file name."""
        if any(isinstance(block, _Figure) and block.name == name for block in self._blocks):
            raise ValueError(f"the document already has a figure named '{name}'")
        self._blocks.append(_Figure(name, png, caption))

    def markdown(self, stem: str) -> str:
        """Markdown that refers to the figures as ``<stem>_<name>.png`` files beside it."""
        parts = [f"# {self.title}", *(block.markdown(stem) for block in self._blocks)]
        return "\n\n".join(parts) + "\n"

    def html(self) -> str:
        """One HTML page with inline styles and the figures embedded as data URIs."""
        body = "\n".join(block.html() for block in self._blocks)
        title = html.escape(self.title)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{title}</h1>\n{body}\n</body>\n</html>\n"
        )

    def write(self, out_dir: Path, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.md`` with its PNG files and ``<stem>.html`` to ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        for block in self._blocks:
            if isinstance(block, _Figure):
                (out_dir / block.file_name(stem)).write_bytes(block.png)
        markdown_path = out_dir / f"{stem}.md"
        html_path = out_dir / f"{stem}.html"
        markdown_path.write_text(self.markdown(stem))
        html_path.write_text(self.html())
        return markdown_path, html_path
