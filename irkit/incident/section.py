"""The Section a notebook creates (`irkit.Section`): the checks of `irkit.section.Section`, plus
the record this run writes (its incident's, when the notebook was given an `incident_id`), the
drill marking, and guarded mitigations recorded in that record.

It lives here, above both the checks and the mitigations, so that neither imports upward: the
section knows nothing of incidents, and actions record through any timeline they are handed.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irkit import section
from irkit.home import active_drills
from irkit.incident.log import IncidentLog

if TYPE_CHECKING:
    from irkit.actions.guard import Action
    from irkit.incident.load import Incident


class Section(section.Section):
    """Create one at the top of a notebook, right after its parameters:

        section = irkit.Section("db", globals())

    It checks the parameters (unknown names, wrong types) before any probe runs, applies a
    parameter file's `sections:` overrides when plain papermill injected them, and writes the
    checked values back into the notebook's namespace. `incident` is the record this run writes;
    a run during a practice drill is marked as one there."""

    def __init__(self, name: str, namespace: MutableMapping[str, Any]) -> None:
        super().__init__(name, namespace)
        self.incident = _incident_log(name, self.params.get("incident_id", ""))
        self.drills = active_drills()
        # An incident is a drill if it was opened during one: a drill started later does not
        # turn a real incident into a rehearsal.
        if self.drills and self.incident.fields.get("drill") is not False:
            _mark_as_drill(self.incident, self.drills)

    def record(self) -> Incident:
        """The incident so far, merged from its folder (empty without an incident)."""
        from irkit.incident import load

        if self.incident.folder is None:
            return load.Incident(incident_id="", folder=Path(), fields=dict(self.incident.changed))
        incident = load.load_folder(self.incident.folder)
        # What this run recorded and its notebook does not hold yet (it is written at the end).
        incident.fields.update(self.incident.changed)
        return incident

    def note_widget(self) -> Any:
        """A box to put a step done outside the kit on this incident's timeline (JupyterLab);
        under papermill, the `irkit incident note` command that does the same."""
        from irkit.incident import notes

        return notes.widget(self.incident.incident_id, self.incident.folder)

    def act(
        self,
        action: Action,
        *,
        when: section.Answers = (),
        allow_actions: Sequence[str] = (),
        confirmed_by: str = "",
    ) -> None:
        """A guarded mitigation: its plan shown and recorded; done only if named in
        `allow_actions` (papermill) or confirmed in the panel (JupyterLab).

        `when` names the findings it answers (probe names, see `irkit.section.Answers`): while
        they are OK it is not needed, and only says so; once it has changed something, they
        are measured again, and those verdicts replace the earlier ones."""
        from irkit.actions.guard import Outcome, guarded
        from irkit.render import show

        not_needed = self.not_needed(when) if when else None
        if not_needed:
            show([section.Said(f"{action.name} not needed: {not_needed}")])
            return

        def recheck(outcome: Outcome) -> list[Any]:
            if not outcome.changed:
                return []
            # Every verdict from here on was measured after this action (Result.after).
            self.after = action.name
            return self.recheck(section.findings(when))

        guarded(
            self.incident,
            action,
            allow_actions=allow_actions,
            confirmed_by=confirmed_by,
            then=recheck,
        )


def _incident_log(section: str, incident_id: str) -> IncidentLog:
    """The record this run writes to: an incident's when the notebook was given its id."""
    if not incident_id:
        return IncidentLog("", section)
    from irkit.incident import load, store

    folder = store.folder_of_run(incident_id)
    log = IncidentLog(incident_id, section, folder)
    log.fields = dict(load.load_folder(folder).fields)
    return log


def _mark_as_drill(log: IncidentLog, drills: list[str]) -> None:
    """A run during a drill is a rehearsal: its record says so, and the metrics leave it out."""
    text = (
        f"Drill in progress ({', '.join(drills)}): what this notebook finds was made on purpose "
        "on the practice stack, and its record is marked as a drill."
    )
    if log.fields.get("drills") != drills:
        log.event("drill", text)
    log.update(drill=True, drills=drills)
