"""Parse one file with `unstructured` into the blocks a reader sees: headings, text, tables,
with page numbers. Page chrome (navigation, menus, breadcrumbs, headers, footers) is dropped.

Hostile or broken files are refused before a parser reads them where a cheap look tells:
office files that are not zip archives or are password-protected, zip bombs, HTML nested past
what its parser keeps. Each refusal says what happened and what to do.

Runs inside parser worker processes (see ingest/parser_pool.py), so it returns plain data.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from bs4 import BeautifulSoup, Tag

from ingest.discovery import DISAPPEARED


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
    try:
        return _parse(Path(path), file_type)
    except FileNotFoundError as exc:  # moved or deleted since the run listed it
        raise ParseError(DISAPPEARED) from exc


def _parse(file: Path, file_type: str) -> ParsedDocument:
    label = file_type.upper()
    if file_type in ("txt", "md", "csv"):
        text = read_text(file)
    if file_type == "pdf":
        _check_pdf(file)
    if file_type in _OFFICE_ZIPS:
        _check_office_zip(file, label)

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
        elif file_type == "eml":
            title, elements = None, _partition_email(file)
        else:  # docx, pptx, xlsx: unstructured picks the partitioner by type
            from unstructured.partition.auto import partition

            title, elements = None, partition(filename=str(file))
    except (ParseError, FileNotFoundError, MemoryError, RecursionError):
        raise  # each has its own reason (the worker reports the last two)
    except Exception as exc:  # unstructured raises many kinds; the user needs the reason
        raise ParseError(
            f"could not parse the {label} file ({type(exc).__name__}: {exc}): it is corrupt or truncated, or not "
            f"really a {label}; check that it opens in its application, save it again and ingest the copy"
        ) from exc

    structured = file_type in ("html", "md", "docx", "pptx", "xlsx")
    blocks = _to_blocks(elements, structured)
    if not any(b.kind != "heading" for b in blocks):
        raise ParseError(_no_text(label))
    return ParsedDocument(title=title or _first_heading(blocks) or file.stem, blocks=blocks)


def _no_text(label: str) -> str:
    if label == "PDF":
        return (
            "no text could be extracted: the PDF has no text layer, its pages are images (a scanned "
            "document?), and Cairn does not run OCR; run OCR on it first (e.g. `ocrmypdf scan.pdf "
            "scan-ocr.pdf`) and ingest the searchable copy"
        )
    return (
        f"no text could be extracted from the {label}: it holds only pictures, page chrome or nothing; "
        "nothing to index (if it should have text, check that it opens with its text in its application)"
    )


_BINARY = (
    "binary content in a text file (wrong extension?): it holds NUL bytes and is not UTF-8 text; "
    "rename it to its real type, or remove it from the folder"
)
# UTF-32 first: its little-endian mark starts like UTF-16's
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")
)


def read_text(file: Path) -> str:
    """Decode a text file: a UTF-16/32 byte-order mark, UTF-8, else the charset detected.

    NUL bytes in otherwise UTF-8 text (a bad copy; the zeros a crash leaves at the end of a file
    being written) are dropped; with NULs and no UTF-8, the content is binary and refused."""
    data = file.read_bytes()
    for bom, codec in _BOMS:  # Windows "Unicode" text: half its bytes are NULs
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise ParseError(
                    f"starts as {codec.upper()} text but does not decode as such ({exc.reason} at byte {exc.start}); "
                    "re-save the file as UTF-8"
                ) from exc
    if b"\x00" in data:
        try:
            return data.replace(b"\x00", b"").decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ParseError(_BINARY) from None
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
    except FileNotFoundError:
        raise
    except (PdfReadError, ValueError, OSError) as exc:
        raise ParseError(
            f"could not read the PDF ({exc}): the file is corrupt or truncated; copy it again from its source, "
            "or export it again"
        ) from exc
    if encrypted:
        raise ParseError("encrypted PDF: export an unencrypted copy or remove the password")


_OFFICE_ZIPS = {"docx", "pptx", "xlsx"}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a compound file: legacy Office, or a protected one
# Zip bombs, as Apache POI's ZipSecureFile judges them: a part that inflates more than 100 times
# (past a grace size, since small XML parts compress that well) or a package that inflates past
# what a parser's memory could hold.
_ZIP_MAX_RATIO = 100
_ZIP_RATIO_GRACE = 10 * 1024 * 1024
_ZIP_MAX_INFLATED = 1024 * 1024 * 1024


def _check_office_zip(file: Path, label: str) -> None:
    """Refuse, before a parser unpacks it, an office file that is not a readable zip package."""
    with file.open("rb") as handle:
        head = handle.read(len(_OLE_MAGIC))
    if head == _OLE_MAGIC:
        if "EncryptedPackage".encode("utf-16-le") in file.read_bytes():
            raise ParseError(
                f"password-protected (encrypted) {label}: Cairn cannot read it; save a copy without a password "
                "and ingest that"
            )
        raise ParseError(
            f"a legacy binary Office file (.doc, .xls or .ppt) named .{label.lower()}: open it in its application "
            f"and save it as {label}"
        )
    try:
        with zipfile.ZipFile(file) as package:
            parts = package.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise ParseError(
            f"not a valid {label} file: it is not a zip archive, as every {label} is ({exc}); it is corrupt or "
            f"truncated, or has the wrong extension; save it again from its application, or fix its extension"
        ) from exc
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > _ZIP_RATIO_GRACE and ratio > _ZIP_MAX_RATIO:
            raise ParseError(
                f"zip bomb: its part {part.filename} inflates {ratio:.0f} times, from {_mb(part.compress_size)} to "
                f"{_mb(part.file_size)} (more than {_ZIP_MAX_RATIO} times); refused unread. If the {label} is "
                "genuine, split it into smaller files"
            )
    inflated = sum(part.file_size for part in parts)
    if inflated > _ZIP_MAX_INFLATED:
        raise ParseError(
            f"the {label} inflates to {_mb(inflated)}, more than the {_mb(_ZIP_MAX_INFLATED)} a parser unpacks; "
            "refused unread: split it into smaller files"
        )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


# unstructured hands HTML to libxml2, which stops at 256 levels (with <html><body><main> above)
# and drops whatever lies deeper without a word.
_MAX_HTML_DEPTH = 250


def _partition_html(data: bytes) -> tuple[str | None, list]:
    from unstructured.partition.html import partition_html

    soup = BeautifulSoup(data, "lxml")
    title = None
    if soup.title and soup.title.string:
        title = soup.title.string.strip()
    main = soup.find("main") or soup.find(attrs={"role": "main"}) or soup.body or soup
    depth = _nesting_depth(main)
    if depth > _MAX_HTML_DEPTH:
        raise ParseError(
            f"the HTML is nested {depth} levels deep; its parser reads {_MAX_HTML_DEPTH} levels and would silently "
            "drop what lies deeper, so the page is refused: flatten it (such depth is usually unclosed tags in a "
            "generated page), or save it as text"
        )
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


def _nesting_depth(root: Tag) -> int:
    """The deepest element below ``root``, walked without recursion (the depth is the threat)."""
    deepest, stack = 0, [(root, 0)]
    while stack:
        tag, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in tag.children if isinstance(child, Tag))
    return deepest


# Forwarded messages nested deeper than this are left out of an e-mail's text.
_MAX_FORWARD_DEPTH = 5


def _partition_email(file: Path) -> list:
    from email import policy
    from email.parser import BytesParser

    from unstructured.partition.auto import partition

    message = BytesParser(policy=policy.default).parsebytes(file.read_bytes())
    if not _reattach_messages(message):
        return partition(filename=str(file))
    return partition(file=io.BytesIO(message.as_bytes()), metadata_filename=str(file))


def _reattach_messages(part, depth: int = 0) -> bool:
    """unstructured fails a whole e-mail that has a message attached (message/rfc822: its content
    is a message, not bytes). Each such message is attached again as an .eml file, which it
    partitions like any attachment; past a few levels of forwards they are left out."""
    if not part.is_multipart() or part.get_content_type() == "message/rfc822":
        return False
    changed = False
    for child in list(part.iter_parts()):
        if child.get_content_type() == "message/rfc822":
            changed = True
            inner = child.get_payload(0)
            if depth >= _MAX_FORWARD_DEPTH:
                part.get_payload().remove(child)
                continue
            _reattach_messages(inner, depth + 1)
            name = child.get_filename() or f"forwarded-{depth + 1}.eml"
            child.set_content(
                inner.as_bytes(), maintype="application", subtype="octet-stream", disposition="attachment",
                filename=name,
            )
        elif child.is_multipart():
            changed = _reattach_messages(child, depth) or changed
    return changed


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
