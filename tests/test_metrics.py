"""The monthly analysis' numbers, from incident records whose expected values are worked out by
hand here (never by the code under test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from irkit.incident.load import Incident
from irkit.metrics import stats, table

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def incident(incident_id: str, **fields: Any) -> Incident:
    return Incident(incident_id=incident_id, folder=Path(incident_id), fields=fields)


def at(day: str, hhmm: str) -> str:
    return f"2026-{day}T{hhmm}:00Z"


def test_the_runbooks_example_incident() -> None:
    """Spike 14:33, alert 14:35, declared 14:37, restored 15:10, resolved 15:22."""
    example = incident(
        "EX", severity="P1", impact_started_at=at("11-03", "14:33"),
        detected_at=at("11-03", "14:35"), acknowledged_at=at("11-03", "14:37"),
        mitigated_at=at("11-03", "15:10"), resolved_at=at("11-03", "15:22"),
    )  # fmt: skip
    frame, problems = table.build([example], NOW)
    assert problems == []
    row = frame.iloc[0]
    assert row["month"] == "2026-11"
    assert (row["ttd_min"], row["tta_min"], row["ttm_min"], row["ttr_min"], row["impact_min"]) == (
        2.0, 2.0, 37.0, 47.0, 49.0)  # fmt: skip


def test_mean_median_p90_and_n_per_month_and_severity() -> None:
    base = [("A", 10), ("B", 20), ("C", 30), ("D", 100)]
    records = [
        incident(i, severity="P1", detected_at=at("11-02", "10:00"),
                 resolved_at=(datetime(2026, 11, 2, 10, tzinfo=UTC) + timedelta(minutes=m))
                 .isoformat())
        for i, m in base
    ] + [
        # A drill never counts, however long; an October incident is in its own month.
        incident("DRILL", severity="P1", drill=True, detected_at=at("11-05", "10:00"),
                 resolved_at=at("11-06", "10:00")),
        incident("OCT", severity="P1", detected_at=at("10-20", "10:00"),
                 resolved_at=at("10-20", "10:05")),
    ]  # fmt: skip
    frame, _ = table.build(records, NOW)
    ttr = stats.durations(frame).query("metric == 'ttr'").set_index(["month", "severity"])
    november = ttr.loc[("2026-11", "P1")]
    # 10, 20, 30, 100: mean 40; median (20+30)/2 = 25; p90 at position 0.9*3 = 2.7, so
    # 30 + 0.7*(100-30) = 79.
    assert november["n"] == 4
    assert november["mean"] == pytest.approx(40.0)
    assert november["median"] == pytest.approx(25.0)
    assert november["p90"] == pytest.approx(79.0)
    assert ttr.loc[("2026-10", "P1")]["n"] == 1
    assert ttr.loc[("2026-10", "P1")]["median"] == pytest.approx(5.0)
    # TTD has no impact start in these records: n is 0, not a made-up number.
    ttd = stats.durations(frame).query("metric == 'ttd' and month == '2026-11'")
    assert ttd["n"].tolist() == [0]
    assert ttd["median"].isna().all()


def test_impossible_and_missing_times_are_listed_not_counted() -> None:
    records = [
        incident("BACKWARDS", severity="P2", detected_at=at("11-10", "10:00"),
                 resolved_at=at("11-10", "09:00")),
        incident("NO-DETECTION", severity="P2", resolved_at=at("11-10", "09:00")),
    ]  # fmt: skip
    frame, problems = table.build(records, NOW)
    reasons = {(p.incident_id, p.reason) for p in problems}
    assert ("BACKWARDS", "resolved before detected: TTR left out") in reasons
    assert any(i == "NO-DETECTION" and "no detected_at" in r for i, r in reasons)
    assert pd.isna(frame.set_index("incident_id").loc["BACKWARDS", "ttr_min"])
    assert stats.real(frame)["incident_id"].tolist() == ["BACKWARDS"]


def test_sla_compliance_counts_met_breached_and_pending() -> None:
    records = [
        # P0 resolution target 2 h, response 15 min (both from detection).
        incident("MET", severity="P0", detected_at=at("11-03", "14:35"),
                 acknowledged_at=at("11-03", "14:37"), resolved_at=at("11-03", "15:22")),
        incident("LATE", severity="P0", detected_at=at("11-04", "10:00"),
                 acknowledged_at=at("11-04", "10:30"), resolved_at=at("11-04", "13:00")),
        # Open, detected 3 h before NOW: past 2 h, breached; 30 min before: still pending.
        incident("OPEN-LATE", severity="P0", detected_at=(NOW - timedelta(hours=3)).isoformat()),
        incident("OPEN-NEW", severity="P0", detected_at=(NOW - timedelta(minutes=10)).isoformat()),
    ]  # fmt: skip
    frame, _ = table.build(records, NOW)
    compliance = stats.sla_compliance(frame, NOW).set_index(["severity", "clock"])
    resolution = compliance.loc[("P0", "resolution")]
    assert (resolution["met"], resolution["breached"], resolution["pending"]) == (1, 2, 1)
    assert resolution["compliance_pct"] == pytest.approx(100 / 3)
    response = compliance.loc[("P0", "response")]
    # MET acknowledged in 2 min; LATE in 30 (over 15); OPEN-LATE never: breached; OPEN-NEW: 10
    # min in, pending.
    assert (response["met"], response["breached"], response["pending"]) == (1, 2, 1)


def test_repeats_within_90_days_and_action_items() -> None:
    records = [
        incident("R1", severity="P2", detected_at="2026-01-01T00:00:00Z", root_cause_key="pool"),
        incident("R2", severity="P2", detected_at="2026-01-31T00:00:00Z", root_cause_key="pool"),
        incident("R3", severity="P2", detected_at="2026-08-19T00:00:00Z", root_cause_key="pool",
                 action_items=[
                     {"action": "a", "owner": "o", "due": "2026-11-01", "priority": "P1"},
                     {"action": "b", "owner": "o", "due": "2026-12-31", "priority": "P2"},
                     {"action": "c", "owner": "o", "due": "2026-10-01", "done": True},
                 ]),
        incident("OTHER", severity="P2", detected_at="2026-02-01T00:00:00Z", root_cause_key="disk"),
    ]  # fmt: skip
    frame, _ = table.build(records, NOW)
    found = stats.repeats(frame)
    # R2 is 30 days after R1; R3 is 200 days after R2: not a repeat.
    assert found[["incident_id", "days_since_last"]].values.tolist() == [["R2", 30]]
    r3 = frame.set_index("incident_id").loc["R3"]
    assert (r3["actions_open"], r3["actions_overdue"], r3["actions_done"]) == (2, 1, 1)


# --- the command -----------------------------------------------------------------------------


def test_report_monthly_on_real_records_and_bad_input(tmp_path: Path) -> None:
    import json

    from tests.test_cli import irkit

    reports = tmp_path / "reports"
    for args in (
        ["--id", "EX1", "--severity", "P1", "--category", "database",
         "--impact-started-at", "2026-11-03T14:33:00Z", "--detected-at", "2026-11-03T14:35:00Z"],
        ["--id", "OCT", "--severity", "P2", "--detected-at", "2026-10-03T09:00:00Z"],
    ):  # fmt: skip
        opened = irkit("incident", "open", "--title", "t", "--not-a-drill", *args, reports=reports)
        assert opened.returncode == 0, opened.stderr
    done = irkit("report", "monthly", "--month", "2026-11", "--months", "3", reports=reports)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2026-11: 1 incident(s) (P1 1); 1 still open;")
    (path,) = (reports / "metrics").glob("*-metrics.ipynb")
    assert path.with_suffix(".html").exists()
    nb = json.loads(path.read_text())
    data = next(o["data"]["application/vnd.irkit.metrics+json"] for c in nb["cells"]
                for o in c.get("outputs", []) if "application/vnd.irkit.metrics+json" in
                o.get("data", {}))  # fmt: skip
    assert data["months"] == ["2026-09", "2026-10", "2026-11"]
    assert data["by_severity_month"] == {"2026-10/P2": 1, "2026-11/P1": 1}
    ttd = [r for r in data["durations"] if r["metric"] == "ttd" and r["month"] == "2026-11"]
    assert ttd == [{"month": "2026-11", "severity": "P1", "metric": "ttd", "n": 1, "mean": 2.0,
                    "median": 2.0, "p90": 2.0}]  # fmt: skip
    assert all(o.get("output_type") != "error" for c in nb["cells"]
               for o in c.get("outputs", []))  # fmt: skip

    empty = tmp_path / "empty"
    (empty / "incidents").mkdir(parents=True)
    nothing = irkit("report", "monthly", "--month", "2026-11", "--reports", str(empty),
                    reports=tmp_path / "out")  # fmt: skip
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout.startswith("No incidents in 2026-11")
    for args, message in (
        (["--month", "2026-13"], "month '2026-13': give it as YYYY-MM"),
        (["--month", "Nov"], "give it as YYYY-MM"),
        (["--months", "0"], "months must be at least 1"),
        (["--reports", str(tmp_path / "missing")], "no incident folder at"),
    ):
        bad = irkit("report", "monthly", *args, reports=tmp_path / "out")
        assert bad.returncode == 3
        assert message in bad.stderr
        assert "Traceback" not in bad.stderr


def test_the_index_reads_again_only_what_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from irkit.incident import store
    from irkit.metrics import index

    monkeypatch.setenv("IRKIT_REPORTS", str(tmp_path))
    root = store.incidents_dir()
    for n, detected in enumerate(("2026-11-01T10:00:00Z", "2026-11-02T10:00:00Z")):
        store.open_incident(f"t{n}", severity="P2", detected_at=schema_time(detected),
                            incident_id=f"I{n}")  # fmt: skip
    first, _ = index.load(root)
    assert [i.incident_id for i in first] == ["I0", "I1"]
    cache = json.loads((root / index.NAME).read_text())
    assert set(cache["incidents"]) == {"I0", "I1"}
    # A change to one record is seen; the other comes from the index unchanged.
    with (root / "I1" / "journal.jsonl").open("a") as f:
        resolved = {"resolved_at": "2026-11-02T11:00:00Z"}
        f.write(json.dumps({"at": "2026-11-02T11:00:00Z", "incident": resolved}) + "\n")
    second, _ = index.load(root)
    assert second[1].fields["resolved_at"] == "2026-11-02T11:00:00Z"
    assert second[0].fields == first[0].fields
    # A corrupt index is ignored and rebuilt; the records are never touched.
    (root / index.NAME).write_text("{not json")
    third, _ = index.load(root)
    assert [i.fields for i in third] == [i.fields for i in second]
    assert json.loads((root / index.NAME).read_text())["version"] == index.VERSION


def schema_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
