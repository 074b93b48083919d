"""A corpus of hostile and broken files, generated on the fly: one generator per kind.

Each kind writes one file (the "bad" one) into its own folder, next to a good Markdown file that
must be indexed whatever the bad one does. A kind says what must become of the bad file: the
reason the run reports for it (every fragment must appear in the failure, which is keyed by the
file's path), or that it is indexed. Kinds with a ``fault`` need something to happen to the file
during the run (see tests/test_ingest_bad_corpus.py), which no file on disk can carry.

Nothing here is a committed blob: every file is built in a fraction of a second from a few
small templates (python-docx, python-pptx, pypdf, msoffcrypto, PIL, or bytes written by hand).
"""

from __future__ import annotations

import io
import os
import socket
import stat
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

GOOD_TEMPLATE = "# Neighbour of {kind}\n\nThe {kind} folder's good file says the meal allowance is {n} euros.\n"


@dataclass(frozen=True)
class BadInput:
    kind: str  # the test id, and the name of the kind's folder
    name: str | bytes  # the bad file's name in that folder (bytes: not valid UTF-8)
    make: Callable[[Path], object]  # writes the bad file at the given path
    reason: tuple[str, ...] | None  # fragments of the reported failure; None: it is indexed
    indexed_text: tuple[str, ...] = ()  # what the bad file's chunks must hold, when it is indexed
    fault: str | None = None  # what happens to the file during the run
    needs: str | None = None  # a capability the kind needs ("mknod"); skipped without it
    # A kind that needs size runs under its own bound, on one backend: "memory" (a parser memory
    # limit just above what the parsers need) or "timeout" (a short parse timeout).
    bound: str | None = None
    max_file_mb: float | None = None  # a raised CAIRN_MAX_FILE_MB for the kind

    @property
    def rel_path(self) -> str:
        """The path the report names: bytes that are not UTF-8 are shown as \\xNN escapes."""
        name = self.name if isinstance(self.name, str) else self.name.decode("utf-8", "backslashreplace")
        return f"{self.kind}/{name}"

    def good_text(self, index: int) -> str:
        return GOOD_TEMPLATE.format(kind=self.kind, n=100 + index)


def write_corpus(root: Path, kinds: list[BadInput]) -> dict[str, Path]:
    """One folder per kind with its bad file and good.md; returns kind -> path of the bad file."""
    paths = {}
    for index, kind in enumerate(kinds):
        folder = root / kind.kind
        folder.mkdir(parents=True)
        (folder / "good.md").write_text(kind.good_text(index))
        name = kind.name if isinstance(kind.name, str) else os.fsdecode(kind.name)
        path = folder / name
        kind.make(path)
        paths[kind.kind] = path
    return paths


# --- text files -------------------------------------------------------------------------------
PARAGRAPH = "The travel policy covers trains, flights and hotels booked through the portal. "


def empty_file(path: Path) -> None:
    path.write_bytes(b"")


def elf_binary(path: Path) -> None:
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)) * 4)


def latin1_text(path: Path) -> None:
    path.write_bytes("Café crème: the cafétéria opens at 8h, déjà vu.\n".encode("cp1252"))


def utf16_text(path: Path) -> None:
    """What Windows Notepad saved as "Unicode": a BOM, then two bytes a character (half NUL)."""
    path.write_bytes("Offsite backup rotation happens every Friday at noon.\n".encode("utf-16"))


def nul_bytes_in_markdown(path: Path) -> None:
    """UTF-8 Markdown with stray NULs: a bad editor, a bad copy."""
    path.write_bytes(b"# Parking\n\nVisitors park on level \x00two\x00 of the garage.\n")


def nul_padded_markdown(path: Path) -> None:
    """A file whose tail is zeros, as a crash leaves a file that was being written."""
    path.write_bytes(b"# Canteen\n\nThe canteen serves lunch from noon to two.\n" + b"\x00" * 65536)


def long_line_over_the_limit(path: Path) -> None:
    """One line of 50 MiB and a bit: past the default CAIRN_MAX_FILE_MB, refused unread."""
    with path.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024 + 4096)  # sparse: costs no disk; the size alone refuses it


def long_line_under_a_raised_limit(path: Path) -> None:
    """One line of 40 MB of words without a full stop: the text partitioner's sentence model
    takes minutes on it, so the parse timeout must end it."""
    block = b"word " * 200_000
    with path.open("wb") as handle:
        for _ in range(40):
            handle.write(block)


def csv_ragged(path: Path) -> None:
    path.write_text('region,office,"quoted, with comma\nnorth,Oslo\nsouth,Lyon,x,y,z\n"unterminated,row\n')


def unsupported_type(path: Path) -> None:
    path.write_text("not a supported type")


# --- HTML -------------------------------------------------------------------------------------
def deeply_nested_html(path: Path) -> None:
    """100,000 nested <div>: a parser that recurses per level would blow the stack."""
    depth = 100_000
    path.write_text(
        "<html><body><main><p>Badge photos are taken at reception.</p>"
        + "<div>" * depth
        + "Deep inside."
        + "</div>" * depth
        + "</main></body></html>"
    )


def chrome_only_html(path: Path) -> None:
    path.write_text(
        "<html><body><nav><a href='/'>Home</a><a href='/hr'>HR</a></nav><footer>(c) ACME</footer></body></html>"
    )


# --- PDF --------------------------------------------------------------------------------------
def _pdf(objects: list[bytes]) -> bytes:
    """A PDF from numbered object bodies (1 is the catalog), with a correct xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def empty_pdf(path: Path) -> None:
    path.write_bytes(b"")


def truncated_pdf(path: Path) -> None:
    data = _text_pdf(["Leave requests go through the HR portal."] * 3)
    path.write_bytes(data[: len(data) // 3])


def _text_pdf(lines: list[str]) -> bytes:
    """One page per line of text, in Helvetica (an empty line: a blank page); pages share the font."""
    pages = len(lines)
    # 1 catalog, 2 pages, 3 font, 4 the empty content stream, then per page: the page and its content
    kids = b" ".join(b"%d 0 R" % (5 + 2 * i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        _stream(b""),
    ]
    for i, line in enumerate(lines):
        content = 6 + 2 * i if line else 4
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % content
        )
        objects.append(_stream(b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % line.encode("latin-1")) if line else b"null")
    return _pdf(objects)


def encrypted_pdf(path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(_text_pdf(["Bonus rules for 2026."]))).pages:
        writer.add_page(page)
    writer.encrypt("secret")
    with path.open("wb") as handle:
        writer.write(handle)


def scanned_pdf(path: Path) -> None:
    """Two pages that are only pictures of text, as a scanner makes them."""
    from PIL import Image, ImageDraw

    pages = []
    for n in range(2):
        image = Image.new("L", (620, 200), 255)
        ImageDraw.Draw(image).text((20, 80), f"Scanned contract, page {n + 1}", fill=0)
        pages.append(image)
    pages[0].save(path, "PDF", resolution=72, save_all=True, append_images=pages[1:])


def many_pages_pdf(path: Path, pages: int = 5000, text_every: int = 100) -> None:
    """5,000 pages, written by hand (pypdf or a layout engine would take seconds). One page in a
    hundred has a line of text: every page is still read, but the run embeds 50 chunks, not 5,000."""
    lines = [f"Page {n} of the archived maintenance log." if n % text_every == 1 else "" for n in range(1, pages + 1)]
    path.write_bytes(_text_pdf(lines))


# --- Office (zip) files -----------------------------------------------------------------------
def _docx_bytes(text: str = "The board approved the budget.") -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def docx_zip_bomb(path: Path, expanded_mb: int = 1024) -> None:
    """A real DOCX whose document.xml inflates to a gigabyte of one word (1.5 MB on disk).

    The deflate stream is one compressed megabyte repeated: a full flush makes each copy stand
    alone, so the bomb is built in about a second (compressing a gigabyte would take ten)."""
    source = zipfile.ZipFile(io.BytesIO(_docx_bytes()))
    members = []
    for item in source.infolist():
        data = source.read(item)
        if item.filename == "word/document.xml":
            head, tail = data.split(b"The board approved the budget.")
            block = b"boom " * 200_000  # 1 MB
            compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
            start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
            repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
            end = compressor.compress(tail) + compressor.flush()
            crc = zlib.crc32(head)
            for _ in range(expanded_mb):
                crc = zlib.crc32(block, crc)
            crc = zlib.crc32(tail, crc)
            size = len(head) + len(block) * expanded_mb + len(tail)
            members.append((item.filename, crc, size, start + repeated * expanded_mb + end))
        else:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            members.append((item.filename, zlib.crc32(data), len(data), compressor.compress(data) + compressor.flush()))
    path.write_bytes(_zip(members))


def _zip(members: list[tuple[str, int, int, bytes]]) -> bytes:
    """A zip of deflated members (name, CRC-32, inflated size, raw deflate data), written by hand."""
    out, central = io.BytesIO(), []
    for name, crc, size, data in members:
        encoded = name.encode()
        fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x21, crc, len(data), size)
        central.append(
            b"PK\x01\x02"
            + struct.pack("<H", 20)
            + fields
            + struct.pack("<HHHHHII", len(encoded), 0, 0, 0, 0, 0, out.tell())
            + encoded
        )
        out.write(b"PK\x03\x04" + fields + struct.pack("<HH", len(encoded), 0) + encoded + data)
    directory = b"".join(central)
    offset = out.tell()
    out.write(directory)
    out.write(b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(members), len(members), len(directory), offset, 0))
    return out.getvalue()


def docx_billion_laughs(path: Path) -> None:
    """Nested XML entities that expand exponentially (the "billion laughs")."""
    source = zipfile.ZipFile(io.BytesIO(_docx_bytes()))
    entities = '<!ENTITY lol0 "lol">' + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "word/document.xml":
                text = data.decode()
                declaration_end = text.index("?>") + 2
                text = text[:declaration_end] + f"<!DOCTYPE w:document [{entities}]>" + text[declaration_end:]
                data = text.replace("The board approved the budget.", "&lol9;").encode()
            out.writestr(item, data)


def encrypted_docx(path: Path) -> None:
    """Password-protected in Word: an OLE compound file holding the encrypted package."""
    from msoffcrypto.format.ooxml import OOXMLFile

    with path.open("wb") as handle:
        OOXMLFile(io.BytesIO(_docx_bytes("Salary review, confidential."))).encrypt("secret", handle)


def truncated_docx(path: Path) -> None:
    data = _docx_bytes()
    path.write_bytes(data[: len(data) // 2])


def text_named_docx(path: Path) -> None:
    path.write_text("This is plain text that was saved with a .docx name.\n")


def xlsx_million_cells(path: Path, rows: int = 10_000, columns: int = 100) -> None:
    """A sheet of rows x columns numbers (a million cells), its XML written by hand in a second."""
    letters = [_column(c) for c in range(columns)]

    def sheet_rows():
        for r in range(1, rows + 1):
            cells = "".join(f'<c r="{letters[c]}{r}"><v>{r * columns + c}</v></c>' for c in range(columns))
            yield f'<row r="{r}">{cells}</row>'.encode()

    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="Ledger" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for name, text in parts.items():
            out.writestr(name, text)
        with out.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
            )
            for row in sheet_rows():
                sheet.write(row)
            sheet.write(b"</sheetData></worksheet>")


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def pptx_without_text(path: Path) -> None:
    """Three slides holding only a picture each, no text box and no notes."""
    from PIL import Image
    from pptx import Presentation

    picture = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(picture, "PNG")
    presentation = Presentation()
    for _ in range(3):
        slide = presentation.slides.add_slide(presentation.slide_layouts[6])  # the blank layout
        picture.seek(0)
        slide.shapes.add_picture(picture, 0, 0)
    presentation.save(path)


# --- e-mail -----------------------------------------------------------------------------------
def eml_nested_attachments(path: Path, depth: int = 7) -> None:
    """A message forwarding a message forwarding a message... seven deep, each with a DOCX and a
    ZIP attached. The first six levels are indexed, attachments included (deeper forwards are left out)."""
    from email.message import EmailMessage

    def message(level: int) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = f"level{level}@example.com"
        msg["To"] = "all@example.com"
        msg["Subject"] = f"Forward level {level}"
        msg.set_content(f"Level {level}: the office move is planned for the spring.")
        msg.add_attachment(
            _docx_bytes(f"Attachment at level {level}."),
            maintype="application",
            subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
            filename=f"plan-{level}.docx",
        )
        msg.add_attachment(
            b"PK\x05\x06" + b"\x00" * 18, maintype="application", subtype="zip", filename=f"archive-{level}.zip"
        )
        if level < depth:
            msg.add_attachment(message(level + 1))
        return msg

    path.write_bytes(bytes(message(1)))


# --- the file system --------------------------------------------------------------------------
def fifo(path: Path) -> None:
    os.mkfifo(path)


def device_file(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null


def unix_socket(path: Path) -> None:
    """Bound in a short folder, then moved in place: a socket's path is limited to 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="sock") as short:
        server = socket.socket(socket.AF_UNIX)
        try:
            server.bind(os.path.join(short, "s"))
        finally:
            server.close()  # the socket file stays
        os.rename(os.path.join(short, "s"), path)


def dangling_symlink(path: Path) -> None:
    os.symlink(path.parent / "does-not-exist.md", path)


def symlink_out_of_root(path: Path) -> None:
    os.symlink("/etc/hostname", path)


def plain_markdown(path: Path) -> None:
    path.write_text(f"# Shuttle\n\nThe shuttle leaves every 20 minutes.\n\n{PARAGRAPH}\n")


# --- the corpus -------------------------------------------------------------------------------
_REMOVE = ("not a regular file", "remove it")
_GONE = ("disappeared", "moved or deleted")
_EMPTY = ("empty file", "nothing to index")

KINDS: list[BadInput] = [
    # what tests/test_ingest_bad_input.py covers, again in one folder each
    BadInput("empty", "empty.md", empty_file, _EMPTY),
    BadInput("binary-as-text", "binary.txt", elf_binary, ("binary content", "wrong extension", "rename")),
    BadInput("unsupported-type", "notes.xyz", unsupported_type, ("unsupported file type '.xyz'", "convert it")),
    BadInput("dangling-symlink", "dangling.md", dangling_symlink, ("broken symlink", "fix or remove the link")),
    BadInput(
        "symlink-out-of-root", "hostname.md", symlink_out_of_root, ("outside the ingested folder", "copy the file in")
    ),
    BadInput("truncated-pdf", "truncated.pdf", truncated_pdf, ("corrupt or truncated", "copy it again")),
    BadInput("encrypted-pdf", "encrypted.pdf", encrypted_pdf, ("encrypted PDF", "remove the password")),
    BadInput("latin1-text", "latin1.txt", latin1_text, None, ("Café crème: the cafétéria opens at 8h",)),
    # issue 21
    BadInput(
        "docx-zip-bomb",
        "bomb.docx",
        docx_zip_bomb,
        ("zip bomb", "word/document.xml inflates", "refused unread", "split it"),
    ),
    BadInput(
        "docx-billion-laughs",
        "laughs.docx",
        docx_billion_laughs,
        ("could not parse the DOCX", "entity amplification", "save it again"),
    ),
    BadInput(
        "xlsx-million-cells",
        "ledger.xlsx",
        xlsx_million_cells,
        ("more than the", "CAIRN_PARSE_MEMORY_MB", "split it"),
        bound="memory",
    ),
    BadInput(
        "deeply-nested-html",
        "deep.html",
        deeply_nested_html,
        ("nested", "levels deep", "would silently drop", "flatten it"),
    ),
    BadInput(
        "one-50mb-line",
        "oneline.txt",
        long_line_over_the_limit,
        ("over the 50 MB limit (CAIRN_MAX_FILE_MB)", "split it"),
    ),
    BadInput(
        "40mb-line-raised-limit",
        "oneline.txt",
        long_line_under_a_raised_limit,
        ("took longer than", "CAIRN_PARSE_TIMEOUT_S", "split it"),
        bound="timeout",
        max_file_mb=64,
    ),
    BadInput(
        "nul-bytes-markdown", "parking.md", nul_bytes_in_markdown, None, ("Visitors park on level two of the garage.",)
    ),
    BadInput(
        "nul-padded-markdown", "canteen.md", nul_padded_markdown, None, ("The canteen serves lunch from noon to two.",)
    ),
    BadInput("utf16-text", "backup.txt", utf16_text, None, ("Offsite backup rotation happens every Friday at noon.",)),
    BadInput(
        "encrypted-docx",
        "salaries.docx",
        encrypted_docx,
        ("password-protected (encrypted) DOCX", "save a copy without a password"),
    ),
    BadInput(
        "truncated-docx", "cut.docx", truncated_docx, ("not a valid DOCX", "corrupt or truncated", "save it again")
    ),
    BadInput(
        "text-named-docx", "memo.docx", text_named_docx, ("not a valid DOCX", "wrong extension", "fix its extension")
    ),
    BadInput(
        "scanned-pdf",
        "scan.pdf",
        scanned_pdf,
        ("no text could be extracted", "scanned", "does not run OCR", "run OCR on it first"),
    ),
    BadInput(
        "eml-nested-attachments",
        "forward.eml",
        eml_nested_attachments,
        None,
        ("Level 6: the office move", "Attachment at level 6."),
    ),
    BadInput(
        "pptx-without-text",
        "pictures.pptx",
        pptx_without_text,
        ("no text could be extracted from the PPTX", "only pictures"),
    ),
    BadInput(
        "html-chrome-only", "menu.html", chrome_only_html, ("no text could be extracted from the HTML", "page chrome")
    ),
    BadInput("csv-unterminated-quote", "offices.csv", csv_ragged, ("could not parse the CSV", "save it again")),
    BadInput(
        "changed-while-read",
        "growing.md",
        plain_markdown,
        ("changed while it was being read", "run the ingest again"),
        fault="append_after_parse",
    ),
    BadInput("name-with-newline", "two\nlines.md", plain_markdown, None, ("The shuttle leaves every 20 minutes.",)),
    BadInput("name-invalid-utf8", b"caf\xe9-menu.md", plain_markdown, ("not valid UTF-8", "rename the file")),
    BadInput("fifo", "pipe.md", fifo, _REMOVE),
    BadInput("device-file", "null.md", device_file, _REMOVE, needs="mknod"),
    BadInput("unix-socket", "socket.md", unix_socket, _REMOVE),
    BadInput("deleted-before-hashing", "gone.md", plain_markdown, _GONE, fault="delete_after_discovery"),
    BadInput("deleted-before-parsing", "vanished.md", plain_markdown, _GONE, fault="delete_before_parse"),
    BadInput("empty-pdf", "zero.pdf", empty_pdf, _EMPTY),
    BadInput("pdf-5000-pages", "log.pdf", many_pages_pdf, None, ("Page 4901 of the archived maintenance log.",)),
]


def can_mknod(folder: Path) -> bool:
    probe = folder / ".mknod-probe"
    try:
        os.mknod(probe, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except OSError:
        return False
    probe.unlink()
    return True
