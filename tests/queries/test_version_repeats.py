"""version_conflict reads only the entities where queries/transitions.sql's one pass over
the events found that a rule could fire (`entity_flags`): a version two events may claim
(one bit of 64 per version) or a version not above the one read. A finding must be made
whatever the versions are (negative, extreme, more than 64 of them, in an entity where
some writes carry none), and the flags must list every entity where one could be made."""

from __future__ import annotations

from detect_histories import ev, summary

from audit.config import Config
from queries.commit_order import commit_order
from queries.runner import check

LOWEST, HIGHEST = -(2**63), 2**63 - 1


def writes(entity: str, versions: list[int | None], write_ids: list[str] | None = None,
           bases: list[int | None] | None = None):
    """One event per version, each on a field of its own (so that only version_conflict
    can fire), each its own write unless ``write_ids`` says otherwise, with the version
    read in ``bases`` (none by default)."""
    ids = write_ids or [f"{entity}-w{i}" for i in range(len(versions))]
    read = bases or [None] * len(versions)
    return [ev(f"{entity}-{i}", i, entity, f"f{i}", "user", new=i, write_id=ids[i],
               **({} if v is None else {"version": v}),
               **({} if b is None else {"base_version": b}))
            for i, (v, b) in enumerate(zip(versions, read, strict=True))]


FORK = "$"  # a fork's field: its witnesses write different fields
HISTORIES = {
    # entity: (the events, the findings: (field, witnesses))
    "negative": (writes("negative", [-3, -2, -2]), {(FORK, ("negative-1", "negative-2"))}),
    "long": (writes("long", [*range(1, 101), 70]), {(FORK, ("long-69", "long-100"))}),
    "extreme": (writes("extreme", [LOWEST, HIGHEST, HIGHEST]),
                {(FORK, ("extreme-1", "extreme-2"))}),
    "mixed": (writes("mixed", [None, 5, 5]), {(FORK, ("mixed-1", "mixed-2"))}),
    "stuck": (writes("stuck", [1, 2, 3], bases=[0, 2, 2]), {("f1", ("stuck-1",))}),
    "apart": (writes("apart", [1, 65]), set()),  # one bit, two versions: no fork
    "plain": (writes("plain", [1, 2, 3], bases=[0, 1, 2]), set()),
    "partly": (writes("partly", [None, 1, 2]), set()),  # some events carry no version
    "one-write": (writes("one-write", [4, 4], ["w", "w"]), set()),  # two fields, one write
}
EVENTS = [e for events, _ in HISTORIES.values() for e in events]


def test_every_finding_is_made(store):
    found = summary(check(store(EVENTS), detectors=["version_conflict"]))
    assert found == {("version_conflict", entity, field, witnesses)
                     for entity, (_, findings) in HISTORIES.items()
                     for field, witnesses in findings}


def test_the_flags_list_each_entity_a_rule_may_fire_for(store):
    order = commit_order(store(EVENTS), Config())
    flagged = {entity: (repeats, not_newer) for entity, repeats, not_newer in order.execute(
        "SELECT entity, repeats_version, version_not_newer FROM entity_flags "
        "WHERE repeats_version OR version_not_newer").fetchall()}
    # every repeat, and the two whose distinct versions share a bit (65 = 1 + 64; more
    # than 64 versions), which version_conflict checks exactly and finds no fork in
    assert flagged == {"negative": (True, False), "long": (True, False),
                       "extreme": (True, False), "mixed": (True, False),
                       "one-write": (True, False), "apart": (True, False),
                       "stuck": (False, True)}
