"""OCR with Tesseract (the Debian ``tesseract-ocr`` program), for scanned PDF pages and
images; off unless ``ParseLimits.ocr`` is set (``RAGRELAY_DOCS_OCR=true`` on the gateway,
``--ocr`` on ``ragrelay sync``). Runs inside the isolated parser child, under its caps."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from workers.parsing.types import Parsed, ParseLimits, UnreadableFile

DPI = 200
NEEDS_OCR = "no text layer (a scan or an image); enable OCR (RAGRELAY_DOCS_OCR=true)"


def tesseract(image: Path, timeout_s: float) -> str:
    exe = shutil.which("tesseract")
    if exe is None:
        raise UnreadableFile("OCR is on but the tesseract program is not installed")
    try:
        done = subprocess.run(
            [exe, str(image), "stdout", "-l", "eng"],
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise UnreadableFile(f"OCR took longer than {timeout_s:g} s; gave up") from exc
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise UnreadableFile(f"OCR failed: {tail[0][:200]}")
    return done.stdout.decode("utf-8", "replace")


def ocr_page(page: Any, limits: ParseLimits) -> str:
    """The text of one pypdfium2 page, rendered at ``DPI`` and read by Tesseract."""
    with tempfile.TemporaryDirectory(prefix="ragrelay-ocr-") as tmp:
        png = Path(tmp) / "page.png"
        page.render(scale=DPI / 72, grayscale=True).to_pil().save(png)
        return tesseract(png, limits.timeout_s)


def parse_image(path: Path, limits: ParseLimits) -> Parsed:
    if not limits.ocr:
        raise UnreadableFile(NEEDS_OCR)
    out = Parsed(kind="image", pages=1)
    out.add(tesseract(path, limits.timeout_s), page=1)
    if not out.parts:
        raise UnreadableFile("OCR found no text in the image")
    return out
