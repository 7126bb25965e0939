"""The certificate of completion, a one-page PDF."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, time

from fpdf import FPDF


def latin1(text: str) -> str:
    """The PDF's built-in fonts speak Latin-1: keep what they can show, fold accents the
    rest, and mark what is left."""
    out = []
    for char in text:
        try:
            char.encode("latin-1")
            out.append(char)
        except UnicodeEncodeError:
            folded = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(folded or "?")
    return "".join(out)


def certificate(name: str, program: str, months: int, finished: date, date_text: str) -> bytes:
    pdf = FPDF(orientation="landscape", unit="mm", format="A4")
    pdf.set_title(latin1(f"{program}: certificate of completion for {name}"))
    pdf.set_author(latin1(program))
    # The same certificate is the same file: dated by the completion, not by the download.
    pdf.set_creation_date(datetime.combine(finished, time(12), UTC))
    pdf.set_compression(False)  # a page of text: small either way, and readable by tools
    pdf.add_page()
    pdf.set_draw_color(30, 58, 138)
    pdf.set_line_width(1.5)
    pdf.rect(10, 10, 277, 190)
    pdf.set_line_width(0.4)
    pdf.rect(14, 14, 269, 182)
    pdf.set_text_color(30, 58, 138)
    pdf.set_font("Helvetica", "B", 30)
    pdf.set_y(38)
    pdf.cell(0, 14, "Certificate of Completion", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(55, 65, 81)
    pdf.set_font("Helvetica", "", 14)
    pdf.ln(8)
    pdf.cell(0, 8, "This certifies that", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 28)
    pdf.set_text_color(17, 24, 39)
    pdf.ln(4)
    pdf.cell(0, 16, latin1(name), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 14)
    pdf.set_text_color(55, 65, 81)
    pdf.ln(4)
    pdf.cell(0, 8, "has completed all", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(
        0, 11, latin1(f"{months} months of the {program}"), align="C", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("Helvetica", "", 13)
    pdf.ln(10)
    pdf.cell(0, 8, latin1(f"Completed on {date_text}"), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(107, 114, 128)
    pdf.set_y(182)
    pdf.cell(0, 6, f"Reference {finished:%Y%m%d}", align="C")
    return bytes(pdf.output())
