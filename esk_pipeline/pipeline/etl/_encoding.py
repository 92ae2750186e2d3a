"""Which text encoding an uploaded file is in, and its text.

The order of guesses: a BOM; UTF-16 without a BOM (NUL-laden bytes that read as plain text in
one byte order); UTF-8 (also when a few bytes are damaged); a Russian prior (cp1251 / KOI8-R /
cp866, by how Russian the decoded sample looks: charset-normalizer alone misreads short Cyrillic
files); then charset-normalizer. Bytes that do not decode become U+FFFD, and the processor
rejects their rows as `invalid_encoding`. Binary content is an `ETLError`.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Callable
from typing import BinaryIO, TextIO

import charset_normalizer

from esk_pipeline.pipeline.etl.models import ETLError

SNIFF_BYTES = 64 * 1024  # how much of a file the guesses look at (also the CSV sniffer)
_CHECK_BLOCK_BYTES = 1024 * 1024
_RUSSIAN_CODECS = ("cp1251", "koi8_r", "cp866")
_NON_ASCII = re.compile("[^\x00-\x7f]")
_PLAIN_TEXT_CHARS = re.compile("[\t\n\r\x20-\x7e\u00a0-\u00ff\u0400-\u04ff\u2000-\u206f\u20bd]")


def open_text(stream: BinaryIO, name: str) -> tuple[TextIO, str]:
    """The seekable byte stream as text in its detected encoding, and that encoding.

    Undecodable bytes become U+FFFD (their rows are rejected as invalid_encoding); line ends
    are left as they are (the CSV reader handles them). Binary content is an `ETLError`.
    """
    head = stream.read(SNIFF_BYTES * 4)
    stream.seek(0)
    encoding = _detect_encoding(head, name, lambda: _valid_utf8(stream))
    sample = head.decode(encoding, errors="replace")[:SNIFF_BYTES]
    controls = len(re.findall(r"[\x00-\x08\x0e-\x1f]", sample))
    if controls > max(0.01 * len(sample), 8):
        raise ETLError(f"{name}: binary content, not a CSV/JSON text file")
    return io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline=""), encoding


def _valid_utf8(stream: BinaryIO) -> bool:
    """Whether the whole stream is valid UTF-8, checked a block at a time; rewinds it."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while block := stream.read(_CHECK_BLOCK_BYTES):
            decoder.decode(block)
        decoder.decode(b"", final=True)
        return True
    except UnicodeDecodeError:
        return False
    finally:
        stream.seek(0)


def _detect_encoding(head: bytes, name: str, valid_utf8: Callable[[], bool]) -> str:
    """The encoding, from the file's first bytes (`head`) and, for UTF-8, the whole file."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return encoding
    utf16 = _bomless_utf16(head)
    if utf16 is not None:
        return utf16
    if valid_utf8() or _mostly_utf8(head):
        return "utf-8"
    russian = _russian_codec(head)
    if russian is not None:
        return russian
    best = charset_normalizer.from_bytes(head).best()
    if best is None:
        raise ETLError(f"{name}: cannot determine the text encoding (binary content?)")
    return best.encoding


def _bomless_utf16(sample: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" when NUL-laden bytes read as plain text in that byte order.

    ASCII (delimiters, digits, newlines) in UTF-16 has a NUL in every other byte; text under
    the right byte order is then mostly Latin, Cyrillic, punctuation and spaces, where binary
    data or the wrong order gives CJK and control characters.
    """
    sample = sample[: len(sample) // 2 * 2]
    if sample.count(0) < max(len(sample) // 8, 1):  # a short file without NULs too
        return None
    best: tuple[float, str] | None = None
    for codec in ("utf-16-le", "utf-16-be"):
        decoded = sample.decode(codec, errors="replace")
        plain = len(_PLAIN_TEXT_CHARS.findall(decoded)) / max(len(decoded), 1)
        if plain >= 0.95 and (best is None or plain > best[0]):
            best = (plain, codec)
    return best[1] if best else None


def _mostly_utf8(sample: bytes) -> bool:
    """UTF-8 with a few damaged bytes (their rows become invalid_encoding), not another codec.

    In a single-byte Cyrillic file nearly every non-ASCII byte is invalid UTF-8, so valid
    multi-byte characters must clearly outnumber the damage.
    """
    decoded = sample.decode("utf-8", errors="replace")
    damaged = decoded.count("\ufffd")
    valid_non_ascii = len(_NON_ASCII.findall(decoded)) - damaged
    return valid_non_ascii >= 3 * damaged


def _russian_codec(sample: bytes) -> str | None:
    """The Russian single-byte codec under which the sample reads most like Russian text.

    Real Russian is mostly lowercase Cyrillic in runs; the wrong codec gives uppercase-heavy,
    symbol-laden or Latin-Cyrillic-mixed text. None when no codec looks plausible.
    """
    best: tuple[int, str] | None = None
    for codec in _RUSSIAN_CODECS:
        try:
            decoded = sample.decode(codec)
        except UnicodeDecodeError:
            continue
        non_ascii = len(_NON_ASCII.findall(decoded))
        lower = len(re.findall("[а-яё]", decoded))
        upper = len(re.findall("[А-ЯЁ]", decoded))
        mixed = len(re.findall("[A-Za-z][а-яёА-ЯЁ]|[а-яёА-ЯЁ][A-Za-z]", decoded))
        plausible = lower + upper >= 0.95 * non_ascii and lower > upper and mixed < 0.05 * lower
        if plausible and (best is None or lower - upper > best[0]):
            best = (lower - upper, codec)
    return best[1] if best else None
