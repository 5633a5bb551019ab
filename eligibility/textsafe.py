"""User text made safe to echo: shortened for one-line messages, literal for markdown.

Patient IDs, disease values, column names, file and scenario names come from users.
A message quoting one must stay one short line, and a dashboard label or caption
(rendered as markdown by Streamlit) must show it as typed: never an image, a link,
an icon or formatting.
"""

from __future__ import annotations

import re

MESSAGE_VALUE_CHARS = 60  # a value quoted in a one-line message

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_BACKTICKS = re.compile(r"`+")


def shorten(value: object, limit: int = MESSAGE_VALUE_CHARS) -> str:
    """One line of at most `limit` characters (plus the length note when cut)."""
    text = _CONTROL.sub(" ", str(value))
    if len(text) <= limit:
        return text
    return f"{text[: max(limit - 1, 1)]}… ({len(text):,} characters)"


def markdown_literal(value: object, limit: int | None = 200) -> str:
    """`value` as a markdown code span: shown exactly as typed (shortened to `limit`).

    Backslash escapes are not enough: Streamlit's markdown turns any `http://…` or
    `www.…` in text into a link and `:material/x:` or `:smile:` into icons, after the
    escapes are read. Inside a code span nothing is interpreted: no link, image, HTML,
    icon, colour or maths. The fence is one backtick longer than any run in the text."""
    text = shorten(value, limit) if limit else _CONTROL.sub(" ", str(value))
    if not text:
        return ""
    fence = "`" * (max((len(m) for m in _BACKTICKS.findall(text)), default=0) + 1)
    return f"{fence} {text} {fence}"
