"""The responder's forms in JupyterLab (ipywidgets). Jupyter does not save a widget's state with
the notebook, so every choice made here is written to the incident's journal as it is made."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from irkit.incident import notify, severity
from irkit.incident.log import IncidentLog
from irkit.incident.messages import Message
from irkit.incident.schema import SEVERITIES
from irkit.kernel import interactive
from irkit.result import Result

_CHOICES = [("?", None), ("yes", True), ("no", False)]


def severity_form(
    log: IncidentLog,
    decision: severity.Decision,
    results: Sequence[Result],
    *,
    login_path: str,
    core_paths: Sequence[str],
) -> Any:
    """The decision list with each answer editable and a severity override; "Record severity"
    records the outcome. Returns the widget (None outside JupyterLab: papermill takes the
    answers as parameters)."""
    if not interactive():
        return None
    import ipywidgets as w  # type: ignore[import-untyped]

    questions = {}
    rows = []
    for answer in decision.answers:
        dropdown = w.Dropdown(
            options=_CHOICES,
            value=answer.value,
            description="",
            layout=w.Layout(width="6em"),
        )
        dropdown.add_class(f"irkit-answer-{answer.key}")
        questions[answer.key] = (dropdown, answer)
        rows.append(w.HBox([dropdown, w.Label(f"{answer.question}  ({answer.source})")]))
    override = w.Dropdown(
        options=[("by the decision list", ""), *[(s, s) for s in SEVERITIES]],
        value=decision.severity if decision.overridden else "",
        description="Severity",
    )
    override.add_class("irkit-severity-override")
    button = w.Button(description="Record severity", button_style="primary")
    button.add_class("irkit-record-severity")
    out = w.Output()

    def record(_: Any) -> None:
        answers = {
            key: dropdown.value
            for key, (dropdown, shown) in questions.items()
            if dropdown.value is not None
            and (shown.source == "responder" or dropdown.value != shown.value)
        }
        chosen = severity.decide(
            results,
            answers,
            override=override.value,
            login_path=login_path,
            core_paths=core_paths,
        )
        with out:
            out.clear_output()
            log.event(
                "severity-form",
                "responder answered the severity form: "
                + "; ".join(
                    f"{a.question} {a.shown}" for a in chosen.answers if a.source == "responder"
                )
                + (f"; override {override.value}" if override.value else ""),
            )
            log.update(
                f"severity form: {chosen.reason}",
                severity=chosen.severity,
                severity_source="responder",
            )
            print(f"Recorded: {chosen.label}, {chosen.reason}")

    button.on_click(_guarded(record, out))
    return w.VBox(
        [w.HTML("<b>Check or correct the answers, then record:</b>"), *rows, override, button, out]
    )


def send_button(label: str, send: Callable[[], object]) -> Any:
    """A button that posts a message when clicked (nothing is posted until then)."""
    if not interactive():
        return None
    import ipywidgets as w

    button = w.Button(description=label)
    button.add_class("irkit-send")
    out = w.Output()

    def click(_: Any) -> None:
        with out:
            out.clear_output()
            print(send())

    button.on_click(_guarded(click, out))
    return w.VBox([button, out])


def _guarded(handler: Callable[[Any], None], out: Any) -> Callable[[Any], None]:
    """A callback's exception would vanish into the browser console: show it in the form."""

    def run(event: Any) -> None:
        try:
            handler(event)
        except Exception as exc:
            with out:
                print(f"not recorded: {type(exc).__name__}: {exc}")

    return run


def post_or_offer(
    log: IncidentLog, message: Message, label: str, *, notify_now: bool, page_id: str, api: str
) -> list[Any]:
    """What follows a message: its delivery when posting was asked for; else, in JupyterLab, a
    button labelled `label` that posts it (nothing is posted until then)."""
    delivery = notify.send(log, message, notify=notify_now, page_id=page_id, api=api)
    if delivery is not None:
        return [delivery]
    button = send_button(
        label,
        lambda: notify.send(log, message, notify=True, page_id=page_id, api=api),
    )
    return [] if button is None else [button]
