"""Mixed garbage through the command line: ingest, check, timeline, report, stats.

A seeded generator writes files of valid events among lines cut short, nested too deep,
holding NaN or numbers beyond a double, bad timestamps, keys given twice, byte order
marks, binary, ordinary log lines and blank lines. Every non-blank line must be accounted
for (stored, a duplicate, skipped as an ordinary log line, or rejected with a reason), no
command may end in a traceback, and exit codes are those of docs/contract.md §4.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sample_event import event

from frontends.cli import main

ENTITIES = ["block-A", "block-B", "doc\x1b[2J", "ws-1"]
WRITERS = ["user", "workflow", "instantiation", "polling_sync"]
BOM = b"\xef\xbb\xbf"


def valid(rng: random.Random) -> dict:
    e = event(
        ts=f"2026-01-01T10:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
        entity=rng.choice(ENTITIES),
        field=rng.choice(["status", "content", "items.0.name"]),
        writer=rng.choice(WRITERS),
        old=rng.choice(["a", "b", 1, None, [1, 2], {"k": "v"}]),
        new=rng.choice(["a", "b", 2, 2.5, {"k": "w"}, "\x07bell"]),
    )
    if rng.random() < 0.5:
        e["version"] = rng.randrange(1, 6)
        e["base_version"] = e["version"] - rng.randrange(1, 3)
    if rng.random() < 0.3:
        e["event_id"] = f"e-{rng.randrange(40)}"  # some repeat: duplicates
    return e


def head(rng: random.Random, without: str = "new") -> str:
    """A valid event's text without one key and its closing brace, to write by hand."""
    e = valid(rng)
    e.pop(without)
    return json.dumps(e)[:-1]


def garbage(rng: random.Random) -> bytes:
    """One line (no newline) of one of the kinds a real log or a fault produces."""
    kind = rng.randrange(16)
    text = json.dumps(valid(rng))
    if kind == 0:
        return text[: rng.randrange(1, len(text))].encode()  # cut short
    if kind == 1:
        return (text[: rng.randrange(1, len(text))] + json.dumps(valid(rng))).encode()
    if kind == 2:
        depth = rng.choice([65, 255, 300, 1100])
        return (head(rng) + ', "new": ' + "[" * depth + "]" * depth + "}").encode()
    if kind == 3:
        value = rng.choice(["NaN", "-Infinity", "1e400", "[1, Infinity]", "1" + "0" * 400])
        return (head(rng) + f', "new": {value}}}').encode()
    if kind == 4:
        ts = rng.choice(
            ["0000-01-01T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T10:00:00+99:59"]
        )
        return json.dumps(valid(rng) | {"ts": ts}).encode()
    if kind == 5:
        key = rng.choice(['"entity": "other"', '"version": "x"', '"writer": "user"'])
        return (head(rng, without="event") + ", " + key + "}").encode()
    if kind == 6:
        return BOM + text.encode()  # a BOM that is not at the start of the file
    if kind == 7:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))).replace(b"\n", b"")
    if kind == 8:
        return json.dumps({"event": "http.request", "path": "/x", "status": 200}).encode()
    if kind == 9:
        return rng.choice([b"", b"   ", b"\t\r"])  # blank
    if kind == 10:
        return rng.choice([b"[1, 2]", b'"text"', b"42", b"null", b"{}"])
    if kind == 11:
        return ("plain text log line " + "é" * rng.randrange(3)).encode()
    if kind == 12:
        return json.dumps(valid(rng) | {"attrs": {"x": rng.choice([1.5, "NaN", [1e300]])}}).encode()
    return text.encode()


def write_files(folder: Path, seed: int) -> int:
    """Files of generated lines; returns how many lines are not blank."""
    rng = random.Random(seed)
    folder.mkdir()
    non_blank = 0
    for n in range(3):
        lines = [garbage(rng) for _ in range(rng.randrange(60, 160))]
        data = b"\n".join(lines)
        if rng.random() < 0.7:
            data += b"\n"  # else the last line has no newline: taken if whole, or rejected
        if n == 0:
            data = BOM + data
        (folder / f"log-{n}.jsonl").write_bytes(data)
        non_blank += sum(1 for line in lines if line.strip(b" \t\r\n"))
    return non_blank


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:  # anything else is a traceback for a user
        main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return exit_.value.code, out, err


@pytest.mark.parametrize("seed", [1, 2])
def test_garbage_is_accounted_for_and_every_reader_survives(tmp_path, capsys, seed):
    folder = tmp_path / "logs"
    non_blank = write_files(folder, seed)
    db = str(tmp_path / "store.duckdb")

    code, out, _ = run(capsys, "ingest", str(folder), "--db", db, "--json", "--tail-grace", "0")
    assert code == 0
    counts = json.loads(out)
    accounted = counts["ingested"] + counts["duplicates"] + counts["skipped"] + counts["rejected"]
    assert (accounted, counts["pending_lines"]) == (non_blank, 0)
    assert counts["ingested"] > 0 and counts["rejected"] > 0

    code, out, _ = run(capsys, "check", "--db", db)
    assert code in (0, 1)  # 1: findings
    code, out, _ = run(capsys, "check", "--db", db, "--format", "json")
    assert code in (0, 1) and isinstance(json.loads(out), list)
    for entity in ENTITIES:
        assert run(capsys, "timeline", entity, "--db", db)[0] == 0
    assert run(capsys, "report", "--db", db)[0] == 0
    assert run(capsys, "report", "--db", db, "--html", str(tmp_path / "r.html"))[0] == 0
    assert run(capsys, "stats", "--db", db)[0] == 0
    assert run(capsys, "ingest", str(folder), "--db", db)[0] == 0  # again: a no-op
