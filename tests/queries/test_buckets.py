"""Entity buckets: every detector reads one entity's events only, so running the detectors
bucket by bucket (hash(entity) % buckets, queries/transitions.sql) and uniting the findings
gives exactly the findings of one run over the whole store. `check` relies on it to keep the
memory of a large check bounded."""

from __future__ import annotations

import pytest
from busy_histories import busy_history
from detect_histories import load, many_of_each

import queries.runner
from audit.config import Config
from collectors.store import open_store
from queries.commit_order import commit_order
from queries.runner import DETECTORS, check, detect


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    db = tmp_path_factory.mktemp("buckets") / "s.duckdb"
    load(db, many_of_each(12) + busy_history(blocks=60), seed=5)
    con = open_store(db, read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def whole(con):
    findings = check(con)
    assert {f.detector for f in findings} == set(DETECTORS)
    return findings


@pytest.mark.parametrize("buckets", [2, 3, 7])
def test_the_buckets_findings_add_up_to_the_whole_run(con, whole, buckets):
    parts = [
        detect(commit_order(con, Config(), suspects_only=True, buckets=buckets, bucket=k))
        for k in range(buckets)
    ]
    assert all(parts), "every bucket holds some findings: the buckets do split the store"
    united = [f.to_dict() for part in parts for f in part]
    assert sorted(united, key=repr) == sorted((f.to_dict() for f in whole), key=repr)


def test_check_works_bucket_by_bucket_on_a_large_store(con, whole, monkeypatch):
    """A store larger than one bucket: check goes through several, with the same findings
    in the same order."""
    [(events,)] = con.execute("SELECT count(*) FROM events").fetchall()
    monkeypatch.setattr(queries.runner, "EVENTS_PER_BUCKET", events // 4)
    built = []
    real = queries.runner.commit_order

    def counting(*args, **kwargs):
        built.append(kwargs["bucket"])
        return real(*args, **kwargs)

    monkeypatch.setattr(queries.runner, "commit_order", counting)
    assert [f.to_dict() for f in check(con)] == [f.to_dict() for f in whole]
    assert built == [0, 1, 2, 3, 4]
