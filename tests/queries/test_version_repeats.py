"""version_conflict groups by version only the entities where two events may claim one
(`entity_flags.repeats_version`, queries/transitions.sql): one bit of 64 per version. A
fork must be found whatever the versions are (negative, extreme, more than 64 of them, in
an entity where some writes carry none), and the bits must list every entity with a
repeated version and none whose versions are all on bits of their own."""

from __future__ import annotations

from detect_histories import ev, summary

from audit.config import Config
from queries.commit_order import commit_order
from queries.runner import check

LOWEST, HIGHEST = -(2**63), 2**63 - 1


def writes(entity: str, versions: list[int | None], write_ids: list[str] | None = None):
    """One event per version, each on a field of its own (so that only version_conflict
    can fire), each its own write unless ``write_ids`` says otherwise."""
    ids = write_ids or [f"{entity}-w{i}" for i in range(len(versions))]
    return [ev(f"{entity}-{i}", i, entity, f"f{i}", "user", new=i, write_id=ids[i],
               **({} if v is None else {"version": v}))
            for i, v in enumerate(versions)]


HISTORIES = {
    # entity: (versions, write ids or None, the fork's witnesses or None)
    "negative": ([-3, -2, -2], None, ("negative-1", "negative-2")),
    "long": ([*range(1, 101), 70], None, ("long-69", "long-100")),
    "extreme": ([LOWEST, HIGHEST, HIGHEST], None, ("extreme-1", "extreme-2")),
    "mixed": ([None, 5, 5], None, ("mixed-1", "mixed-2")),
    "apart": ([1, 65], None, None),  # one bit, two versions: no fork
    "plain": ([1, 2, 3], None, None),
    "partly": ([None, 1, 2], None, None),  # some events without a version, none repeated
    "one-write": ([4, 4], ["w", "w"], None),  # one write of two fields: no fork
}


def test_every_fork_is_found(store):
    events = [e for entity, (versions, ids, _) in HISTORIES.items()
              for e in writes(entity, versions, ids)]
    found = summary(check(store(events), detectors=["version_conflict"]))
    assert found == {("version_conflict", entity, "$", fork)
                     for entity, (_, _, fork) in HISTORIES.items() if fork}


def test_the_bits_list_each_entity_with_a_repeated_version(store):
    events = [e for entity, (versions, ids, _) in HISTORIES.items()
              for e in writes(entity, versions, ids)]
    order = commit_order(store(events), Config())
    listed = {entity for (entity,) in order.execute(
        "SELECT entity FROM entity_flags WHERE repeats_version").fetchall()}
    # every repeat, and the two whose distinct versions share a bit (65 = 1 + 64; more
    # than 64 versions): checked exactly by version_conflict, which finds no fork there
    assert listed == {"negative", "long", "extreme", "mixed", "one-write", "apart"}
