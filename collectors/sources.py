"""Where lines come from: files, folders of them, stdin; and resuming files that grew.

A file is read in large blocks and cut at line ends. The store remembers how far each file
was consumed (bytes and lines) with fingerprints of its head and of the bytes before that
point; a file that only grew since is read from there, one that was rewritten is read again
from the start (event ids keep that idempotent).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb
import orjson

from audit.errors import AuditError
from collectors.spool import seal_abandoned

PATTERNS = ("*.jsonl", "*.log", "*.json")
BLOCK = 256 * 1024 * 1024  # fewer, larger batches: each one pays a de-duplication join
_HEAD = 64 * 1024
_TAIL = 4 * 1024
STDIN = "-"


@dataclass
class Chunk:
    data: bytes | memoryview  # complete lines, each ending in a newline
    end_offset: int  # file position once this chunk is stored
    nbytes: int  # bytes of the file this chunk covers (for progress)


@dataclass
class Resume:
    offset: int = 0
    lines: int = 0
    unchanged: bool = False
    restarted: bool = False  # the file changed under us: read it all again


def discover(paths: list[str]) -> list[str]:
    """Expand folders (recursively) into their event files; keep '-' for stdin."""
    found: list[str] = []
    for raw in paths:
        if raw == STDIN:
            found.append(STDIN)
            continue
        path = Path(raw)
        if path.is_dir():
            seal_abandoned(path)  # spool files of dead writers become *.jsonl first
            files = sorted({p for pat in PATTERNS for p in path.rglob(pat) if p.is_file()})
            found.extend(str(p) for p in files)
        elif path.is_file():
            found.append(str(path))
        elif path.exists():
            raise AuditError(f"not a regular file or folder: {raw}")
        else:
            raise AuditError(f"no such file or folder: {raw}")
    return found


def source_key(path: str) -> str:
    return STDIN if path == STDIN else str(Path(path).resolve())


def _md5_range(f: BinaryIO, start: int, end: int) -> str:
    f.seek(start)
    return hashlib.md5(f.read(max(0, end - start))).hexdigest()


def fingerprints(path: str, size: int) -> tuple[str, str]:
    with open(path, "rb") as f:
        return _md5_range(f, 0, min(size, _HEAD)), _md5_range(f, max(0, size - _TAIL), size)


def plan_resume(con: duckdb.DuckDBPyConnection, path: str) -> Resume:
    if path == STDIN:
        return Resume()
    row = con.execute(
        "SELECT size, lines, head_md5, tail_md5 FROM ingested_files WHERE path = ?",
        [source_key(path)],
    ).fetchall()
    if not row:
        return Resume()
    size, lines, head, tail = row[0]
    current = os.path.getsize(path)
    if current >= size and fingerprints(path, size) == (head, tail):
        return Resume(offset=size, lines=lines, unchanged=current == size)
    return Resume(restarted=True)


def remember(con: duckdb.DuckDBPyConnection, path: str, offset: int, lines: int) -> None:
    if path == STDIN:
        return
    head, tail = fingerprints(path, offset)
    con.execute(
        "INSERT OR REPLACE INTO ingested_files VALUES (?, ?, ?, ?, ?, current_timestamp)",
        [source_key(path), offset, lines, head, tail],
    )


def _is_complete_json(tail: bytes) -> bool:
    try:
        orjson.loads(tail)
    except orjson.JSONDecodeError:
        return False
    return True


def read_chunks(path: str, resume: Resume) -> Iterator[Chunk]:
    """Complete lines from ``resume.offset`` on, in blocks.

    A last line without a newline is taken only if it is complete JSON (a writer may be in
    the middle of it); otherwise it is left for the next ingest.
    """
    is_stdin = path == STDIN
    f = sys.stdin.buffer if is_stdin else open(path, "rb")  # noqa: SIM115 - closed below
    try:
        if path.endswith(".json") and not is_stdin:
            array = _json_array(f)
            if array is not None:
                yield array
                return
        if not is_stdin:
            f.seek(resume.offset)
        offset, carry = resume.offset, b""
        while True:
            want = BLOCK
            if not is_stdin:
                # What is left, if that is at most a block and a quarter: a short last piece
                # joins the block rather than pay a batch's fixed costs on its own.
                rest = os.fstat(f.fileno()).st_size - f.tell()
                want = rest if rest <= BLOCK + BLOCK // 4 else BLOCK
            block = f.read(want)
            eof = not block
            data = carry + block  # no copy while nothing is carried
            added_newline = False
            if eof:
                if not data.strip():  # nothing but white space after the last line
                    if data:
                        yield Chunk(b"", offset + len(data), len(data))
                    break
                if not (is_stdin or _is_complete_json(data)):
                    break  # a line still being written: leave it for next time
                data += b"\n"
                added_newline = True
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            # A view, not a slice: slicing would copy the whole block once more.
            complete, carry = memoryview(data)[: cut + 1], data[cut + 1 :]
            offset += len(complete) - added_newline
            yield Chunk(complete, offset, len(complete))
            if eof:
                break
    finally:
        if not is_stdin:
            f.close()


def _json_array(f: BinaryIO) -> Chunk | None:
    """A .json file holding one array of events: each element counts as a line."""
    head = f.read(64).lstrip()
    f.seek(0)
    if not head.startswith(b"["):
        return None
    data = f.read()
    f.seek(0)
    try:
        items = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(items, list):
        return None
    lines = b"".join(orjson.dumps(item) + b"\n" for item in items)
    return Chunk(lines, len(data), len(data))


def pending_tail(path: str, offset: int) -> bool:
    """True when bytes after ``offset`` were left unread (an incomplete last line)."""
    return path != STDIN and os.path.getsize(path) > offset
