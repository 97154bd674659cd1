"""The incident record: what one incident's executed notebooks say, merged.

An incident is a folder `reports/incidents/<id>/` holding its executed notebooks in run order
(`01-triage.ipynb`, `02-db.ipynb`, …), a journal of what was chosen in widgets, and at the end
`postmortem.md`. Notebooks write the record as display outputs (`result.INCIDENT_MIME`,
`result.EVENT_MIME`); `load` merges them.
"""
