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
import textwrap
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


MARGIN_MM = 10.0  # print shops and office printers cut or skip the outer few millimetres
MM_PER_IN = 25.4
# Average advance of DejaVu Sans per point of size (about 0.55 em; bold a little wider).
SANS_ADVANCE, BOLD_ADVANCE = 0.55, 0.62


@dataclass(frozen=True)
class PosterText:
    """The words on a poster, rendered from messages/ by the caller."""

    programme: str
    line: str
    code_caption: str
    code_line: str
    audience: str = ""  # who it is for (16-29)
    offer: str = ""  # what it offers, and that it is free
    where: str = ""  # where to find the programme


def _usable_width_pt() -> float:
    return (A4_WIDTH_IN - 2 * MARGIN_MM / MM_PER_IN) * 72


def _wrapped(text: str, size: float, advance: float = SANS_ADVANCE) -> str:
    """``text`` broken into lines that fit between the margins at ``size`` points."""
    width = max(10, int(_usable_width_pt() / (advance * size)))
    return "\n".join(textwrap.wrap(text, width)) if text else ""


def _fitted(text: str, largest: float, advance: float) -> float:
    """The largest size up to ``largest`` at which ``text`` fits on one line."""
    return min(largest, _usable_width_pt() / (advance * max(len(text), 1)))


def qr_matrix(link: str) -> np.ndarray:
    """The QR code of ``link`` as a 0/1 matrix, quiet zone included (1 = dark)."""
    qr = segno.make(link, error="m", micro=False)
    return np.array(list(qr.matrix_iter(scale=1, border=QR_BORDER)), dtype=np.uint8)


def _code_size(code: str, largest: float) -> float:
    return min(largest, CODE_WIDTH_IN * 72 / (MONO_ADVANCE * max(len(code), 1)))


def poster_figure(text: PosterText, code: str, link: str | None) -> Figure:
    """The A4 page (portrait) as a matplotlib figure; every mark stays 10 mm from the edges."""
    fig = Figure(figsize=(A4_WIDTH_IN, A4_HEIGHT_IN))
    FigureCanvasAgg(fig)
    # A long programme name gets smaller type rather than running off the page.
    title_size = _fitted(text.programme, 40.0, BOLD_ADVANCE)
    fig.text(
        0.5, 0.925, text.programme, ha="center", va="center", fontsize=title_size, weight="bold"
    )
    if text.audience:
        size = _fitted(text.audience, 28.0, BOLD_ADVANCE)
        fig.text(0.5, 0.868, text.audience, ha="center", va="center", fontsize=size, weight="bold")
    if text.offer:
        fig.text(0.5, 0.815, _wrapped(text.offer, 17), ha="center", va="center", fontsize=17)
    if link:
        side = 0.56  # of the page width; the axes are square on paper
        height = side * A4_WIDTH_IN / A4_HEIGHT_IN
        ax = fig.add_axes((0.5 - side / 2, 0.345, side, height))
        ax.imshow(qr_matrix(link), cmap="gray_r", interpolation="none", vmin=0, vmax=1)
        ax.set_axis_off()
        line_y, caption_y, code_y, code_line_y, largest = 0.305, 0.255, 0.19, 0.13, 64.0
    else:
        line_y, caption_y, code_y, code_line_y, largest = 0.70, 0.60, 0.48, 0.36, 90.0
    fig.text(0.5, line_y, _wrapped(text.line, 17), ha="center", va="center", fontsize=17)
    fig.text(0.5, caption_y, text.code_caption, ha="center", va="center", fontsize=18)
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
    fig.text(0.5, code_line_y, _wrapped(text.code_line, 16), ha="center", va="center", fontsize=16)
    if text.where:
        fig.text(0.5, 0.075, _wrapped(text.where, 14), ha="center", va="center", fontsize=14)
    return fig


def poster_pdf(text: PosterText, code: str, link: str | None) -> bytes:
    """The poster as a one-page A4 PDF, its fonts embedded as TrueType (Type 42): print shops
    refuse or mangle the Type 3 bitmaps matplotlib writes by default."""
    buffer = io.BytesIO()
    with matplotlib.rc_context({"pdf.fonttype": 42}):
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
