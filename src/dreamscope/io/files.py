"""Writing files so that nothing is ever half-written: a temporary file (or folder) beside the target, renamed into
place when complete; a write error is one line naming the file and what to do. Every writer of dreamscope goes
through here (pictures, videos, data, report folders); a killed writer's debris is recognised by its name.
"""

from __future__ import annotations

import errno
import io
import os
import re
import secrets
import shutil
import stat
from pathlib import Path

from ..errors import DreamscopeError


def shown(path: str | os.PathLike) -> str:
    """A path for a message or a page: bytes that are not UTF-8 (a file name from another system) shown as U+FFFD."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "replace")


def check_folder(folder: Path) -> None:
    """Refuse a destination folder that is missing, is (or lies under) a file, or can't be written into."""
    try:
        is_folder = stat.S_ISDIR(os.stat(folder).st_mode)
    except PermissionError:
        raise DreamscopeError(f"cannot write into {folder} (permission denied); write elsewhere") from None
    except OSError:  # missing, or under a file (NotADirectoryError): say which
        blocker = next((p for p in folder.parents if os.path.lexists(p)), None)
        if blocker is not None and not os.path.isdir(blocker):
            raise DreamscopeError(f"output folder {folder} is not a folder: {blocker} is a file; write elsewhere") from None
        raise DreamscopeError(f"output folder does not exist: {folder} (create it first)") from None
    if not is_folder:
        raise DreamscopeError(f"output folder is not a folder: {folder} is a file; write elsewhere")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DreamscopeError(f"cannot write into {folder} (permission denied); write elsewhere")


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two names are one existing file: by device and inode, so links, `./`, `..` and case-insensitive
    file systems are seen through, where comparing the names would not."""
    known = file_key(a)
    return known is not None and known == file_key(b)


def file_key(path: str | os.PathLike) -> tuple[int, int] | None:
    """What `same_file` compares: an existing file's (device, inode), through links; None when there is none. Many
    names are checked against many files (a batch's outputs against its inputs) by these keys, in one pass each."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return None
    return found.st_dev, found.st_ino


def refuse_writing_over(output: str | os.PathLike, what: str, given: str | os.PathLike) -> None:
    """Refuse an output that would replace an input: the same file, a picture inside an input folder, or an output
    folder (a report, replaced whole) holding the input."""
    if same_file(output, given):
        raise DreamscopeError(f"the output {shown(output)} is the {what} itself; name another output, so the {what} is kept")
    if os.path.isdir(given) and os.path.isfile(output) and Path(output).resolve().is_relative_to(Path(given).resolve()):
        raise DreamscopeError(
            f"the output {shown(output)} is a file in the {what} {shown(given)}; name another output, so the {what} "
            "is kept as it is"
        )
    if os.path.isdir(output) and Path(given).resolve().is_relative_to(Path(output).resolve()):  # a page folder is replaced whole
        raise DreamscopeError(
            f"the {what} {shown(given)} is inside the output folder {shown(output)}, which is replaced; copy it out "
            "first or name another output"
        )


def write_file(path: str | os.PathLike, fill) -> Path:
    """Write a data file atomically: `fill(handle)` writes into a temporary file beside `path`, renamed into
    place when complete. A write error is one DreamscopeError naming the file."""
    path = Path(path)
    try:
        return write_atomically(path, fill)
    except OSError as exc:
        raise write_error(path, exc) from None


def write_atomically(path: Path, fill) -> Path:
    fd, tmp = temporary_file(path)
    try:
        with checked_file(fd) as handle:
            fill(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def temporary_file(path: Path) -> tuple[int, str]:
    """A new `.NAME.XXXX.part` file beside `path`. Unlike tempfile.mkstemp (always mode 0600), it is created
    with the permissions the umask gives any new file, so the renamed output is readable like any other."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise DreamscopeError(f"cannot create a temporary file beside {path}")


class _CheckedFile(io.BufferedWriter):
    def fileno(self) -> int:
        raise io.UnsupportedOperation("write through write(), which checks every byte")


def checked_file(file: int | str | os.PathLike) -> io.BufferedWriter:
    """A file (a descriptor or a path) for Pillow to write into that fails on a full disk. Pillow's encoders
    write straight to a file's descriptor when they can get it, and take a short write (the last bytes that
    fit) as success, leaving a cut file that looks complete; without one they call write(), which raises."""
    return _CheckedFile(io.FileIO(file, "wb"))


def write_error(path: str | os.PathLike, exc: OSError) -> DreamscopeError:
    """One line for an OSError met while writing `path`: the system's own reason and what to do about it."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        advice = "free some space or write elsewhere"
    elif code == errno.EFBIG:
        advice = "write elsewhere, or raise the file size limit (ulimit -f)"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "write elsewhere, or check the folder's permissions"
    else:
        advice = "check the disk, or write elsewhere"
    return DreamscopeError(f"cannot write {path}: {reason(exc)}; {advice}")


def reason(exc: BaseException) -> str:
    """An error's cause in a few lowercase words (the system's strerror where there is one)."""
    return str(getattr(exc, "strerror", None) or exc or type(exc).__name__).strip().rstrip(".").lower()


def new_folder_beside(folder: Path, kind: str) -> Path:
    """A new `.NAME.XXXX.KIND` folder beside `folder`. Unlike tempfile.mkdtemp (always private, mode 0700) it
    gets the permissions the umask gives any new folder, so the renamed report is readable like any other."""
    for _ in range(100):
        candidate = folder.parent / f".{folder.name}.{secrets.token_hex(4)}.{kind}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise DreamscopeError(f"cannot create a temporary folder beside {folder}")


def move_into_place(staging: Path, folder: Path) -> None:
    """Rename the finished folder into place; an existing (empty, or earlier report) folder is set aside first
    and deleted only once the new one is in place."""
    if not folder.exists():
        os.rename(staging, folder)
        return
    aside = new_folder_beside(folder, "old")
    os.rename(folder, aside / "report")
    try:
        os.rename(staging, folder)
    except BaseException:
        os.rename(aside / "report", folder)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def remove_debris(output: str | os.PathLike) -> None:
    """Remove what a killed writer left beside `output`: temporary files and folders (`.NAME.XXXXXXXX.part`) and a
    set-aside earlier report (`.NAME.XXXXXXXX.old`). Only this output's own names are touched."""
    path = Path(output)
    if not path.parent.is_dir():
        return
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{8}}\.(part|old)")
    for leftover in path.parent.iterdir():
        if pattern.fullmatch(leftover.name):
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
