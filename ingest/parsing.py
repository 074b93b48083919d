"""Parse one file with `unstructured` into the blocks a reader sees: headings, text, tables,
with page numbers. Page chrome (navigation, menus, breadcrumbs, headers, footers) is dropped.

Runs inside parser worker processes (see ingest/parser_pool.py), so it returns plain data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bs4 import BeautifulSoup


class ParseError(Exception):
    """A file that cannot be indexed; the message is the plain reason shown to the user."""


@dataclass
class Block:
    kind: str  # "heading" | "text" | "table"
    text: str
    depth: int = 0  # headings only: 0 = top level
    page: int | None = None


@dataclass
class ParsedDocument:
    title: str
    blocks: list[Block] = field(default_factory=list)


# Element categories that are never reading text.
_DROPPED = {"Header", "Footer", "PageBreak", "PageNumber", "Image", "FigureCaption"}

# HTML chrome: whole elements and class/id/role words that mark navigation.
_CHROME_TAGS = ["nav", "header", "footer", "aside", "script", "style", "noscript", "form", "button", "svg"]
_CHROME_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary", "menu", "menubar"}
_CHROME_WORDS = {
    "nav", "navbar", "navigation", "menu", "breadcrumb", "breadcrumbs", "sidebar",
    "sphinxsidebar", "footer", "header", "related", "mobile-nav", "skip-link", "toc-sidebar",
    "headerlink",
}


def parse_file(path: str, file_type: str) -> ParsedDocument:
    """Parse ``path``; raise ParseError with a plain reason when it cannot be indexed."""
    file = Path(path)
    if file_type in ("txt", "md", "csv"):
        text = read_text(file)
    if file_type == "pdf":
        _check_pdf(file)

    try:
        if file_type == "html":
            title, elements = _partition_html(file.read_bytes())
        elif file_type == "md":
            from unstructured.partition.md import partition_md

            title, elements = None, partition_md(text=text)
        elif file_type == "txt":
            from unstructured.partition.text import partition_text

            title, elements = None, partition_text(text=text)
        elif file_type == "csv":
            from unstructured.partition.csv import partition_csv

            title, elements = None, partition_csv(filename=str(file))
        elif file_type == "pdf":
            from unstructured.partition.pdf import partition_pdf

            # languages: unstructured's own default, given so that every PDF does not log a warning
            title, elements = None, partition_pdf(filename=str(file), strategy="fast", languages=["eng"])
        else:  # docx, pptx, xlsx, eml: unstructured picks the partitioner by type
            from unstructured.partition.auto import partition

            title, elements = None, partition(filename=str(file))
    except ParseError:
        raise
    except Exception as exc:  # unstructured raises many kinds; the user needs the reason
        raise ParseError(f"could not parse the {file_type.upper()} file ({type(exc).__name__}: {exc}); is it corrupt or truncated?") from exc

    structured = file_type in ("html", "md", "docx", "pptx", "xlsx")
    blocks = _to_blocks(elements, structured)
    if not any(b.kind != "heading" for b in blocks):
        hint = " (a scanned PDF needs OCR, which is not enabled)" if file_type == "pdf" else ""
        raise ParseError(f"no text could be extracted{hint}")
    return ParsedDocument(title=title or _first_heading(blocks) or file.stem, blocks=blocks)


def read_text(file: Path) -> str:
    """Decode a text file: UTF-8, else the charset detected; binary content is refused."""
    data = file.read_bytes()
    if b"\x00" in data[:8192]:
        raise ParseError("binary content in a text file (wrong extension?)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise ParseError("not UTF-8 and no text encoding could be detected; re-save the file as UTF-8")
    # Detection cannot tell the Latin code pages apart on short texts; Windows-1252 is by far
    # the most common of them in office documents, so it wins when it is about as plausible.
    best = matches[0]
    western = next((m for m in matches if m.encoding == "cp1252" and m.chaos <= best.chaos + _CHAOS_TOLERANCE), None)
    return str(western or best)


_CHAOS_TOLERANCE = 0.05


def _check_pdf(file: Path) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(file))
        encrypted = reader.is_encrypted
    except (PdfReadError, ValueError, OSError) as exc:
        raise ParseError(f"could not read the PDF ({exc}); the file is corrupt or truncated") from exc
    if encrypted:
        raise ParseError("encrypted PDF: export an unencrypted copy or remove the password")


def _partition_html(data: bytes) -> tuple[str | None, list]:
    from unstructured.partition.html import partition_html

    soup = BeautifulSoup(data, "lxml")
    title = None
    if soup.title and soup.title.string:
        title = soup.title.string.strip()
    main = soup.find("main") or soup.find(attrs={"role": "main"}) or soup.body or soup
    for tag in main.find_all(_CHROME_TAGS):
        tag.decompose()
    for tag in main.find_all(True):
        if tag.decomposed:
            continue
        words = set(tag.get("class") or []) | {tag.get("id") or ""}
        if tag.get("role") in _CHROME_ROLES or words & _CHROME_WORDS:
            tag.decompose()
    h1 = main.find("h1")
    if h1 is not None and h1.get_text(strip=True):
        title = h1.get_text(" ", strip=True)
    elements = partition_html(text=f"<html><body>{main}</body></html>")
    return title, elements


def _to_blocks(elements, structured: bool) -> list[Block]:
    blocks: list[Block] = []
    for element in elements:
        category = getattr(element, "category", type(element).__name__)
        text = (element.text or "").strip()
        if not text or category in _DROPPED:
            continue
        page = getattr(element.metadata, "page_number", None)
        depth = getattr(element.metadata, "category_depth", None)
        if category == "Title" and (structured or _looks_like_heading(text)):
            blocks.append(Block("heading", text.rstrip("¶").strip(), depth or 0, page))
        elif category == "Table":
            blocks.append(Block("table", text, page=page))
        else:
            blocks.append(Block("text", text, page=page))
    return blocks


_CODE_CHARS = re.compile(r"[=(){};<>\[\]]|^\W")


def _looks_like_heading(text: str) -> bool:
    """Unstructured calls any short line of a PDF or text file a title; code lines and
    fragments are not headings, so they stay as text."""
    words = text.split()
    if not 1 <= len(words) <= 12 or _CODE_CHARS.search(text):
        return False
    if text.endswith((".", ",", ";", ":")):
        return False
    return text[0].isupper() or text[0].isdigit()


def _first_heading(blocks: list[Block]) -> str | None:
    headings = [b for b in blocks if b.kind == "heading"]
    if not headings:
        return None
    top = min(b.depth for b in headings)
    return next(b.text for b in headings if b.depth == top)
