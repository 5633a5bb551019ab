"""User text made safe to echo: shortened for one-line messages, literal for markdown.

Patient IDs, disease values, column names, file and scenario names come from users.
A message quoting one must stay one short line, and a dashboard label or caption
(rendered as markdown by Streamlit) must show it as typed: never an image, a link,
an icon shortcode or formatting.
"""

from __future__ import annotations

import re

MESSAGE_VALUE_CHARS = 60  # a value quoted in a one-line message

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|:~$=&^\"'])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def shorten(value: object, limit: int = MESSAGE_VALUE_CHARS) -> str:
    """One line of at most `limit` characters (plus the length note when cut)."""
    text = _CONTROL.sub(" ", str(value))
    if len(text) <= limit:
        return text
    return f"{text[: max(limit - 1, 1)]}… ({len(text):,} characters)"


def markdown_literal(value: object, limit: int | None = 200) -> str:
    """`value` as markdown that renders as exactly this text (shortened to `limit`).

    Every ASCII punctuation character that markdown, Streamlit's directives
    (`:material/x:`, `:red[...]`, `$math$`) or HTML could read is backslash-escaped
    (CommonMark allows escaping any ASCII punctuation), and line breaks become spaces."""
    text = shorten(value, limit) if limit else _CONTROL.sub(" ", str(value))
    return _MD_SPECIAL.sub(r"\\\1", text)
