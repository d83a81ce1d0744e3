"""The campaign poster: an A4 PDF, and a QR code that reads back to the campaign link."""

from __future__ import annotations

import io
import re

import pytest
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


FULL = poster.PosterText(
    programme="Relais Jeunes Nantes Métropole et Pays de Retz",
    line="Scanne le QR code pour nous rejoindre sur Discord — c'est gratuit.",
    code_caption="Code de la campagne",
    code_line="Déjà sur le serveur ? Tape /code VAN-NANTES",
    audience="Tu as entre 16 et 29 ans ?",
    offer="Un job, une formation, un logement, des démarches : on t'aide à avancer."
    " C'est gratuit et sans engagement.",
    where="Relais : sur Discord 24 h/24, et avec les conseillers du programme près de chez toi.",
)


@pytest.mark.parametrize("link", [LINK, None])
def test_every_mark_is_inside_the_10_mm_margins(link: str | None) -> None:
    fig = poster.poster_figure(FULL, "VAN-NANTES", link)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    margin = poster.MARGIN_MM / poster.MM_PER_IN * fig.dpi
    width, height = fig.get_figwidth() * fig.dpi, fig.get_figheight() * fig.dpi
    boxes = [t.get_window_extent(renderer) for t in fig.texts if t.get_text()]
    boxes += [ax.get_window_extent(renderer) for ax in fig.axes]
    assert len(boxes) == (8 if link is None else 9)
    for box in boxes:
        assert box.x0 >= margin and box.x1 <= width - margin, box
        assert box.y0 >= margin and box.y1 <= height - margin, box
    words = " ".join(t.get_text().replace("\n", " ") for t in fig.texts)
    assert "16 et 29 ans" in words and "gratuit" in words and "Discord" in words


def test_poster_pdf_embeds_truetype_fonts_and_its_qr_code_reads_back() -> None:
    pdf = poster.poster_pdf(FULL, "VAN-NANTES", LINK)
    assert b"/FontFile2" in pdf  # TrueType programs embedded
    assert b"/Subtype /Type3" not in pdf
    image = Image.open(io.BytesIO(poster.poster_png(FULL, "VAN-NANTES", LINK)))
    assert read_qr(image.convert("L")) == [LINK]
