"""HTML building blocks of the report: escaping, number formats, tables, sections, the page.

Text from a run (responses, prompts, stage names, event messages) is
untrusted: every function escapes what it is given unless it is already
:class:`Html`, the marker for markup built here. The page carries its CSS
inline and needs no script, so one file reads the same offline, attached to
an e-mail, or years later.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

from alignkit import __version__
from alignkit.eval.stats import Interval

MISSING = "—"


class Html(str):
    """Markup built by this module: inserted as is, never escaped again."""


def escape(value: object) -> Html:
    """``value`` as text safe inside an element or a quoted attribute."""
    return value if isinstance(value, Html) else Html(html.escape(str(value), quote=True))


def join(parts: Iterable[str]) -> Html:
    """Several pieces of markup, one after the other (text pieces are escaped)."""
    return Html("\n".join(escape(p) for p in parts))


def number(value: float | int | None, digits: int = 3) -> str:
    """A figure as the report prints it: ``0.612``, ``42``, or a dash when undefined."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def interval(value: Interval | None) -> str:
    """``0.612 [0.571, 0.655]``: the estimate and its 95% interval."""
    if value is None:
        return MISSING
    if math.isnan(value.low) or math.isnan(value.high):
        return number(value.value)
    return f"{number(value.value)} [{number(value.low)}, {number(value.high)}]"


def seconds(value: float | None) -> str:
    """Wall time: ``12.3 s`` or ``4 min 05 s``."""
    if value is None:
        return MISSING
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s"


def element(tag: str, content: object, cls: str | None = None) -> Html:
    """``<tag class=cls>content</tag>`` with ``content`` escaped unless it is markup."""
    attribute = f' class="{escape(cls)}"' if cls else ""
    return Html(f"<{tag}{attribute}>{escape(content)}</{tag}>")


def table(header: Sequence[object], rows: Sequence[Sequence[object]], cls: str = "figures",
          row_classes: Sequence[str | None] | None = None) -> Html:
    """A table; cells are escaped unless they are :class:`Html`; a row may have a class."""
    head = "".join(str(element("th", h)) for h in header)
    classes = row_classes or [None] * len(rows)
    body = "\n".join((f'<tr class="{escape(c)}">' if c else "<tr>")
                     + "".join(str(element("td", cell)) for cell in row) + "</tr>"
                     for row, c in zip(rows, classes, strict=True))
    return Html(f'<table class="{escape(cls)}"><thead><tr>{head}</tr></thead>'
                f"<tbody>\n{body}\n</tbody></table>")


def note(missing: str) -> Html:
    """The line shown instead of a part the run does not have."""
    return element("p", f"not in this run: {missing}", "note")


def paragraph(text: object) -> Html:
    return element("p", text)


def section(section_id: str, title: str, parts: Iterable[str]) -> Html:
    """``<section id=...>`` with its heading; ``parts`` is markup (text parts are escaped)."""
    return Html(f'<section id="{escape(section_id)}">\n<h2>{escape(title)}</h2>\n'
                f"{join(parts)}\n</section>")


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> Html:
    """The whole document: ``sections`` are ``(id, title, markup)``; a contents list leads."""
    contents = "".join(f'<li><a href="#{escape(i)}">{escape(t)}</a></li>'
                       for i, t, _ in sections)
    body = "\n".join(markup for _, _, markup in sections)
    return Html(f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="alignkit {escape(__version__)}">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>{escape(title)}</h1><p class="subtitle">{escape(subtitle)}</p>
<nav><ol>{contents}</ol></nav></header>
<main>
{body}
</main>
</body>
</html>
""")


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2329;
       margin: 0 auto; max-width: 1100px; padding: 1.5rem; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 2px solid #d0d7de; padding-bottom: 0.2rem; }
h3 { margin-bottom: 0.3rem; }
.subtitle { color: #57606a; margin-top: 0; }
nav ol { columns: 3; font-size: 0.95rem; }
section { margin: 2rem 0; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.92rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
table.figures { display: block; max-width: 100%; overflow-x: auto; }
table.figures td { font-variant-numeric: tabular-nums; white-space: nowrap; }
table.samples { table-layout: fixed; width: 100%; }
.response { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.9rem; }
pre { background: #f6f8fa; padding: 0.7rem; overflow-x: auto; font-size: 0.85rem;
      white-space: pre-wrap; }
.prompt { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f8fa;
          padding: 0.4rem 0.6rem; margin: 0.3rem 0; }
.note { color: #6e7781; font-style: italic; }
.alarm td { background: #fff1e5; }
figure { margin: 0.8rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #57606a; font-size: 0.9rem; }
.status-failed { color: #cf222e; font-weight: bold; }
.status-running { color: #9a6700; font-weight: bold; }
"""
