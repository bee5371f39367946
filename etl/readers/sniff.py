r"""Decide a file's format from its name *and* its first bytes, refusing mismatches (C11).

GDAL opens whatever it recognises: a ``.tif`` that is VRT XML can make it read other
files, and a polyglot can be read by a driver nobody meant to expose. So a file is read
only when its extension names a format we accept *and* its magic bytes are that
format's; anything else is refused with what the bytes actually are.

Example:
    >>> describe(b"PK\x03\x04rest")
    'zip'
    >>> describe(b"SQLite format 3\x00")
    'sqlite'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from etl.model import FileRejected

Kind = Literal["shp", "zip", "gpkg", "geojson", "csv", "xlsx"]

#: Accepted extensions → format.
EXTENSIONS: dict[str, Kind] = {
    ".shp": "shp",
    ".zip": "zip",
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}
#: Format → the content ``describe`` must report for it.
_CONTENT: dict[Kind, str] = {
    "shp": "shapefile",
    "zip": "zip",
    "gpkg": "sqlite",
    "geojson": "json",
    "csv": "text",
    "xlsx": "zip",
}
#: Shapefile parts: a user who picks one of them means the ``.shp`` beside it.
SIDECARS = frozenset({".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx"})

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\x27\x0a", "shapefile"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"SQLite format 3\x00", "sqlite"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"%PDF", "pdf"),
    (b"\x89PNG", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x1f\x8b", "gzip"),
    (b"7z\xbc\xaf", "7z"),
    (b"Rar!", "rar"),
)
_HEAD = 8192
_WHITESPACE = b" \t\r\n"
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def describe(head: bytes) -> str:
    """Name what the first bytes of a file are (``zip``, ``sqlite``, ``xml``, ``text`` …)."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head.startswith(_UTF16_BOMS):
        return "text"
    stripped = head.removeprefix(_UTF8_BOM).lstrip(_WHITESPACE)
    if stripped.startswith(b"{"):
        return "json"
    if stripped.startswith(b"<"):
        return "xml"
    if not head or b"\x00" in head:
        return "binary" if head else "empty"
    return "text"


_DESCRIPTIONS_ZH = {
    "ole2": "旧版 Office 文件（.xls）或加密的工作簿",
    "xml": "XML 文件（如 VRT/KML/GML）",
    "empty": "空文件",
}


def _mismatch(name: str, suffix: str, actual: str) -> FileRejected:
    if actual == "ole2":
        return FileRejected(
            f"{name} is a legacy .xls or a password-protected workbook; "
            "save it as an unprotected .xlsx",
            f"{name} 是旧版 .xls 或设置了密码的工作簿，请另存为无密码的 .xlsx",
            code="file_type_mismatch",
        )
    actual_zh = _DESCRIPTIONS_ZH.get(actual, actual)
    return FileRejected(
        f"{name} is named {suffix} but its content is {actual}",
        f"{name} 的扩展名为 {suffix}，但内容是{actual_zh}",
        code="file_type_mismatch",
    )


def checked_path(path: Path) -> Path:
    """Refuse GDAL virtual paths and URLs; return an existing path, made absolute.

    A ``/vsicurl/`` or ``https://`` path would make GDAL fetch from the network and
    ``/vsizip/`` would bypass the archive checks. An absolute path also starts with
    ``/``, so a file named like a GDAL connection string (``GPKG:x.gpkg:layer``) is
    opened as the file it is.

    Raises:
        FileRejected: a virtual path, a URL, or nothing at that path.
    """
    text = str(path)
    if text.lower().startswith("/vsi") or "://" in text:
        raise FileRejected(
            "only local files can be imported", "只能导入本地文件", code="path_refused"
        )
    if not path.exists():
        raise FileRejected(
            f"{path.name} does not exist", f"文件 {path.name} 不存在", code="file_missing"
        )
    return path.absolute()


def sniff(path: Path) -> Kind:
    """The format of ``path`` when its extension and its magic bytes agree.

    Raises:
        FileRejected: unsupported extension (with the accepted list), a legacy ``.xls``,
            or content that is not what the extension says.
    """
    suffix = path.suffix.lower()
    kind = EXTENSIONS.get(suffix)
    if suffix == ".xls":
        raise _mismatch(path.name, suffix, "ole2")
    if kind is None:
        accepted = ", ".join(sorted(EXTENSIONS))
        raise FileRejected(
            f"{path.name}: unsupported file type {suffix or '(none)'}; accepted: {accepted}",
            f"{path.name}：不支持的文件类型 {suffix or '（无扩展名）'}；支持：{accepted}",
            code="unsupported_format",
        )
    with path.open("rb") as fh:
        head = fh.read(_HEAD)
    actual = describe(head)
    if actual != _CONTENT[kind]:
        raise _mismatch(path.name, suffix, actual)
    return kind
