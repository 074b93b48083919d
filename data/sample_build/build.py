"""Rebuild the binary files of the Northwind Robotics sample corpus (PDF, DOCX, PPTX).

The HTML, Markdown, TXT and EML files are hand-written and committed as they are.
The binary files are generated from the outlines below, written in a small
Markdown-like markup:

    # Title            document title (PDF/DOCX) or title slide (PPTX)
    ## Heading         section heading (PPTX: a new slide)
    ### Subheading     subsection heading
    - item             bullet
    | a | b |          table row (first row is the header; |---| rows are skipped)
    other lines        paragraph text; a blank line ends the paragraph

Run from the repository root:

    .venv/bin/pip install -c constraints.txt fpdf2   # generator-only dependency
    .venv/bin/python data/sample/build.py

Outputs are byte-for-byte reproducible (fixed dates and zip timestamps), so a
rebuild does not change content hashes and does not trigger re-ingestion.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import docx
import pptx
from docx.shared import Pt
from pptx.util import Inches

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample"
AUTHOR = "Northwind Robotics"
# Fixed dates keep rebuilt files identical to the committed ones.
FIXED_DATE = dt.datetime(2025, 11, 1, 9, 0, 0, tzinfo=dt.timezone.utc)
ZIP_DATE = (2025, 11, 1, 9, 0, 0)

BlockKind = Literal["title", "heading", "subheading", "paragraph", "bullets", "table"]


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    text: str = ""
    items: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class SampleDoc:
    path: str  # relative to data/sample
    subject: str
    outline: str
    blocks: list[Block] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", parse_outline(self.outline))

    @property
    def title(self) -> str:
        return next(b.text for b in self.blocks if b.kind == "title")


def parse_outline(text: str) -> list[Block]:
    """Turn the small markup described in the module docstring into blocks."""
    blocks: list[Block] = []
    paragraph: list[str] = []
    bullets: list[str] = []
    rows: list[tuple[str, ...]] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block("paragraph", text=" ".join(paragraph)))
            paragraph.clear()
        if bullets:
            blocks.append(Block("bullets", items=tuple(bullets)))
            bullets.clear()
        if rows:
            blocks.append(Block("table", rows=tuple(rows)))
            rows.clear()

    headings: dict[str, BlockKind] = {"# ": "title", "## ": "heading", "### ": "subheading"}
    for raw in text.strip().splitlines():
        line = raw.strip()
        if not line:
            flush()
            continue
        prefix = next((p for p in ("### ", "## ", "# ") if line.startswith(p)), None)
        if prefix:
            flush()
            blocks.append(Block(headings[prefix], text=line[len(prefix):]))
        elif line.startswith("- "):
            if paragraph or rows:
                flush()
            bullets.append(line[2:])
        elif line.startswith("|"):
            if paragraph or bullets:
                flush()
            cells = tuple(c.strip() for c in line.strip("|").split("|"))
            if not all(set(c) <= set("-: ") for c in cells):
                rows.append(cells)
        else:
            if bullets or rows:
                flush()
            paragraph.append(line)
    flush()
    return blocks


def freeze_zip_timestamps(path: Path) -> None:
    """Rewrite an Office zip with fixed entry dates; python-docx/pptx stamp the current time."""
    with zipfile.ZipFile(path) as src:
        entries = [(info.filename, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in entries:
            dst.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE), data, zipfile.ZIP_DEFLATED)


def set_core_properties(props, doc: SampleDoc) -> None:
    props.title = doc.title
    props.subject = doc.subject
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.created = FIXED_DATE.replace(tzinfo=None)
    props.modified = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1


# --------------------------------------------------------------------------- PDF


def render_pdf(doc: SampleDoc, out: Path) -> None:
    try:
        from fpdf import FPDF
    except ImportError as exc:  # generator-only dependency, not a runtime one
        raise SystemExit(
            "fpdf2 is needed only to rebuild the sample PDFs: "
            ".venv/bin/pip install -c constraints.txt fpdf2"
        ) from exc

    class CorpusPDF(FPDF):
        def header(self) -> None:
            self.set_font("Helvetica", "I", 8)  # running header, like an exported manual
            self.cell(0, 6, f"Northwind Robotics - {doc.title}", align="R")
            self.ln(10)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", "", 8)
            self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")

    pdf = CorpusPDF(format="A4")
    pdf.set_title(doc.title)
    pdf.set_subject(doc.subject)
    pdf.set_author(AUTHOR)
    pdf.set_creator("data/sample/build.py")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()

    for block in doc.blocks:
        for text in (block.text, *block.items, *(c for r in block.rows for c in r)):
            try:
                text.encode("latin-1")  # the built-in PDF fonts cover Latin-1 only
            except UnicodeEncodeError as exc:
                raise SystemExit(f"{doc.path}: {text!r} has characters outside Latin-1; write EUR, '-' etc.") from exc
        if block.kind == "title":
            pdf.set_font("Helvetica", "B", 18)
            pdf.multi_cell(0, 9, block.text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        elif block.kind == "heading":
            pdf.ln(3)
            pdf.start_section(block.text, level=0)  # PDF bookmarks, as in exported manuals
            pdf.set_font("Helvetica", "B", 14)
            pdf.multi_cell(0, 8, block.text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif block.kind == "subheading":
            pdf.ln(1)
            pdf.start_section(block.text, level=1)
            pdf.set_font("Helvetica", "B", 11.5)
            pdf.multi_cell(0, 6.5, block.text, new_x="LMARGIN", new_y="NEXT")
        elif block.kind == "paragraph":
            pdf.set_font("Helvetica", "", 10.5)
            pdf.multi_cell(0, 5.5, block.text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        elif block.kind == "bullets":
            pdf.set_font("Helvetica", "", 10.5)
            for item in block.items:
                pdf.set_x(pdf.l_margin + 4)
                pdf.multi_cell(0, 5.5, f"-  {item}", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        elif block.kind == "table":
            pdf.set_font("Helvetica", "", 9.5)
            # column widths follow the longest text in each column, so short codes get narrow columns
            widths = tuple(min(max(len(r[i]) for r in block.rows), 60) + 6 for i in range(len(block.rows[0])))
            with pdf.table(col_widths=widths, text_align="LEFT", line_height=5.5) as table:
                for row in block.rows:
                    table_row = table.row()
                    for cell in row:
                        table_row.cell(cell)
            pdf.ln(3)
    pdf.output(str(out))


# -------------------------------------------------------------------------- DOCX


def render_docx(doc: SampleDoc, out: Path) -> None:
    document = docx.Document()
    document.styles["Normal"].font.size = Pt(10.5)
    set_core_properties(document.core_properties, doc)
    for block in doc.blocks:
        if block.kind == "title":
            document.add_heading(block.text, level=0)  # the "Title" style
        elif block.kind == "heading":
            document.add_heading(block.text, level=1)
        elif block.kind == "subheading":
            document.add_heading(block.text, level=2)
        elif block.kind == "paragraph":
            document.add_paragraph(block.text)
        elif block.kind == "bullets":
            for item in block.items:
                document.add_paragraph(item, style="List Bullet")
        elif block.kind == "table":
            table = document.add_table(rows=0, cols=len(block.rows[0]))
            table.style = "Table Grid"
            for i, row in enumerate(block.rows):
                cells = table.add_row().cells
                for cell, text in zip(cells, row):
                    cell.text = text
                    if i == 0:
                        cell.paragraphs[0].runs[0].bold = True
            document.add_paragraph()
    document.save(str(out))
    freeze_zip_timestamps(out)


# -------------------------------------------------------------------------- PPTX


def render_pptx(doc: SampleDoc, out: Path) -> None:
    """'# ' is the title slide (its first paragraph the subtitle); each '## ' starts a slide."""
    prs = pptx.Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)  # 16:9
    set_core_properties(prs.core_properties, doc)
    title_layout, content_layout, title_only_layout = (prs.slide_layouts[i] for i in (0, 1, 5))

    slides: list[list[Block]] = []
    for block in doc.blocks:
        if block.kind in ("title", "heading"):
            slides.append([block])
        else:
            slides[-1].append(block)

    for head, *body in slides:
        if head.kind == "title":
            slide = prs.slides.add_slide(title_layout)
            slide.shapes.title.text = head.text
            slide.placeholders[1].text = " ".join(b.text for b in body if b.kind == "paragraph")
            continue
        tables = [b for b in body if b.kind == "table"]
        slide = prs.slides.add_slide(title_only_layout if tables else content_layout)
        slide.shapes.title.text = head.text
        if tables:
            rows = tables[0].rows
            shape = slide.shapes.add_table(
                len(rows), len(rows[0]), Inches(0.7), Inches(1.8), Inches(11.9), Inches(0.5) * len(rows)
            )
            for r, row in enumerate(rows):
                for c, text in enumerate(row):
                    shape.table.cell(r, c).text = text
            continue
        frame = slide.placeholders[1].text_frame
        lines = [item for b in body for item in (b.items if b.kind == "bullets" else (b.text,))]
        frame.text = lines[0]
        for line in lines[1:]:
            frame.add_paragraph().text = line
    prs.save(str(out))
    freeze_zip_timestamps(out)


# ------------------------------------------------------------------------ content

NR7_FAQ = SampleDoc(
    path="product/nr7-product-faq.pdf",
    subject="Frequently asked questions about the NR-7 collaborative robot arm",
    outline="""
# NR-7 Collaborative Robot Arm: Product FAQ

Document NR7-FAQ-EN, revision F, October 2025. Published by Northwind Robotics Customer Support for customers, integrators and Northwind employees. For firmware changes see the NR-7 Controller Firmware Release Notes.

## General

### Product overview
The NR-7 is a six-axis collaborative robot arm designed to work safely next to people without a fence, after a risk assessment. Typical applications are machine tending, pick-and-place, screwdriving, packaging of light boxes, quality inspection and laboratory automation. Every NR-7 ships with the NC-2 controller, the TP-3 teach pendant, a 5 m arm cable and the NorthStudio programming software.

### Key specifications
| Specification | Value |
|---|---|
| Payload | 7 kg (including the tool) |
| Reach | 850 mm |
| Degrees of freedom | 6 rotating joints |
| Pose repeatability | ±0.02 mm (ISO 9283) |
| Weight of the arm | 24.5 kg |
| Maximum TCP speed | 2.0 m/s; 1.0 m/s default in collaborative mode |
| Joint ranges | ±360° for all joints except J3 (±165°) |
| Ingress protection | IP54 for the arm, IP20 for the NC-2 controller |
| Operating temperature | 0 to 45 °C |
| Power supply | 100-240 V AC, 50/60 Hz; typical consumption 250 W |
| Noise level | below 65 dB(A) |
| Tool flange | ISO 9409-1-50-4-M6 |
| Mounting | Floor, wall or ceiling, at any angle |

### Payload limit
No. The rated payload of 7 kg includes the gripper or tool and any cables attached to it. When the configured payload exceeds the limit, the controller refuses to start the program and shows error E-517. For heavier parts we recommend the NR-12, which carries 12 kg with a reach of 1,300 mm.

### Safety fences and collaborative operation
Not necessarily. The NR-7 has 17 configurable safety functions, including force and power limiting, speed and separation monitoring and safe tool orientation, certified to PL d, Category 3 according to ISO 13849-1. Whether a fence is needed depends on the risk assessment of the complete application according to ISO 10218-2 and ISO/TS 15066. Sharp tools, hot parts or heavy workpieces usually require extra measures such as laser scanners.

## Installation and programming

### Installation time
A trained integrator typically installs and commissions a basic NR-7 cell in one working day. Customers who program their own cells should attend the NR-7 Basic Training course, which takes 2 days and is held every month in Rotterdam and in Austin.

### Mounting requirements
The mounting surface must be flat within 0.05 mm and withstand a tipping torque of at least 900 Nm. Use four M8 bolts of strength class 8.8, tightened to 25 Nm. Mobile tables must be fixed to the floor or weigh at least 150 kg.

### Programming options
Most users program the NR-7 on the TP-3 teach pendant with NorthStudio, a graphical block editor, or by force-guided teaching (firmware 3.4.0 and later, requires the force-torque sensor option). Developers can use the nwr-sdk Python library over Ethernet, or the ROS 2 driver. The controller also speaks Modbus TCP, PROFINET, EtherNet/IP and OPC UA for integration with PLCs.

### Supported grippers and tools
Any tool with an ISO 9409-1-50-4-M6 flange can be mounted. Grippers certified in the Northwind Ready programme, such as vacuum grippers, two-finger electric grippers and screwdrivers, come with a NorthStudio plug-in and are configured in a few minutes.

## Error codes

The teach pendant shows an error code and a short message when the controller stops the arm. The table lists the most common codes. Always read the full message in the pendant log (Settings > System > Log) before contacting Support.

| Code | Meaning | What to do |
|---|---|---|
| E-101 | Joint overcurrent | Check for mechanical blockage or a payload above 7 kg. Restart the controller. If it occurs again within 24 hours, contact Support. |
| E-114 | Encoder mismatch | Power cycle the controller and home the arm. If the error persists after 2 restarts, contact Support; the joint may need recalibration. |
| E-203 | Protective stop from a safety input | A light curtain, laser scanner or door switch was triggered. Remove the cause and reset from the pendant. |
| E-214 | Collision detected | Check the path for obstacles and verify the payload settings. False alarms with fast motions near full payload were fixed in firmware 3.4.1. |
| E-305 | Controller overtemperature | The temperature inside the NC-2 cabinet exceeded 55 °C. Clean the air filter and keep the ambient temperature at 45 °C or below. |
| E-402 | Communication timeout with the teach pendant | Check the pendant cable and connector. With USB-to-Ethernet adapters, retry a failed firmware update once. |
| E-517 | Payload exceeds configured limit | Reduce the payload or correct the payload settings; run the payload identification routine. |
| E-610 | Brake test overdue | Run the brake test from Settings > Safety > Brake test. The test is due every 6 months. |

## Maintenance

### Maintenance schedule
- Brake test: every 6 months. The controller reminds you 2 weeks before the due date and shows E-610 when the test is overdue.
- Visual inspection of cables and joint covers: every 3 months.
- Cleaning of the NC-2 controller air filter: every 3 months, monthly in dusty environments.
- Joint inspection by a certified service engineer: every 5,000 operating hours.
- Replacement of the grease in joints J1 to J3: every 20,000 operating hours.

The expected service life of the NR-7 is 35,000 operating hours under normal conditions.

### Maintenance by the customer
Brake tests, inspections and filter cleaning can be done by the customer. Joint inspections and grease replacement must be done by Northwind Service or a certified partner to keep the warranty valid.

## Warranty and support

### Warranty and CarePlus
The standard warranty is 24 months from delivery and covers parts and labour. The CarePlus service contract extends the warranty to 60 months and adds yearly preventive maintenance and next-business-day on-site service in the EU and the United States.

### Support contacts and hours
Northwind Support is available Monday to Friday from 08:00 to 18:00 CET by phone (+31 10 555 0150), by email at support@northwind-robotics.example and through the customer portal. Customers with a Premium support contract can reach Support 24 hours a day, 7 days a week. Spare parts ordered before 14:00 CET are shipped within 2 business days within the EU.

### Firmware updates
Yes. Firmware updates for the NC-2 controller are free for the life of the product. Feature releases appear about three times a year; hotfixes are released when needed.
""",
)

LEAVE_POLICY = SampleDoc(
    path="policies/leave-policy.pdf",
    subject="Annual leave, sick leave, family leave and special leave at Northwind Robotics",
    outline="""
# Leave Policy

Northwind Robotics B.V., People Team. Version 5.0, effective 1 January 2025. Policy owner: Tomás Herrera, VP People. This policy applies to all employees in the Netherlands and Germany. Employees in the United States follow the Austin addendum. Where national law gives employees more rights than this policy, the law applies.

## Annual leave

### Entitlement
- Full-time employees (40 hours per week) receive 25 days of paid annual leave per calendar year. Part-time employees receive leave pro rata to their contract hours.
- After 5 years of service you receive 1 extra day per year; after 10 years of service, 2 extra days per year (27 days in total).
- Employees who join or leave during the year receive leave pro rata to the months worked.
- Every employee can buy up to 5 extra days of leave per year through the flexible benefits scheme. The choice is made in November for the following year.

### Leave requests
All leave is requested and approved in Compass. Request leave of more than 5 consecutive working days at least 4 weeks in advance; shorter leave at least 2 working days in advance. Your manager answers within 5 working days. Leave of more than 3 consecutive weeks also needs approval from your department head.

Managers try to grant every request, but may refuse leave in writing when the business would be seriously harmed, for example during a product launch or the last two weeks of a quarter for sales teams.

### Carry-over
You may carry over at most 5 unused days into the next calendar year. Carried-over days must be taken before 30 June of that year; days not taken by then lapse, unless you could not take them because of illness or parental leave. Remaining days above the carry-over limit are not paid out, except when you leave the company.

## Public holidays

The company observes the public holidays of the country where you are employed. In the Netherlands these are New Year's Day, Easter Monday, King's Day, Ascension Day, Whit Monday, Christmas Day and Boxing Day. Northwind also gives a day off on Liberation Day (5 May) every year, not only every fifth year. Between Christmas and New Year the offices are closed; see the yearly announcement from Facilities for the extra days off.

## Sick leave

### Sickness notification
- Call your manager before 09:30 on the first day of illness. A chat message or email alone is not enough.
- Register your sick leave in Compass on the same day, or ask your manager to do so.
- Report your recovery in Compass on the day you return to work.
- Employees in Germany must provide a medical certificate from the fourth calendar day of illness.

### Salary and support during illness
If you are ill for more than 7 calendar days, our occupational health service, HealthPoint, contacts you to discuss your recovery. Northwind continues to pay 100% of your salary during the first 52 weeks of illness and 70% during the second year, in line with Dutch law.

## Family leave

- Pregnancy and maternity leave: 16 weeks. Northwind tops up the statutory benefit to 100% of your salary.
- Birth leave for partners: 1 week fully paid, taken within 4 weeks of the birth, plus up to 5 weeks of additional birth leave in the first 6 months. Northwind tops up the additional weeks to 100% of salary.
- Adoption and foster care leave: 6 weeks, fully paid.
- Parental leave: 26 times your weekly working hours per child, to be taken before the child turns 8. Northwind pays the first 9 weeks at 100% of salary when they are taken in the child's first year.
- Short-term care leave: up to twice your weekly working hours per year to care for a sick family member, fully paid.

## Special leave

Special leave is paid and does not reduce your annual leave. Register it in Compass under "Special leave".

| Occasion | Paid leave |
|---|---|
| Your own wedding or registered partnership | 2 days |
| Moving house | 1 day per calendar year |
| Death of a partner, child or parent | 5 days |
| Death of a brother, sister, grandparent or parent-in-law | 2 days |
| Volunteering for a registered charity | 2 days per calendar year |
| Medical appointments that cannot be planned outside working hours | Time needed, up to 4 hours per appointment |

## Unpaid leave and sabbaticals

After 3 years of service you can request unpaid leave of up to 3 months, for example for a sabbatical. Submit the request at least 3 months before the start date. Unpaid leave needs approval from your department head and the VP People. Your pension and insurance continue during unpaid leave of up to 1 month; for longer periods the People Team explains the options.

## Contact

For questions about this policy contact the People Team at people@northwind-robotics.example or see the Leave section in Compass.
""",
)

SALARY_BANDS = SampleDoc(
    path="hr/salary-bands-2026.docx",
    subject="Salary bands and annual review guidelines 2026 (restricted to HR)",
    outline="""
# Salary Bands 2026

RESTRICTED - People Team (HR) only. Do not forward, print or store outside the HR Compensation folder.

Prepared by Nadia Bakker, Compensation and Benefits Lead, and Tomás Herrera, VP People. Approved by the Executive Committee on 6 October 2025. Valid from 1 January 2026 for employees in the Netherlands.

## How to use the bands

Every role at Northwind Robotics is mapped to one of eight grades. The bands below show the minimum, midpoint and maximum annual base salary in EUR for a full-time (40-hour) contract, excluding the 8% holiday allowance. The bonus target is a percentage of the annual base salary.

- New hires are normally offered a salary between the minimum and the midpoint of their grade.
- Offers above the midpoint need approval from the VP People.
- Offers or salary increases above the band maximum are not allowed; consider a promotion instead.
- Bands for Germany are 4% higher than the Dutch bands. US bands are published separately in USD.

## Salary bands (Netherlands, EUR per year)

| Grade | Example roles | Minimum | Midpoint | Maximum | Bonus target |
|---|---|---|---|---|---|
| G1 | Assembly technician, service desk agent | 34,000 | 39,000 | 44,000 | 0% |
| G2 | Senior technician, junior engineer | 42,000 | 48,500 | 55,000 | 3% |
| G3 | Engineer, support specialist, buyer | 52,000 | 60,000 | 68,000 | 5% |
| G4 | Senior engineer, product owner | 63,000 | 73,000 | 83,000 | 8% |
| G5 | Staff engineer, team lead | 76,000 | 88,000 | 100,000 | 10% |
| G6 | Principal engineer, engineering manager | 92,000 | 106,000 | 120,000 | 15% |
| G7 | Director | 112,000 | 130,000 | 148,000 | 20% |
| G8 | Vice President | 140,000 | 165,000 | 190,000 | 30% |

## Annual review 2026

### Budget
The merit increase budget for 2026 is 3.5% of the total base salary of each department. A separate promotion budget of 1.0% is held centrally by the People Team.

### Timeline
- 2 to 20 February 2026: managers enter their proposals in Compass.
- Week 9 (23 to 27 February 2026): calibration sessions per department with the HR business partners.
- 13 March 2026: final approval by the Executive Committee.
- 1 April 2026: new salaries take effect and appear in the April payroll.

### Merit guidelines
Employees who are low in their band and perform well receive a larger increase, so that pay moves towards the midpoint over time. Suggested increases:
- Performance "exceeds expectations" and salary below the midpoint: 5% to 7%.
- Performance "exceeds expectations" and salary above the midpoint: 3% to 5%.
- Performance "meets expectations": 2% to 4%.
- Performance "below expectations": no merit increase.

## Market position

The bands are benchmarked against the 2025 Radford and Mercer surveys for the Dutch technology sector. Midpoints are set at the 50th percentile of the market; for engineering roles in grades G3 to G6 they are set at the 60th percentile, because these roles are hardest to fill. The bands are reviewed every year in September.

## Confidentiality

Individual salaries and these bands are Restricted information under the Information Security Policy. Managers outside HR may see the band of their own team members only, in Compass. Questions go to Nadia Bakker, extension 4520.
""",
)

BOARD_MEMO = SampleDoc(
    path="exec/board-memo-2025-q3.docx",
    subject="Q3 2025 results and proposed acquisition of Kestrel Vision (restricted to executives)",
    outline="""
# Board Memo: Q3 2025 Results and Project Falcon

RESTRICTED - Executive Committee and Supervisory Board only.

To: Supervisory Board of Northwind Robotics B.V. From: Ingrid Vos, Chief Executive Officer, and Martin Achterberg, Chief Financial Officer. Date: 28 October 2025.

## 1. Summary

Northwind Robotics had a strong third quarter. Revenue grew 18% year on year to EUR 48.2 million, driven by NR-7 shipments in the United States. We ask the Board to approve a non-binding letter of intent (LOI) to acquire Kestrel Vision GmbH (code name Project Falcon) for an enterprise value of up to EUR 22 million. The decision is needed by 14 November 2025.

## 2. Q3 2025 financial results

| Metric | Q3 2025 | Q3 2024 | Change |
|---|---|---|---|
| Revenue | EUR 48.2 million | EUR 40.8 million | +18% |
| NR-7 units shipped | 1,140 | 905 | +26% |
| Gross margin | 41.3% | 38.9% | +2.4 points |
| EBITDA | EUR 6.1 million | EUR 3.9 million | +56% |
| Cash at end of quarter | EUR 31.5 million | EUR 27.0 million | +17% |
| Headcount at end of quarter | 412 | 371 | +41 |

### Commentary
- Revenue in the United States grew 31%, Europe grew 11%. Subscription revenue from Northwind Cloud Connect reached EUR 5.4 million, 11% of total revenue.
- Gross margin improved thanks to the new harmonic drive supplier and higher volumes at the Rotterdam assembly line.
- Firmware 3.4.0 caused false collision alarms (error E-214). This led to 37 support escalations and one automotive customer withholding a EUR 1.2 million payment. Hotfix 3.4.1 was released on 2 October and the payment was received on 20 October.
- We raise the full-year 2025 revenue forecast to EUR 186 million (previous guidance: EUR 180 million).

## 3. Project Falcon: acquisition of Kestrel Vision

### The company
Kestrel Vision GmbH is a machine vision start-up in Munich with 38 employees and 2024 revenue of EUR 4.1 million. Its KV-2 wrist camera module has been supported by NR-7 firmware since version 3.3.0 and is used in about 15% of new NR-7 cells.

### Proposed terms
- Enterprise value of up to EUR 22 million: EUR 15 million in cash at closing plus an earn-out of up to EUR 7 million, tied to revenue milestones in 2026 and 2027.
- Funding from cash on hand plus a EUR 10 million draw on the revolving credit facility.
- Three-year retention packages for the founders, Dr. Felix Brandt and Mira Sato, and for 12 key engineers.

### Rationale
Owning the vision stack lets us sell an integrated NR-7 Vision bundle, reduce the bill-of-materials cost of the camera by about 30% and keep a key technology away from competitors. Two competitors are known to be in talks with Kestrel.

### Risks
The main risks are losing key engineers after closing, integration of the two software teams, and the earn-out structure creating short-term incentives. Mitigations are described in the attached due diligence plan.

### Timeline
- 14 November 2025: Board decision on the LOI.
- November 2025 to January 2026: due diligence.
- 31 January 2026: target date for signing.
- Q1 2026: closing.

## 4. Other items for the Board

- Singapore office: we propose opening a sales and service office in Singapore in Q2 2026 with 8 employees at the start and a 2026 budget of EUR 2.4 million.
- Headcount plan 2026: growth from 412 to 460 employees, mostly in field service and software.
- Pricing: the NR-7 list price rises from EUR 38,500 to EUR 39,900 on 1 January 2026.

## 5. Decisions requested

- Approve signing the Project Falcon LOI for an enterprise value of up to EUR 22 million.
- Approve the 2026 budget of EUR 2.4 million for the Singapore office.
- Take note of the Q3 2025 results and the raised full-year forecast.

This memo contains inside information. Do not share it with anyone outside the Executive Committee and the Supervisory Board.
""",
)

SALES_KICKOFF = SampleDoc(
    path="sales/nr7-sales-kickoff-2026.pptx",
    subject="Sales kickoff 2026: targets, pricing and discount rules for the NR-7",
    outline="""
# NR-7 Sales Kickoff 2026
Sophie Laurent, VP Sales. Rotterdam, 13 January 2026.

## 2026 targets
- Sell 5,200 NR-7 units worldwide in 2026.
- 40% of units through certified partner integrators.
- Grow Northwind Cloud Connect subscriptions to 3,000 active robots.
- Attach the CarePlus service contract to at least 35% of new robots.

## Pricing from 1 January 2026
| Item | EUR | USD |
|---|---|---|
| NR-7 robot arm with NC-2 controller and TP-3 pendant (list price) | 39,900 | 43,500 |
| CarePlus service contract (warranty extended to 60 months) | 2,900 | 3,200 |
| Northwind Cloud Connect, per robot per year | 480 | 520 |
| NR-7 Basic Training, 2 days, per person | 1,450 | 1,600 |

## Discount authority
- Sales representatives: up to 10% off list price.
- Regional sales directors: up to 20%.
- VP Sales: up to 30%.
- Above 30%: VP Sales and the CFO together.
- Deals of more than 25 units always go through the deal desk, whatever the discount.

## Target markets
- Machine tending for CNC job shops: our largest segment, 38% of 2025 units.
- Electronics assembly and testing.
- Laboratory automation for pharma and diagnostics.
- Light packaging and end-of-line palletizing with the new palletizing wizard.

## Why customers choose the NR-7
- 7 kg payload and 850 mm reach in a 24.5 kg arm.
- Repeatability of ±0.02 mm.
- Force-guided teaching and the NorthStudio block editor: first program in under an hour.
- Predictive maintenance with Cloud Connect telemetry.
- Free firmware updates for the life of the robot.

## Commission plan 2026
- Quota is set per territory in units and in revenue; both count 50%.
- Commission is paid quarterly.
- Above 100% of annual quota, an accelerator of 1.5x applies to all further commission.
- Deals with discounts above 20% earn 50% of the normal commission rate.

## Key dates 2026
- 12 March: partner summit in Rotterdam.
- 20 to 24 April: Hannover Messe, Hall 6.
- 1 July: mid-year quota review.
- 30 November: deadline for bookings that count towards 2026 quota.
""",
)

RENDERERS = {".pdf": render_pdf, ".docx": render_docx, ".pptx": render_pptx}
DOCS = [NR7_FAQ, LEAVE_POLICY, SALARY_BANDS, BOARD_MEMO, SALES_KICKOFF]


def main() -> None:
    for doc in DOCS:
        out = SAMPLE_DIR / doc.path
        out.parent.mkdir(parents=True, exist_ok=True)
        RENDERERS[out.suffix](doc, out)
        print(f"wrote {out.relative_to(SAMPLE_DIR)} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
