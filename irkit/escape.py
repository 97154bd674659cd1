"""Text from the record, made inert for where it is shown.

What the kit shows comes partly from outside the team: alert names and labels from Prometheus, a
health endpoint's component text, log lines, a remote service's error text, and whatever a
responder typed. Shown as it is, such text could start a Markdown heading or table row, plant a
link or an image, run a script in an HTML copy, or page a whole Slack channel. The record keeps
the raw text; every place that shows it escapes it here, for its own syntax, and only the kit's
own words carry formatting.
"""

from __future__ import annotations

import html as _html
import re
from typing import Any

# Everything that ends a line somewhere: CommonMark breaks at \n and \r, Python and some
# viewers at the other Unicode separators too. A value shown on one line must not start another.
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
# Other control characters (C0 and C1) have no business in a report: a terminal acts on them.
# Nor do the invisible format characters: bidirectional overrides and isolates reorder what is
# shown (a line can read as something else, CVE-2021-42574), zero-width ones hide text.
_CONTROLS = re.compile(
    r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)

# Markdown punctuation that can open something (emphasis, code, links, images, tables, math in
# Jupyter, headings, strikethrough): backslash-escaped wherever it stands. `_` only where it
# could open or close emphasis, so that `max_connections` stays readable.
_MARKDOWN_PUNCTUATION = re.compile(r"[\\`*\[\]|#~$]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# Markers that only count at the start of a line: a block quote, a list item, a setext
# underline, a numbered list ("1." or "1)").
_LINE_START = re.compile(r"^([>+\-=])|^(\d+)([.)])")
# Web addresses that GitHub-flavoured renderers would make links of by themselves: broken up by
# an escape that renders as nothing, so that an address from a value is shown, not followed.
_BARE_LINK = re.compile(r"(?<=[0-9A-Za-z])(?=://)|(?<=\bwww)(?=\.)", re.IGNORECASE)
_LINE_START_CHARS = frozenset(">+-=0123456789")
_MARKUP_START = re.compile(r"<|&(?=#?[0-9A-Za-z]+;)")
_HTML_SPECIALS = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def one_line(value: Any) -> str:
    """`value` as text on one line: line breaks become spaces, other control characters go."""
    return _CONTROLS.sub("", _LINE_BREAKS.sub(" ", str(value)))


def markdown(value: Any) -> str:
    """`value` as literal text inside a line of Markdown: nothing in it can start a heading, a
    list, a table row or a quote, nor become a link (a bare web address included), an image,
    emphasis, code, math or HTML."""
    text = one_line(value).strip()
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\g<0>", text)
    if "://" in text or "www" in text.lower():
        text = _BARE_LINK.sub(r"\\", text)
    # `<` opens every HTML tag, comment and autolink: an entity rather than a backslash, which
    # also holds in renderers that keep raw HTML. `&` only where it would start an entity
    # (`&lt;` in a value stays those four characters), so that "R&D > 5%" reads as it is.
    if "<" in text or "&" in text:
        text = _MARKUP_START.sub(lambda m: _HTML_SPECIALS[m.group(0)], text)
    if text[:1] in _LINE_START_CHARS:
        text = _LINE_START.sub(
            lambda m: f"\\{m.group(1)}" if m.group(1) else f"{m.group(2)}\\{m.group(3)}", text
        )
    return text


def markdown_cell(value: Any) -> str:
    """`value` in a cell of a Markdown table: one line, its `|` escaped (as `markdown` does)."""
    return markdown(value)


def markdown_block(value: Any) -> str:
    """Text that may run over several lines, as a Markdown paragraph: each line escaped as
    `markdown` does and kept as a line break; blank lines separate paragraphs."""
    lines = [markdown(line) for line in _LINE_BREAKS.split(str(value))]
    paragraphs = "\n".join(lines).strip("\n")
    paragraphs = re.sub(r"\n{3,}", "\n\n", paragraphs)
    # A backslash at the end of a line is CommonMark's hard line break.
    return re.sub(r"(?<=[^\n])\n(?=[^\n])", "\\\\\n", paragraphs)


def code_fence(text: str, info: str = "") -> str:
    """`text` as a fenced code block whose fence no run of backticks in it can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def html(value: Any) -> str:
    """`value` as text in HTML, element content or a quoted attribute value."""
    return _html.escape(str(value), quote=True)


def slack(value: Any) -> str:
    """`value` as literal text in a line of a Slack mrkdwn message: Slack's control characters
    `&`, `<` and `>` as entities (Slack's own rule), so that no link, mention (`<!channel>`,
    `<@U…>`) or channel reference can come from data; on one line."""
    return re.sub(r"[&<>]", lambda m: _HTML_SPECIALS[m.group(0)], one_line(value))


def chart(value: Any) -> str:
    """`value` as a matplotlib label: its `$` escaped, so that a path or queue name holding two
    of them is drawn as text, not parsed as mathtext (which fails on unknown symbols and would
    take the chart, and the cell, down with it)."""
    return one_line(value).replace("$", r"\$")


def link_target(url: str) -> str | None:
    """`url` if it is safe to put in an `href` (http, https), else None: a `javascript:` or
    `data:` URL in a configured link must not run when someone clicks it."""
    scheme = url.partition(":")[0].strip().lower()
    return url if ":" in url and scheme in ("http", "https") else None
