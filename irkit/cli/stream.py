"""What a terminal shows while a notebook runs: each verdict the moment the kernel sends it, with
the time since the command started; the plans and outcomes of guarded actions; notices a
responder must see (an incident NOT resolved); and, at the end, the section's verdict and next
steps in the runbook's words.

    1.3s  OK      postgres.connect  connected in 12 ms
    2.0s  PLAN    postgres.terminate on postgresql://erp@db/himalytix: terminate 3 backends
                    - pid 4242 (himalytix-web, idle in transaction for 6 min)
    2.1s  DONE    postgres.terminate: terminated 3 of 3
    2.2s  OK      postgres.connections  12 of 97 slots in use (after postgres.terminate)

Everything shown is read from the outputs' irkit MIME types, never from their text. Colours only
on a terminal: a cron mail or a pipe gets plain lines, each written as it comes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TextIO

from irkit import escape
from irkit.result import (
    ACTION_MIME,
    EVENT_MIME,
    NEXT_STEPS_MIME,
    NOTICE_MIME,
    RESULT_MIME,
    Result,
    Status,
)
from irkit.secrets import redact

# Timeline events worth a responder's eye as they happen; the rest is the record's.
NOTABLE_EVENTS = frozenset({"drill", "mitigated", "message-failed", "page-failed"})
# ANSI colours of the status word, on a terminal only.
_COLOURS = {
    "OK": "32",
    "WARN": "33",
    "CRIT": "31",
    "UNKNOWN": "35",
    "FAILED": "31",
    "DONE": "32",
    "PARTLY DONE": "33",
    "NOT DONE": "33",
}
# Under the elapsed time and the status word: where an item's detail lines start.
_INDENT = " " * 16


class Stream:
    """Called with each notebook output as it arrives (irkit.runner.execute's `on_output`)."""

    def __init__(self, out: TextIO, *, started: float | None = None, colour: bool = False) -> None:
        self.out = out
        self.started = time.monotonic() if started is None else started
        self.colour = colour
        self.verdicts = 0

    def __call__(self, output: Mapping[str, Any]) -> None:
        data = output.get("data")
        if not isinstance(data, Mapping):
            return
        lines: list[str] = []
        if RESULT_MIME in data:
            lines += self._results(data[RESULT_MIME])
        if ACTION_MIME in data:
            lines += self._action(data[ACTION_MIME])
        if NOTICE_MIME in data:
            lines += self._notice(data[NOTICE_MIME])
        if EVENT_MIME in data:
            lines += self._event(data[EVENT_MIME])
        if NEXT_STEPS_MIME in data:
            lines += self._next_steps(data[NEXT_STEPS_MIME])
        if lines:
            # Whatever a notebook quotes (a query text, a remote error) is on one line, redacted.
            self.out.write("".join(redact(line) + "\n" for line in lines))
            self.out.flush()

    def _line(self, word: str, text: str) -> str:
        elapsed = f"{time.monotonic() - self.started:5.1f}s"
        padded = f"{word:<7}"
        if self.colour and word in _COLOURS:
            padded = f"\x1b[{_COLOURS[word]}m{word}\x1b[0m" + " " * (7 - len(word))
        return f"{elapsed}  {padded} {escape.one_line(text)}"

    def _detail(self, text: str) -> str:
        return f"{_INDENT}{escape.one_line(text)}"

    def _results(self, payload: Any) -> list[str]:
        items = payload if isinstance(payload, list) else [payload]
        lines = []
        for item in items:
            try:
                result = Result.from_json(item)
            except (KeyError, ValueError, TypeError, AttributeError):
                continue
            self.verdicts += 1
            text = f"{result.probe}  {result.summary}{result.after_note}"
            lines.append(self._line(result.status.name, text))
        return lines

    def _action(self, action: Any) -> list[str]:
        if not isinstance(action, Mapping):
            return []
        kind, name = action.get("kind"), str(action.get("action", ""))
        if kind == "plan":
            items = [i for i in action.get("items") or [] if isinstance(i, Mapping)]
            refused = [r for r in action.get("refused") or [] if isinstance(r, Mapping)]
            head = f"{name} on {action.get('target', '')}: {action.get('what', '')}"
            lines = [self._line("PLAN", head + ("" if items else " (nothing to do)"))]
            lines += [self._detail(f"- {i.get('summary', i.get('key', ''))}") for i in items]
            lines += [self._detail(f"refused: {r.get('item')}: {r.get('why')}") for r in refused]
            lines += [self._detail(str(note)) for note in action.get("notes") or []]
            return lines
        if kind == "outcome":
            failed = action.get("failed") or []
            # DONE, FAILED, PARTLY DONE or NOT DONE, as the outcome judged itself.
            word = str(
                action.get("verdict") or ("FAILED" if failed and not action.get("done") else "DONE")
            )
            lines = [self._line(word, f"{name}: {action.get('summary', '')}")]
            for key, label in (("failed", "FAILED"), ("skipped", "skipped")):
                lines += [
                    self._detail(f"{label}: {i.get('item')}: {i.get('why')}")
                    for i in action.get(key) or []
                    if isinstance(i, Mapping)
                ]
            return lines
        if kind == "dry-run":
            return [
                self._line("DRY RUN", f"{name}: nothing was changed"),
                self._detail(f"to act: -p 'allow_actions=[\"{name}\"]'"),
            ]
        return [self._line("NO PLAN", str(action.get("text", "")))]

    def _notice(self, notice: Any) -> list[str]:
        if not isinstance(notice, Mapping):
            return []
        return [self._line(str(notice.get("status", "")), str(notice.get("text", "")))]

    def _event(self, event: Any) -> list[str]:
        if not isinstance(event, Mapping) or event.get("kind") not in NOTABLE_EVENTS:
            return []
        return [self._line("NOTE", str(event.get("text", "")))]

    def _next_steps(self, steps: Any) -> list[str]:
        if not isinstance(steps, Mapping):
            return []
        status = str(steps.get("status", ""))
        word = status if status in Status.__members__ else "NEXT"
        lines = [self._line(word, f"{steps.get('headline', '')}")]
        for step in steps.get("steps") or []:
            if isinstance(step, Mapping):
                lines.append(self._detail(f"next: {step.get('probe')}: {step.get('step')}"))
        return lines
