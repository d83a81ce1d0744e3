"""A printable A4 poster for a campaign: programme name, one line, the QR code, the code.

The poster is a PDF: a vector page of exactly A4 that any phone, office PC or print shop prints
at the right size, with a QR code whose modules stay sharp however it is scaled (a PNG would
depend on the viewer's "fit to page" and blur at the edges of modules). ``poster_png`` draws the
same page as an image, for previews and for the tests that read the QR code back.

The QR code is made by ``segno`` (medium error correction: it still scans with a bit of glare
or a folded corner) and drawn as raw modules with no resampling.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import numpy as np
import segno
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

A4_WIDTH_IN, A4_HEIGHT_IN = 8.27, 11.69
PNG_DPI = 150
QR_BORDER = 4  # the quiet zone the QR standard asks for, in modules
CODE_WIDTH_IN = 7.0  # the widest the code may be printed
MONO_ADVANCE = 0.6  # DejaVu Sans Mono: advance width per point of size


@dataclass(frozen=True)
class PosterText:
    """The words on a poster, rendered from messages/ by the caller."""

    programme: str
    line: str
    code_caption: str
    code_line: str


def qr_matrix(link: str) -> np.ndarray:
    """The QR code of ``link`` as a 0/1 matrix, quiet zone included (1 = dark)."""
    qr = segno.make(link, error="m", micro=False)
    return np.array(list(qr.matrix_iter(scale=1, border=QR_BORDER)), dtype=np.uint8)


def _code_size(code: str, largest: float) -> float:
    return min(largest, CODE_WIDTH_IN * 72 / (MONO_ADVANCE * max(len(code), 1)))


def poster_figure(text: PosterText, code: str, link: str | None) -> Figure:
    """The A4 page (portrait) as a matplotlib figure."""
    fig = Figure(figsize=(A4_WIDTH_IN, A4_HEIGHT_IN))
    FigureCanvasAgg(fig)
    # A long programme name gets smaller type rather than running off the page.
    title_size = min(44.0, 7.4 * 72 / (0.62 * max(len(text.programme), 1)))
    fig.text(
        0.5, 0.93, text.programme, ha="center", va="center", fontsize=title_size, weight="bold"
    )
    fig.text(0.5, 0.865, text.line, ha="center", va="center", fontsize=20, wrap=True)
    if link:
        side = 0.66  # of the page width; the axes are square on paper
        height = side * A4_WIDTH_IN / A4_HEIGHT_IN
        ax = fig.add_axes((0.5 - side / 2, 0.315, side, height))
        ax.imshow(qr_matrix(link), cmap="gray_r", interpolation="none", vmin=0, vmax=1)
        ax.set_axis_off()
        caption_y, code_y, line_y, largest = 0.25, 0.17, 0.08, 72.0
    else:
        caption_y, code_y, line_y, largest = 0.62, 0.50, 0.36, 96.0
    fig.text(0.5, caption_y, text.code_caption, ha="center", va="center", fontsize=20)
    fig.text(
        0.5,
        code_y,
        code,
        ha="center",
        va="center",
        fontsize=_code_size(code, largest),
        family="DejaVu Sans Mono",
        weight="bold",
    )
    fig.text(0.5, line_y, text.code_line, ha="center", va="center", fontsize=18)
    return fig


def poster_pdf(text: PosterText, code: str, link: str | None) -> bytes:
    """The poster as a one-page A4 PDF."""
    buffer = io.BytesIO()
    poster_figure(text, code, link).savefig(buffer, format="pdf", facecolor="white")
    return buffer.getvalue()


def poster_png(text: PosterText, code: str, link: str | None, dpi: int = PNG_DPI) -> bytes:
    """The same poster as a PNG (1240 × 1754 px at 150 dpi)."""
    buffer = io.BytesIO()
    poster_figure(text, code, link).savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


async def poster_pdf_async(text: PosterText, code: str, link: str | None) -> bytes:
    """``poster_pdf`` in a worker thread."""
    return await asyncio.to_thread(poster_pdf, text, code, link)
