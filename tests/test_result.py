from __future__ import annotations

from datetime import UTC, datetime

from irkit.result import RESULT_MIME, Result, Results, Status


def make(status: Status = Status.OK, summary: str = "fine", **evidence: object) -> Result:
    return Result(
        probe="postgres.connections",
        target="postgresql://erp@db:5432/himalytix",
        status=status,
        summary=summary,
        evidence=evidence,
        elapsed_ms=12.345,
        at=datetime(2026, 11, 27, 14, 35, tzinfo=UTC),
    )


def test_json_round_trip_keeps_every_field() -> None:
    result = make(Status.WARN, rows=[{"pid": 1}], used=14)
    data = result.to_json()
    assert data == {
        "probe": "postgres.connections",
        "target": "postgresql://erp@db:5432/himalytix",
        "status": "WARN",
        "summary": "fine",
        "evidence": {"rows": [{"pid": 1}], "used": 14},
        "elapsed_ms": 12.3,
        "at": "2026-11-27T14:35:00Z",
    }
    assert Result.from_json(data).to_json() == data


def test_a_verdict_measured_after_an_action_names_it_in_its_json_and_text() -> None:
    data = {**make().to_json(), "after": "postgres.terminate"}
    result = Result.from_json(data)
    assert result.after == "postgres.terminate"
    assert result.to_json() == data
    assert str(result).endswith("fine (after postgres.terminate)")
    assert "(after postgres.terminate)" in result._repr_mimebundle_()["text/html"]
    assert "after" not in make().to_json()  # only when set: older readers see no change


def test_display_carries_html_text_and_json() -> None:
    bundle = make(Status.CRIT, "pool <exhausted>")._repr_mimebundle_()
    assert bundle[RESULT_MIME]["status"] == "CRIT"
    assert "CRIT" in bundle["text/plain"]
    assert "pool &lt;exhausted&gt;" in bundle["text/html"]  # escaped
    assert "#b71c1c" in bundle["text/html"]  # coloured by status


def test_evidence_rows_render_as_a_table() -> None:
    html = make(rows=[{"pid": 7, "query": "<script>"}])._repr_mimebundle_()["text/html"]
    assert '<th style="text-align:left">pid</th>' in html
    assert "&lt;script&gt;" in html
    assert "<script>" not in html


def test_several_results_carry_a_list_of_objects() -> None:
    results = Results([make(Status.OK), make(Status.WARN)])
    bundle = results._repr_mimebundle_()
    assert [r["status"] for r in bundle[RESULT_MIME]] == ["OK", "WARN"]
    assert results.status is Status.WARN


def test_worst_status_ranks_crit_over_warn_over_unknown_over_ok() -> None:
    worst = Status.worst
    assert worst([]) is Status.OK
    assert worst([Status.OK, Status.UNKNOWN]) is Status.UNKNOWN
    assert worst([Status.UNKNOWN, Status.WARN]) is Status.WARN
    assert worst([Status.WARN, Status.CRIT, Status.UNKNOWN]) is Status.CRIT
    assert [s.exit_code for s in Status] == [0, 1, 2, 3]
