"""The data a report shows, gathered once and rendered by both the HTML and terminal views.

A finding names its witnesses; a picture of it needs their neighbourhood too: the other
writes to the same entity and field just before, between and after them, in commit order
(docs/contract.md §2). Those come from the ``events`` table, read-only, in one query for all the
fields shown.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from audit import timestamps
from frontends.severity import by_severity, rank
from queries.commit_order import commit_order
from queries.finding import Finding
from queries.paths import fold
from queries.values import dump_value, rfc3339

CONTEXT_WRITES = 2  # writes shown on each side of a finding's witnesses
MAX_WRITES = 40  # a swimlane longer than this keeps only the witnesses and their neighbours
DEFAULT_TOP = 20
DEFAULT_PER_FIELD = 5
# ±infinity (no epoch_us) is drawn at Python's first and last moments
_MIN_US = timestamps.to_micros(datetime.min.replace(tzinfo=UTC))
_MAX_US = timestamps.to_micros(datetime.max.replace(tzinfo=UTC))


@dataclass(frozen=True)
class Write:
    """One transition of the field, as a mark on a timeline."""

    event_id: str
    ts_us: int  # microseconds since the epoch, UTC
    writer: str
    actor: str | None = None
    change: str = "changed"
    old: str | None = None  # canonical JSON text; None = absent
    new: str | None = None
    version: int | None = None
    base_version: int | None = None
    source_ts_us: int | None = None
    trace_id: str | None = None
    write_id: str | None = None

    @property
    def blind(self) -> bool:
        """A ``changed`` write without an old value: its writer did not read the value
        (docs/contract.md §1), so its old value is unknown rather than absent."""
        return self.change == "changed" and self.old is None


@dataclass
class Swimlane:
    """One story told in time: one lane per writer, the witnesses among their neighbours.

    Several detectors often fire on the same witnesses (a lost update that is also a priority
    inversion and a broken chain): they share one picture, each with its own explanation.
    """

    findings: list[Finding]  # same entity, field and witnesses; the most severe first
    writes: list[Write]  # commit order
    witnesses: list[str]  # event ids, commit order
    overwritten: frozenset[str]  # witnesses whose new value a later witness replaced
    lanes: list[str]  # writers, in order of first appearance
    hidden: dict[int, int] = field(default_factory=dict)  # writes[i] is preceded by n unshown

    @property
    def finding(self) -> Finding:
        return self.findings[0]

    def witness_number(self, event_id: str) -> int | None:
        """1-based position among the witnesses, or None for a context write."""
        try:
            return self.witnesses.index(event_id) + 1
        except ValueError:
            return None


@dataclass
class FieldFindings:
    """The findings on one entity's field: the unit a large report is grouped and ranked by."""

    entity: str
    field: str
    entity_type: str | None
    findings: list[Finding]
    swimlanes: list[Swimlane] = field(default_factory=list)  # the first few stories

    @property
    def undrawn(self) -> list[Finding]:
        """Findings on this field that got no timeline (beyond ``per_field`` stories)."""
        drawn = {f.fingerprint for lane in self.swimlanes for f in lane.findings}
        return [f for f in self.findings if f.fingerprint not in drawn]

    @property
    def severity(self) -> str:
        return max((f.severity for f in self.findings), key=rank)

    @property
    def detectors(self) -> list[str]:
        return sorted({f.detector for f in self.findings})

    @property
    def writers(self) -> list[str]:
        return _unique(w for f in self.findings for w in f.writers)

    @property
    def anchor(self) -> str:
        """A stable id for links inside the page (entity and field are user data)."""
        return "f-" + self.findings[0].fingerprint[:12]


@dataclass(frozen=True)
class ContestedField:
    """A field (list indexes folded to ``*``) across entities, with how often it conflicts."""

    field: str
    findings: int
    entities: int
    writers: list[str]
    detectors: list[str]


@dataclass
class Report:
    source: str
    generated_at: datetime
    events: int
    entities: int
    first_ts: datetime | str | None  # text: a moment beyond Python's years 1 to 9999
    last_ts: datetime | str | None
    findings: list[Finding]
    by_severity: list[tuple[str, int]]  # each finding's own severity, worst first
    by_detector: list[tuple[str, Counter]]  # detector -> severity counts
    by_writer_pair: list[tuple[str, int]]
    contested: list[ContestedField]
    shown: list[FieldFindings]  # the top groups, with swimlanes
    rest: list[FieldFindings]  # listed only


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def _shown_time(value: datetime | str | None) -> datetime | str | None:
    """A stored moment as the views take it: a datetime where Python holds it, else the
    text DuckDB gives for it (a store may hold years 0 or 294247, or ±infinity)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            return value.astimezone(UTC)
        except OverflowError:
            pass
    return rfc3339(value)


def writer_pair(finding: Finding) -> str:
    """Who overwrote whom, in the order the detector named the writers."""
    if len(finding.writers) == 1:  # a writer that overwrote itself (another actor, a retry)
        return f"{finding.writers[0]} → {finding.writers[0]}"
    return " → ".join(finding.writers) if finding.writers else "?"


def build_report(
    con: duckdb.DuckDBPyConnection,
    findings: list[Finding],
    *,
    source: str = "",
    top: int = DEFAULT_TOP,
    per_field: int = DEFAULT_PER_FIELD,
) -> Report:
    """Gather everything both views show: summaries, ranked groups, swimlanes for the top.

    ``top`` entity/field groups get a swimlane for each of up to ``per_field`` stories (the
    findings sharing one set of witnesses); every other finding is still listed, so nothing
    found is left out of the report.
    """
    if top < 0 or per_field < 0:
        raise ValueError("top and per_field must be non-negative")
    groups = _group(findings)
    shown, rest = groups[:top], groups[top:]
    neighbourhoods = _neighbourhoods(con, [(g.entity, g.field) for g in shown])
    for group in shown:
        writes = neighbourhoods.get((group.entity, group.field), [])
        group.swimlanes = [swimlane(story, writes) for story in _stories(group)[:per_field]]
    events, entities, first, last = con.execute(
        "SELECT count(*), count(DISTINCT entity), min(ts), max(ts) "
        "FROM events"
    ).fetchall()[0]
    by_detector: dict[str, Counter] = defaultdict(Counter)
    for f in findings:
        by_detector[f.detector][f.severity] += 1
    return Report(
        source=source,
        generated_at=datetime.now(UTC),
        events=events,
        entities=entities,
        first_ts=_shown_time(first),
        last_ts=_shown_time(last),
        findings=findings,
        by_severity=by_severity(findings),
        by_detector=sorted(by_detector.items(), key=lambda kv: (-kv[1].total(), kv[0])),
        by_writer_pair=Counter(writer_pair(f) for f in findings).most_common(),
        contested=_contested(findings),
        shown=shown,
        rest=rest,
    )


def _unique(items) -> list:
    return list(dict.fromkeys(items))


def _group(findings: list[Finding]) -> list[FieldFindings]:
    by_key: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in findings:
        by_key[(f.entity, f.field)].append(f)
    keyed = []
    for (entity, field_path), members in by_key.items():
        if len(members) > 1:
            members.sort(
                key=lambda f: (-rank(f.severity), f.first_ts, f.detector)
            )
        entity_type = next((f.entity_type for f in members if f.entity_type), None)
        group = FieldFindings(entity, field_path, entity_type, members)
        worst = rank(members[0].severity)  # members are worst first
        keyed.append(((-worst, -len(members)), max(f.last_ts for f in members), group))
    # Worst first, then the most findings, then the most recent; names break ties stably.
    keyed.sort(key=lambda k: (k[2].entity, k[2].field))
    keyed.sort(key=lambda k: k[1], reverse=True)
    keyed.sort(key=lambda k: k[0])
    return [k[2] for k in keyed]


def _stories(group: FieldFindings) -> list[list[Finding]]:
    """The group's findings gathered by witnesses, in the group's (worst first) order."""
    stories: dict[tuple[str, ...], list[Finding]] = {}
    for f in group.findings:
        stories.setdefault(tuple(f.event_ids), []).append(f)
    return list(stories.values())


def _contested(findings: list[Finding]) -> list[ContestedField]:
    by_field: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_field[fold(f.field)].append(f)
    rows = [
        ContestedField(
            field=name,
            findings=len(members),
            entities=len({f.entity for f in members}),
            writers=sorted({w for f in members for w in f.writers}),
            detectors=sorted({f.detector for f in members}),
        )
        for name, members in by_field.items()
    ]
    rows.sort(key=lambda r: (-r.findings, -r.entities, r.field))
    return rows


# Commit order is the one the detectors use (queries/commit_order.py, docs/contract.md §2),
# `rn` being a write's place in its field. A moment beyond what epoch_us holds (±infinity)
# is drawn at the nearest end.
_NEIGHBOURHOOD_SQL = """
SELECT t.entity, e.field, e.event_id,
       coalesce(epoch_us(e.ts), CASE WHEN e.ts > TIMESTAMPTZ '1970-01-01 00:00:00+00'
                                     THEN $max_us ELSE $min_us END),
       e.writer, e.actor, e.change, e.old::VARCHAR, e.new::VARCHAR, e.version,
       e.base_version, epoch_us(e.source_ts), e.trace_id, e.write_id
FROM transitions t
JOIN (SELECT unnest($entities::VARCHAR[]) AS entity, unnest($fields::VARCHAR[]) AS field) k
  ON k.entity = t.entity AND k.field = t.field
JOIN events e ON e.seq = t.seq
ORDER BY t.entity, t.field, t.rn
"""


def _neighbourhoods(
    con: duckdb.DuckDBPyConnection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], list[Write]]:
    """Every write to each (entity, field), in commit order.

    The whole history of the entities shown, built once for all of them: a report of the
    top fields costs one scan of their entities, not a sort of the whole store.
    """
    out: dict[tuple[str, str], list[Write]] = defaultdict(list)
    if not keys:
        return out
    order = commit_order(con, entities=sorted({entity for entity, _ in keys}))
    rows = order.execute(_NEIGHBOURHOOD_SQL, {
        "entities": [entity for entity, _ in keys], "fields": [f for _, f in keys],
        "min_us": _MIN_US, "max_us": _MAX_US,
    }).fetchall()
    for entity, field_path, *rest in rows:
        out[(entity, field_path)].append(Write(*rest))
    return out


def _parse_ts_us(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace(" ", "T", 1))
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def _json_text(witness: dict[str, Any], key: str) -> str | None:
    """A witness's value as canonical JSON text, None when absent: a detector's witness
    carries the decoded value (absent by its change, or unknown when blind); a witness
    made elsewhere may carry stored text."""
    if "change" in witness and "blind" in witness:
        absent = (witness["change"] == "added" or witness["blind"] if key == "old"
                  else witness["change"] == "removed")
        return None if absent else dump_value(witness.get(key))
    value = witness.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            orjson.loads(value)
            return value
        except orjson.JSONDecodeError:
            pass
    return dump_value(value)


def write_from_witness(witness: dict[str, Any], finding: Finding) -> Write:
    """A witness that is not in the store (a finding made elsewhere) still gets its mark."""
    ts_us = _parse_ts_us(witness.get("ts")) or _parse_ts_us(finding.first_ts) or 0
    return Write(
        event_id=str(witness.get("event_id", "")),
        ts_us=ts_us,
        writer=str(witness.get("writer") or "?"),
        actor=witness.get("actor"),
        change=str(witness.get("change") or "changed"),
        old=_json_text(witness, "old"),
        new=_json_text(witness, "new"),
        version=witness.get("version"),
        base_version=witness.get("base_version"),
        source_ts_us=_parse_ts_us(witness.get("source_ts")),
        trace_id=witness.get("trace_id"),
        write_id=witness.get("write_id"),
    )


def swimlane(
    findings: Finding | list[Finding],
    field_writes: list[Write],
    *,
    context: int = CONTEXT_WRITES,
    max_writes: int = MAX_WRITES,
) -> Swimlane:
    """The witnesses of ``findings`` (one, or several sharing their witnesses) among the
    writes around them (``field_writes`` in commit order); too long a stretch keeps only the
    witnesses and their immediate neighbours."""
    findings = [findings] if isinstance(findings, Finding) else list(findings)
    finding = findings[0]
    writes = list(field_writes)
    index = {w.event_id: i for i, w in enumerate(writes)}
    missing = [wid for wid in finding.event_ids if wid not in index]
    if missing:
        # Not in the store: show the finding's own account of them, merged in time order.
        by_id = {str(w.get("event_id")): w for w in finding.witnesses}
        for wid in missing:
            extra = write_from_witness(by_id.get(wid, {"event_id": wid}), finding)
            at = next((i for i, w in enumerate(writes) if w.ts_us > extra.ts_us), len(writes))
            writes.insert(at, extra)
        index = {w.event_id: i for i, w in enumerate(writes)}
    positions = sorted(index[wid] for wid in finding.event_ids)
    keep: set[int] = set()
    if positions:
        lo, hi = max(0, positions[0] - context), min(len(writes), positions[-1] + context + 1)
        if hi - lo <= max_writes:
            keep = set(range(lo, hi))
        else:
            for p in positions:
                keep.update(range(max(0, p - 1), min(len(writes), p + 2)))
    chosen = sorted(keep)
    shown = [writes[i] for i in chosen]
    hidden: dict[int, int] = {}
    previous = -1
    for n, i in enumerate(chosen):
        if i - previous > 1 and previous >= 0:
            hidden[n] = i - previous - 1
        previous = i
    if chosen and chosen[0] > 0:
        hidden[0] = chosen[0]
    if chosen and chosen[-1] < len(writes) - 1:
        hidden[len(shown)] = len(writes) - 1 - chosen[-1]  # after the last write
    witnesses = [writes[p].event_id for p in positions]
    return Swimlane(
        findings=findings,
        writes=shown,
        witnesses=witnesses,
        # Every witness but the last had its value replaced by a later one: that is the
        # value the finding is about (the lost update, the newer data, the flip).
        overwritten=frozenset(witnesses[:-1]),
        # The finding's writers first, so the story reads top-down; bystanders below.
        lanes=_unique([*(w for f in findings for w in f.writers
                         if any(s.writer == w for s in shown)),
                       *(s.writer for s in shown)]),
        hidden=hidden,
    )
