from __future__ import annotations

from irkit import probes
from irkit.advice import advise
from irkit.result import Result, Status


def result(probe: str, status: Status, **evidence: object) -> Result:
    return Result(probe=probe, target="t", status=status, summary="s", evidence=evidence)


def test_every_probe_that_can_fail_has_runbook_advice() -> None:
    # postgres.impact counts who is affected; it has no verdict to act on.
    without = {e.name for e in probes.catalogue() if e.advice is None}
    assert without == {"postgres.impact"}


def test_advice_uses_the_evidence() -> None:
    text = advise(
        result("postgres.long_queries", Status.CRIT, over_crit=3, rows=[{"pid": 41}, {"pid": 42}])
    )
    assert text is not None
    assert "3 queries older than the kill threshold (pids 41, 42)" in text
    assert "pg_terminate_backend" in text
    pool = advise(result("postgres.connect", Status.CRIT, pool_exhausted=True))
    assert pool is not None
    assert "Scenario 2" in pool


def test_ok_needs_no_advice_and_unknown_says_so() -> None:
    assert advise(result("redis.ping", Status.OK)) is None
    unknown = advise(result("redis.ping", Status.UNKNOWN))
    assert unknown is not None
    assert unknown.startswith("Could not tell")
    files = advise(result("disk.old_files", Status.OK, files=3, human="1.0 GiB"))
    assert files is not None
    assert "3 old files (1.0 GiB)" in files
