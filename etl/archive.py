"""Safe handling of uploaded zip archives (BAD_INPUTS C1, C2).

A zip is hostile until proven otherwise: its names may climb out of the target folder
(zip-slip), its central directory may lie about sizes, it may expand a thousandfold or
hold another archive. ``check_zip`` therefore decompresses every entry once into
nowhere, counting the bytes it really produces against the caps, before anything is
written; ``extract_zip`` runs that check and only then writes regular files below a
private folder, counting again while it writes.

Example:
    >>> safe_member_name("data/道路.shp")
    'data/道路.shp'
"""

from __future__ import annotations

import logging
import re
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from etl.model import FileRejected
from gis_service.errors import TooLarge

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
#: Magic numbers of archive formats we refuse to find inside an archive.
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!", b"BZh")
_ARCHIVE_SUFFIXES = frozenset({".zip", ".7z", ".rar", ".gz", ".tgz", ".tar", ".bz2", ".xz"})
_UTF8_NAME_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on what one archive may expand to.

    Attributes:
        max_entries: entries in the central directory (files and folders).
        max_total_bytes: bytes produced by decompressing every entry, counted while
            streaming.
        max_ratio: produced bytes per byte of archive on disk.
        ratio_floor_bytes: the ratio is enforced only past this many produced bytes,
            because small sparse DBFs legitimately compress better than 100:1.
    """

    max_entries: int = 1_000
    max_total_bytes: int = 500 * 1024 * 1024
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class Member:
    """One regular file of a checked archive.

    Attributes:
        info: the zipfile entry.
        name: the safe relative POSIX path to write it to (names stored without the
            UTF-8 flag are re-decoded as UTF-8 or GB18030 when that is valid, so the
            Chinese names Windows writes survive).
    """

    info: zipfile.ZipInfo
    name: str


def _slip(name: str) -> FileRejected:
    return FileRejected(
        f"archive entry {name[:80]!r} points outside the archive (zip-slip)",
        f"压缩包内的文件名 {name[:80]!r} 指向压缩包之外（路径穿越），已拒绝",
        code="archive_unsafe_name",
    )


def safe_member_name(name: str) -> str:
    """Return ``name`` as a relative POSIX path, or refuse it.

    Refuses absolute paths, drive letters (``C:`` prefixes), ``..`` components, NUL bytes and
    empty names, after treating backslashes as separators as Windows tools do.

    Raises:
        FileRejected: the name would escape the extraction folder.
    """
    unified = name.replace("\\", "/")
    parts = PurePosixPath(unified).parts
    if (
        not unified.strip("/")
        or "\x00" in unified
        or unified.startswith("/")
        or _DRIVE.match(unified)
        or any(part == ".." for part in parts)
    ):
        raise _slip(name)
    return "/".join(part for part in parts if part not in ("", "."))


def _display_name(info: zipfile.ZipInfo) -> str:
    """The entry name as the person who zipped it saw it.

    Zip tools on Chinese Windows store names in GBK without the UTF-8 flag; zipfile
    then decodes them as cp437 mojibake. Recover the raw bytes and decode strictly.
    """
    if info.flag_bits & _UTF8_NAME_FLAG:
        return info.filename
    try:
        raw = info.orig_filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for codec in ("utf-8", "gb18030"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return info.filename


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _refuse(detail: str, detail_zh: str, code: str = "archive_refused") -> FileRejected:
    return FileRejected(detail, detail_zh, code=code)


def _members(zf: zipfile.ZipFile, limits: ArchiveLimits, *, allow_nested: bool) -> list[Member]:
    """Validate the directory of ``zf`` (names, types, counts) without decompressing."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise TooLarge(
            detail=f"archive has {len(infos)} entries; at most {limits.max_entries} allowed",
            detail_zh=f"压缩包含 {len(infos)} 个条目，超过上限 {limits.max_entries}",
        )
    members: list[Member] = []
    seen: dict[str, str] = {}
    for info in infos:
        if _is_symlink(info):
            raise _refuse(
                f"archive entry {info.filename[:80]!r} is a symbolic link",
                f"压缩包条目 {info.filename[:80]!r} 是符号链接，已拒绝",
                code="archive_unsafe_name",
            )
        name = safe_member_name(_display_name(info))
        safe_member_name(info.filename)  # the raw form must be safe too
        if info.is_dir():
            continue
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise _refuse(
                "the archive is password-protected; upload it without a password",
                "压缩包设置了密码，请去掉密码后再上传",
            )
        folded = name.casefold()
        if folded in seen:
            raise _refuse(
                f"archive holds two entries named {seen[folded]!r} and {name!r}",
                f"压缩包内有重名文件 {seen[folded]!r} 与 {name!r}",
                code="archive_unsafe_name",
            )
        seen[folded] = name
        if not allow_nested and PurePosixPath(name).suffix.lower() in _ARCHIVE_SUFFIXES:
            raise _nested(name)
        members.append(Member(info=info, name=name))
    return members


def _nested(name: str) -> FileRejected:
    return _refuse(
        f"archive contains another archive ({name!r}); unpack it and upload the data files",
        f"压缩包内含有压缩包（{name!r}），请解压后上传数据文件",
        code="archive_nested",
    )


class _Budget:
    """Counts bytes really produced by decompression against the caps."""

    def __init__(self, limits: ArchiveLimits, archive_bytes: int) -> None:
        self.limits = limits
        self.archive_bytes = max(archive_bytes, 1)
        self.produced = 0

    def add(self, count: int) -> None:
        self.produced += count
        if self.produced > self.limits.max_total_bytes:
            raise TooLarge(
                detail=(
                    f"archive expands to more than {self.limits.max_total_bytes} bytes; "
                    "refused as a possible zip bomb"
                ),
                detail_zh="压缩包解压后超过大小上限，疑似压缩炸弹，已拒绝",
            )
        ratio = self.produced / self.archive_bytes
        if self.produced > self.limits.ratio_floor_bytes and ratio > self.limits.max_ratio:
            raise TooLarge(
                detail=(
                    f"archive expands more than {self.limits.max_ratio:g}:1; "
                    "refused as a possible zip bomb"
                ),
                detail_zh=f"压缩包解压比超过 {self.limits.max_ratio:g}:1，疑似压缩炸弹，已拒绝",
            )


def _stream(
    zf: zipfile.ZipFile,
    members: list[Member],
    budget: _Budget,
    *,
    allow_nested: bool,
    open_target: Callable[[Member], BinaryIO] | None,
) -> None:
    """Decompress every member chunk by chunk, counting, and write it when asked to."""
    for member in members:
        out = open_target(member) if open_target is not None else None
        first = True
        try:
            with zf.open(member.info) as fh:
                while chunk := fh.read(_CHUNK):
                    if first and not allow_nested and chunk.startswith(_ARCHIVE_MAGIC):
                        raise _nested(member.name)
                    first = False
                    budget.add(len(chunk))
                    if out is not None:
                        out.write(chunk)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
            log.info("zip entry %r unreadable: %s", member.name, exc)
            raise _refuse(
                f"archive entry {member.name!r} is corrupt or uses an unsupported compression",
                f"压缩包条目 {member.name!r} 已损坏或压缩方式不受支持",
                code="archive_corrupt",
            ) from exc
        finally:
            if out is not None:
                out.close()


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        log.info("not a readable zip: %s", exc)
        raise _refuse(
            "the file is not a readable zip archive",
            "文件不是可读取的 zip 压缩包",
            code="archive_corrupt",
        ) from exc


def check_zip(
    path: Path, limits: ArchiveLimits | None = None, *, allow_nested: bool = False
) -> list[Member]:
    """Prove an archive safe to read: names, entry count, real expanded size and ratio.

    Every entry is decompressed once and thrown away, so a bomb is stopped by the byte
    counter after at most ``max_total_bytes`` (or ``max_ratio`` × archive size) of work
    and nothing touches the disk.

    Args:
        path: the zip file (also used for ``.xlsx``, which is a zip).
        limits: caps; the defaults of ``ArchiveLimits`` when None.
        allow_nested: accept archives inside (an ``.xlsx`` may embed other documents).

    Returns:
        The regular-file members with their safe relative names.

    Raises:
        FileRejected: unsafe names, links, nested archives, passwords, corruption.
        TooLarge: too many entries, too many bytes, too high a ratio.
    """
    limits = limits or ArchiveLimits()
    with _open(path) as zf:
        members = _members(zf, limits, allow_nested=allow_nested)
        budget = _Budget(limits, path.stat().st_size)
        _stream(zf, members, budget, allow_nested=allow_nested, open_target=None)
    return members


def extract_zip(path: Path, dest: Path, limits: ArchiveLimits | None = None) -> list[Path]:
    """Check an archive with ``check_zip``, then write its files below ``dest``.

    Args:
        path: the zip file.
        dest: an empty private folder (the caller's temporary directory).
        limits: caps; the defaults of ``ArchiveLimits`` when None.

    Returns:
        The extracted files, in archive order.

    Raises:
        FileRejected: see ``check_zip``.
        TooLarge: see ``check_zip``.
    """
    limits = limits or ArchiveLimits()
    members = check_zip(path, limits)
    root = dest.resolve()
    written: list[Path] = []

    def open_target(member: Member) -> BinaryIO:
        target = (root / member.name).resolve()
        if not target.is_relative_to(root):  # defence in depth after safe_member_name
            raise _slip(member.name)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            out = target.open("xb")
        except OSError as exc:  # a file and a folder of one name, or a clash
            raise _refuse(
                f"archive entry {member.name!r} clashes with another entry",
                f"压缩包条目 {member.name!r} 与其他条目冲突",
                code="archive_unsafe_name",
            ) from exc
        written.append(target)
        return out

    with _open(path) as zf:
        budget = _Budget(limits, path.stat().st_size)
        _stream(zf, members, budget, allow_nested=False, open_target=open_target)
    return written
