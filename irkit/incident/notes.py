"""Notes: a step taken outside the kit (a manual restart, a phone call, a decision) put on the
incident's timeline, from the command line (`irkit incident note ID "text" [--at TIME]`) or from
the box a notebook shows (`section.note_widget()`).

A note is one line appended to the incident's journal, like what a JupyterLab session records:
nothing earlier is rewritten, and two notes written at once both land. Its text is redacted (a
password pasted with a command never reaches the record) and it names who wrote it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from irkit.errors import ConfigError
from irkit.incident import schema, store
from irkit.incident.log import JOURNAL, append_to_journal
from irkit.kernel import interactive
from irkit.result import utc_now
from irkit.secrets import redact

KIND = "note"
SOURCE = "irkit incident note"
# Enough for what was done and why; a pasted log belongs in a file the note names.
MAX_CHARS = 2000


def add(
    incident_id: str, text: str, *, at: str = "", by: str = "", folder: Path | None = None
) -> dict[str, Any]:
    """Put `text` on the timeline of `incident_id`: now, or at `at` (ISO-8601, UTC unless it
    says otherwise; never in the future). Returns the event as recorded. `folder` is the
    incident's as a notebook's kernel found it (see `store.folder_of_run`)."""
    if folder is None:
        folder = store.folder(incident_id)  # the id checked: no path leaves the incidents folder
    text = text.strip()
    if not text:
        raise ConfigError('a note needs its text: irkit incident note ID "restarted the worker"')
    if len(text) > MAX_CHARS:
        raise ConfigError(
            f"a note holds at most {MAX_CHARS} characters ({len(text)} given): put the rest in "
            "a file and name it in the note"
        )
    now = utc_now()
    when = schema.parse_time(schema.time_parameter("--at", at)) if at else None
    if when is not None and when > now:
        # A note tells what happened: a time still to come is a typo or a wrong zone.
        raise ConfigError(
            f"--at {schema.format_time(when)} is in the future (now {schema.format_time(now)}): "
            "give UTC, or add the zone, e.g. +01:00"
        )
    author = by.strip() or _user()
    event: dict[str, Any] = {
        "at": _stamp(when or now),
        "kind": KIND,
        "text": redact(f"note by {author}: {text}"),
        "source": SOURCE,
        "id": uuid.uuid4().hex,
        "data": {"by": redact(author)},
    }
    append_to_journal(folder / JOURNAL, {"at": _stamp(now), "event": event, "source": SOURCE})
    return event


def widget(incident_id: str, folder: Path | None = None) -> Any:
    """A text box and an "Add to timeline" button (JupyterLab); under papermill, where nobody
    can type, the command that does the same."""
    if not incident_id:
        return _Text(
            "Notes go on an incident's timeline: this run has no incident_id "
            '(open one with: irkit incident open --title "…").'
        )
    if not interactive():
        return _Text(
            "To put a step done outside the kit on the timeline (a manual restart, a call, a "
            f'decision): irkit incident note {incident_id} "what was done" [--at TIME]'
        )
    import ipywidgets as w  # type: ignore[import-untyped]

    box = w.Textarea(
        placeholder="What was done outside the kit, e.g. restarted celery-worker by hand",
        layout=w.Layout(width="60em", height="4em"),
    )
    box.add_class("irkit-note-text")
    button = w.Button(description="Add to timeline", button_style="info")
    button.add_class("irkit-note-add")
    out = w.Output()

    def click(_: Any) -> None:
        with out:
            out.clear_output()
            try:
                event = add(incident_id, box.value, folder=folder)
            except ConfigError as exc:
                print(f"Not added: {exc}")
                return
            except OSError as exc:
                print(f"Not added: the journal could not be written ({exc.strerror or exc})")
                return
            box.value = ""
            print(f"Added to the timeline at {event['at'][11:19]} UTC: {event['text']}")

    button.on_click(click)
    return w.VBox([w.HTML("<b>A step done outside the kit?</b>"), box, button, out])


class _Text:
    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/plain": self.text}


def _user() -> str:
    from irkit.actions.guard import who

    return who()


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
