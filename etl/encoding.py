"""Decide the text encoding of a DBF or a CSV strictly, and say how it was decided.

Chinese attribute data arrives in GBK, GB18030 or UTF-8, often mislabelled: a ``.cpg``
that says UTF-8 over GBK bytes, a DBF without ``.cpg`` whose language-driver byte says
"ANSI". Decoding with the wrong codec and ``errors="replace"`` gives mojibake or U+FFFD
that nobody notices until a company name is wrong on a map. So every claim is checked
by decoding the actual text bytes *strictly*; a claim that fails is recorded and the
next rule is tried; when nothing decodes, the file is refused with a request for an
explicit ``--encoding`` (BAD_INPUTS C4).

Order for a DBF: explicit argument → ``.cpg`` → language-driver byte (LDID, offset 29)
→ strict UTF-8 → strict GB18030. For a CSV: explicit → byte-order mark → strict UTF-8
→ strict GB18030. GBK and GB2312 are read as GB18030, their superset.

Example:
    >>> normalise_encoding("GBK")
    'gb18030'
    >>> cpg_codec("936")
    'gb18030'
"""

from __future__ import annotations

import codecs
import contextlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from etl.model import FileRejected

#: ESRI / dBase language-driver ids → code pages (0x00 unknown, 0x57 "ANSI": the code
#: page of the Windows machine that wrote the file, i.e. unknown to us).
LDID_CODEPAGES: dict[int, str] = {
    0x01: "cp437", 0x02: "cp850", 0x03: "cp1252", 0x08: "cp865", 0x09: "cp437",
    0x0A: "cp850", 0x0B: "cp437", 0x0D: "cp437", 0x0E: "cp850", 0x0F: "cp437",
    0x10: "cp850", 0x11: "cp437", 0x12: "cp850", 0x13: "cp932", 0x14: "cp850",
    0x15: "cp437", 0x16: "cp850", 0x17: "cp865", 0x18: "cp437", 0x19: "cp437",
    0x1A: "cp850", 0x1B: "cp437", 0x1C: "cp863", 0x1D: "cp850", 0x1F: "cp852",
    0x22: "cp852", 0x23: "cp852", 0x24: "cp860", 0x25: "cp850", 0x26: "cp866",
    0x37: "cp850", 0x40: "cp852", 0x4D: "cp936", 0x4E: "cp949", 0x4F: "cp950",
    0x50: "cp874", 0x58: "cp1252", 0x59: "cp1252", 0x64: "cp852", 0x65: "cp866",
    0x66: "cp865", 0x67: "cp861", 0x6A: "cp737", 0x6B: "cp857", 0x6C: "cp863",
    0x78: "cp950", 0x79: "cp949", 0x7A: "cp936", 0x7B: "cp932", 0x7C: "cp874",
    0x86: "cp737", 0x87: "cp852", 0x88: "cp857", 0xC8: "cp1250", 0xC9: "cp1251",
    0xCA: "cp1254", 0xCB: "cp1253", 0xCC: "cp1257",
}  # fmt: skip
LDID_ANSI = 0x57

#: Windows code-page numbers that ``.cpg`` files carry instead of names.
_CODEPAGE_NUMBERS = {65001: "utf-8", 54936: "gb18030", 20936: "gb2312", 28591: "latin-1"}
#: Codecs we widen to the superset we decode with.
_SUPERSETS = {"gbk": "gb18030", "gb2312": "gb18030", "hz": "gb18030"}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHUNK = 1 << 20
#: A byte that is never the continuation of a multi-byte character in UTF-8, GBK or
#: GB18030: put between DBF values so a value cut mid-character cannot borrow bytes
#: from the next one and pass the strict check.
_SEPARATOR = 0x0A
_DBF_HEADER = struct.Struct("<BBBBIHH")
#: Records per numpy batch when scanning for UTF-8 values (bounds temporary memory).
_BATCH = 1 << 16


@dataclass(frozen=True)
class EncodingChoice:
    """The decided encoding and why.

    Attributes:
        codec: the Python codec to decode with (``utf-8-sig`` for a UTF-8 BOM).
        label: the normalised name for reports: ``utf-8``, ``gb18030``, ``cp1252`` …
        rule: which rule decided, in words, for ``SourceTable.notes``.
        notes: claims that were checked and rejected on the way.
    """

    codec: str
    label: str
    rule: str
    notes: tuple[str, ...] = ()

    def report(self) -> list[str]:
        """Notes for the import report: rejected claims first, then the decision."""
        return [*self.notes, f"text encoding {self.label}: {self.rule}"]


def _probe_text_codec(codec: str) -> None:
    """Raise LookupError for bytes-to-bytes codecs (base64, zlib …) that str.decode refuses."""
    with contextlib.suppress(UnicodeDecodeError):  # a text codec that just refuses "x"
        b"x".decode(codec)


def normalise_encoding(name: str) -> str:
    """Canonical Python codec name for ``name``, widened to GB18030 for GBK/GB2312.

    Raises:
        FileRejected: the name is not an encoding Python knows.
    """
    try:
        canonical = codecs.lookup(name.strip()).name
        _probe_text_codec(canonical)
    except LookupError as exc:
        raise FileRejected(
            f"unknown text encoding {name[:40]!r}",
            f"未知的字符编码 {name[:40]!r}",
            code="unknown_encoding",
        ) from exc
    return _SUPERSETS.get(canonical, canonical)


def gdal_encoding_name(codec: str) -> str:
    """The name GDAL's recoder (iconv) accepts for a Python codec name.

    GDAL compares some names case-sensitively (``iso-8859-1`` is not recognised, the
    upper-case form is), so names are upper-cased. UTF-8 is named ``UTF8``: for
    ``UTF-8`` GDAL skips recoding and passes a field name cut inside a character to
    pyogrio, which then fails; through iconv the dangling byte is dropped.
    """
    special = {"utf-8": "UTF8", "utf-8-sig": "UTF8", "iso8859-1": "ISO-8859-1"}
    return special.get(codec, codec.upper())


def cpg_codec(text: str) -> str | None:
    """The codec a ``.cpg`` file names, or None when it names nothing we know.

    ArcGIS writes names (``UTF-8``, ``GBK``) or Windows code-page numbers (``936``,
    ``65001``), sometimes prefixed with ``ANSI``.
    """
    token = text.strip().strip("\x00").split()[-1] if text.strip() else ""
    if not token:
        return None
    if token.isdigit():
        number = int(token)
        token = _CODEPAGE_NUMBERS.get(number, f"cp{number}")
    try:
        return normalise_encoding(token)
    except FileRejected:
        return None


@dataclass(frozen=True)
class DbfLayout:
    """What the DBF header says about where the text lives.

    Attributes:
        ldid: the language-driver byte (offset 29).
        records: number of records.
        header_length: bytes before the first record.
        record_length: bytes per record (deletion flag included).
        names: raw field names.
        text_fields: ``(offset, width)`` of each character field inside a record.
    """

    ldid: int
    records: int
    header_length: int
    record_length: int
    names: tuple[bytes, ...]
    text_fields: tuple[tuple[int, int], ...] = field(default_factory=tuple)


def corrupt_shapefile(name: str, why: str, why_zh: str) -> FileRejected:
    """The error for a damaged shapefile part, naming the part and the damage."""
    return FileRejected(
        f"{name} is corrupt: {why}", f"{name} 文件已损坏：{why_zh}", code="shapefile_corrupt"
    )


def read_dbf_layout(path: Path) -> DbfLayout:
    """Read the DBF header: record count and size, LDID, field names and text columns.

    Only the header is interpreted (the records are left to GDAL); a header that does
    not match the file size means a truncated or corrupt ``.dbf``.

    Raises:
        FileRejected: the header is short, inconsistent, or promises more records than
            the file holds.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            raise corrupt_shapefile(path.name, "header is truncated", "文件头不完整")
        _, _, _, _, records, header_length, record_length = _DBF_HEADER.unpack_from(head)
        if header_length < 33 or header_length > size or record_length < 1:
            raise corrupt_shapefile(path.name, "header lengths are invalid", "文件头长度无效")
        descriptors = fh.read(header_length - 32)
    names: list[bytes] = []
    text_fields: list[tuple[int, int]] = []
    offset = 1  # byte 0 of each record is the deletion flag
    for start in range(0, len(descriptors) - 31, 32):
        desc = descriptors[start : start + 32]
        if desc[0] == 0x0D:
            break
        kind = chr(desc[11])
        # shapelib reads the width of non-numeric fields as 16 bits (FoxPro long C).
        width = desc[16] if kind in "NF" else desc[16] + 256 * desc[17]
        names.append(desc[:11].split(b"\x00", 1)[0])
        if kind == "C":
            text_fields.append((offset, width))
        offset += width
    if offset > record_length:
        raise corrupt_shapefile(
            path.name, "field widths exceed the record length", "字段宽度之和超过记录长度"
        )
    if header_length + records * record_length > size:
        raise corrupt_shapefile(
            path.name,
            f"header declares {records} records but the file is truncated",
            f"文件头声明 {records} 条记录，但文件被截断",
        )
    return DbfLayout(
        ldid=head[29],
        records=records,
        header_length=header_length,
        record_length=record_length,
        names=tuple(names),
        text_fields=tuple(text_fields),
    )


def decode_field_name(raw: bytes, codec: str) -> tuple[str, bool] | None:
    """Decode a DBF field name, tolerating a character cut by the 10-byte limit.

    GDAL and ArcGIS cut long names at 10 bytes, often inside a multi-byte character
    (「企业名称」 in UTF-8 becomes 「企业名」 plus one stray byte). Only such a dangling
    tail is tolerated; any other invalid byte fails.

    Returns:
        The name and whether a partial character was dropped, or None when ``raw`` is
        not valid in ``codec``.

    Example:
        >>> decode_field_name("企业名称".encode()[:10], "utf-8")
        ('企业名', True)
    """
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    try:
        text = decoder.decode(raw, final=False)
    except UnicodeDecodeError:
        return None
    return text, bool(decoder.getstate()[0])


class DbfText:
    """The text bytes of a DBF (field names and character fields), for strict checks.

    Character columns are materialised one at a time, with a separator after each
    value, so memory stays at one column and each codec check stops at the first
    invalid byte.
    """

    def __init__(self, path: Path, layout: DbfLayout) -> None:
        self.path = path
        self.layout = layout
        self._verdicts: dict[str, bool] = {}

    def _fields(self) -> Iterator[np.ndarray[Any, np.dtype[np.uint8]]]:
        """Yield each character field as a (records × width) view of the mapped file.

        ``np.memmap`` unmaps when the last view is garbage-collected, so a consumer that
        stops early (a failed strict decode) leaves nothing open.
        """
        layout = self.layout
        if not layout.text_fields or layout.records == 0:
            return
        rows = np.memmap(
            self.path, dtype=np.uint8, mode="r", offset=layout.header_length,
            shape=(layout.records, layout.record_length),
        )  # fmt: skip
        for offset, width in layout.text_fields:
            yield rows[:, offset : offset + width]

    def columns(self) -> Iterator[bytes]:
        """Yield each character column as its values joined by a separator byte."""
        for field_bytes in self._fields():
            records, width = field_bytes.shape
            column = np.full((records, width + 1), _SEPARATOR, dtype=np.uint8)
            column[:, :width] = field_bytes
            yield column.tobytes()

    @property
    def has_non_ascii(self) -> bool:
        """Whether any text byte is outside ASCII (then the codec matters)."""
        return not self.decodes("ascii")

    def decodes(self, codec: str) -> bool:
        """Whether the names (cut tails allowed) and every value decode strictly (cached)."""
        if codec not in self._verdicts:
            names_ok = all(decode_field_name(raw, codec) for raw in self.layout.names)
            self._verdicts[codec] = names_ok and all(
                _strict(block, codec) for block in self.columns()
            )
        return self._verdicts[codec]

    def utf8_records(self) -> list[int]:
        """1-based records holding a value that is valid UTF-8 with two CJK ideographs.

        In a file that is otherwise GBK such a value means mixed encodings: GB18030
        would decode it "successfully" into mojibake. Candidates are found with numpy
        (a lead byte E4–E9 and two continuation bytes, twice in a row) and confirmed by
        decoding the whole value.
        """
        found: set[int] = set()
        for field_bytes in self._fields():
            for start in range(0, len(field_bytes), _BATCH):
                batch = field_bytes[start : start + _BATCH]
                lead = (batch >= 0xE4) & (batch <= 0xE9)
                cont = (batch >= 0x80) & (batch <= 0xBF)
                ideograph = lead[:, :-2] & cont[:, 1:-1] & cont[:, 2:]
                pair = ideograph[:, :-3] & ideograph[:, 3:]
                for index in np.flatnonzero(pair.any(axis=1)):
                    if _strict(batch[index].tobytes(), "utf-8"):
                        found.add(start + int(index) + 1)
        return sorted(found)

    def cut_names(self, codec: str) -> list[str]:
        """Field names that lost a partial character to the 10-byte limit."""
        decoded = [decode_field_name(raw, codec) for raw in self.layout.names]
        return [found[0] for found in decoded if found is not None and found[1]]


def _strict(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _label(codec: str) -> str:
    return "utf-8" if codec == "utf-8-sig" else codec


def _choice(codec: str, rule: str, notes: list[str]) -> EncodingChoice:
    return EncodingChoice(codec=codec, label=_label(codec), rule=rule, notes=tuple(notes))


def _dbf_choice(text: DbfText, codec: str, rule: str, notes: list[str]) -> EncodingChoice:
    """The decision for a DBF, after refusing mixed encodings and noting cut names."""
    if codec != "utf-8" and text.has_non_ascii:
        mixed = text.utf8_records()
        if mixed:
            shown = ", ".join(str(n) for n in mixed[:10])
            raise FileRejected(
                f"{text.path.name} mixes encodings: records {shown} are UTF-8, the rest is "
                f"{_label(codec)}; re-export the file in one encoding",
                f"{text.path.name} 混用了多种编码：第 {shown} 条记录是 UTF-8，其余是 "
                f"{_label(codec)}；请统一编码后重新导出",
                code="encoding_mixed",
            )
    cut = text.cut_names(codec)
    if cut:
        notes.append(
            "field names cut inside a character by the 10-byte DBF limit, partial "
            f"character dropped: {', '.join(cut[:10])}"
        )
    return _choice(codec, rule, notes)


def _undecidable(name: str, tried: str) -> FileRejected:
    return FileRejected(
        f"cannot tell the text encoding of {name}: {tried}; pass --encoding",
        f"无法确定 {name} 的字符编码（{tried}），请用 --encoding 指定编码",
        code="encoding_undetermined",
    )


def _not_valid(name: str, label: str) -> FileRejected:
    return FileRejected(
        f"{name} is not valid {label} text",
        f"{name} 的内容不是有效的 {label} 编码",
        code="encoding_mismatch",
    )


def detect_dbf_encoding(
    dbf: Path, cpg: Path | None = None, explicit: str | None = None
) -> EncodingChoice:
    """Decide the encoding of a shapefile's ``.dbf`` text.

    A legacy claim (``.cpg`` or LDID naming GBK, cp1252 …) loses to text that is valid,
    non-ASCII UTF-8: such text is almost never a legacy encoding by chance, whereas
    decoding UTF-8 bytes as GBK "succeeds" and produces mojibake.

    Args:
        dbf: the ``.dbf`` file.
        cpg: the ``.cpg`` file beside it, if any.
        explicit: the user's ``--encoding``; overrides every rule but is still checked.

    Returns:
        The decision; ``report()`` gives the notes for ``SourceTable.notes``.

    Raises:
        FileRejected: the header is corrupt, the explicit encoding does not decode the
            text, or neither UTF-8 nor GB18030 does.
    """
    text = DbfText(dbf, read_dbf_layout(dbf))
    if explicit is not None:
        codec = normalise_encoding(explicit)
        if not text.decodes(codec):
            raise _not_valid(dbf.name, codec)
        return _dbf_choice(text, codec, "given explicitly", [])

    notes: list[str] = []
    claims: list[tuple[str, str]] = []  # (codec, where the claim comes from)
    if cpg is not None:
        raw = cpg.read_bytes()[:64].decode("ascii", errors="replace").strip()
        named = cpg_codec(raw)
        if named is None:
            notes.append(f".cpg names an unknown encoding {raw[:40]!r}; ignored")
        else:
            claims.append((named, f".cpg file ({raw[:40]})"))
    ldid = text.layout.ldid
    if ldid in LDID_CODEPAGES:
        claims.append(
            (normalise_encoding(LDID_CODEPAGES[ldid]), f"DBF language driver 0x{ldid:02X}")
        )
    elif ldid == LDID_ANSI:
        notes.append("DBF language driver 0x57 (ANSI) does not say which code page")
    elif ldid != 0:
        notes.append(f"DBF language driver 0x{ldid:02X} is unknown; ignored")

    utf8 = text.decodes("utf-8")
    for codec, source in claims:
        if codec != "utf-8" and utf8 and text.has_non_ascii:
            notes.append(f"the {source} says {codec}, but the text is valid UTF-8")
            return _dbf_choice(text, "utf-8", "strict UTF-8 decode", notes)
        if text.decodes(codec):
            return _dbf_choice(text, codec, f"from the {source}", notes)
        notes.append(f"the {source} says {codec}, but the text is not valid {codec}; ignored")
    if utf8:
        rule = "strict UTF-8 decode" if text.has_non_ascii else "the text is plain ASCII"
        return _dbf_choice(text, "utf-8", rule, notes)
    if text.decodes("gb18030"):
        return _dbf_choice(text, "gb18030", "strict GB18030 decode (UTF-8 failed)", notes)
    raise _undecidable(dbf.name, "the text is neither valid UTF-8 nor valid GB18030")


def _first_bad_line(path: Path, codec: str) -> int | None:
    """Stream ``path`` through a strict decoder; the 1-based line of the first bad byte.

    Returns:
        None when the whole file decodes.
    """
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    line = 1
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                return line + chunk[: max(exc.start, 0)].count(b"\n")
            if not chunk:
                return None
            line += chunk.count(b"\n")


def detect_text_encoding(path: Path, explicit: str | None = None) -> EncodingChoice:
    """Decide the encoding of a delimited text file by strict, streaming decodes.

    Args:
        path: the CSV/TSV file.
        explicit: the user's ``--encoding``; still checked strictly.

    Returns:
        The decision (``codec`` is ready for ``open(..., encoding=codec)``).

    Raises:
        FileRejected: the explicit encoding or the byte-order mark does not match the
            bytes, or the text is neither UTF-8 nor GB18030 (the message gives lines).
    """
    with path.open("rb") as fh:
        head = fh.read(4)
    if explicit is not None:
        codec = normalise_encoding(explicit)
        if codec == "utf-8" and head.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
        bad = _first_bad_line(path, codec)
        if bad is not None:
            raise FileRejected(
                f"line {bad} of {path.name} is not valid {_label(codec)}",
                f"{path.name} 第 {bad} 行不是有效的 {_label(codec)} 编码",
                code="encoding_mismatch",
            )
        return _choice(codec, "given explicitly", [])
    for bom, codec in _BOMS:
        if head.startswith(bom):
            label = _label(codec)
            bad = _first_bad_line(path, codec)
            if bad is not None:
                raise FileRejected(
                    f"{path.name} starts with a {label} byte-order mark but line {bad} "
                    f"is not valid {label}",
                    f"{path.name} 带有 {label} 字节顺序标记，但第 {bad} 行不是有效的 {label}",
                    code="encoding_mismatch",
                )
            return _choice(codec, f"{label} byte-order mark", [])
    bad_utf8 = _first_bad_line(path, "utf-8")
    if bad_utf8 is None:
        return _choice("utf-8", "strict UTF-8 decode", [])
    bad_gb = _first_bad_line(path, "gb18030")
    if bad_gb is None:
        return _choice("gb18030", f"strict GB18030 decode (UTF-8 fails on line {bad_utf8})", [])
    raise _undecidable(path.name, f"line {bad_utf8} is not UTF-8 and line {bad_gb} is not GB18030")
