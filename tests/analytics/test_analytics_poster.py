"""The campaign poster: an A4 PDF, and a QR code that reads back to the campaign link."""

from __future__ import annotations

import io
import re

import zxingcpp
from PIL import Image

from bot import poster

LINK = "https://relais.example.org/r/VAN-NANTES"
TEXT = poster.PosterText(
    programme="Relais Jeunes Nantes",
    line="Scanne le QR code pour nous rejoindre sur Discord — c'est gratuit.",
    code_caption="Code de la campagne",
    code_line="Déjà sur le serveur ? Tape /code VAN-NANTES",
)


def read_qr(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image)]


def test_qr_matrix_decodes_to_the_link() -> None:
    matrix = poster.qr_matrix(LINK)
    assert matrix.shape[0] == matrix.shape[1]
    # Quiet zone: the four outer modules on each side are light.
    assert not matrix[:4].any() and not matrix[:, -4:].any()
    image = Image.fromarray((1 - matrix) * 255).resize((matrix.shape[0] * 8,) * 2, Image.NEAREST)
    assert read_qr(image.convert("L")) == [LINK]


def test_poster_png_is_a4_at_150_dpi_and_its_qr_code_reads_back() -> None:
    image = Image.open(io.BytesIO(poster.poster_png(TEXT, "VAN-NANTES", LINK)))
    width, height = image.size
    assert (width, abs(height - 1754) <= 2) == (1240, True)
    assert read_qr(image.convert("L")) == [LINK]


def test_poster_pdf_is_one_a4_page() -> None:
    pdf = poster.poster_pdf(TEXT, "VAN-NANTES", LINK)
    assert pdf.startswith(b"%PDF-")
    boxes = re.findall(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert len(boxes) == 1
    width_pt, height_pt = (float(v) for v in boxes[0])
    assert abs(width_pt - 595.3) < 1 and abs(height_pt - 841.9) < 1  # A4 in points


def test_poster_without_link_has_no_qr_code_and_long_codes_fit() -> None:
    image = Image.open(io.BytesIO(poster.poster_png(TEXT, "A" * 24, None, dpi=72)))
    assert read_qr(image.convert("L")) == []
    assert poster.poster_pdf(TEXT, "A" * 24, None).startswith(b"%PDF-")
