"""Errors in the application's logs, grouped by exception type: the runbook's

    docker-compose logs web --since 30m | grep "ERROR" | awk '{print $NF}' | sort | uniq -c

done so that a traceback counts once, under the exception it ended with (its last line), and only
lines from the last N minutes count.

A log entry starts at a line carrying a timestamp; the lines after it without one (a traceback)
belong to it. An entry is an error when its level is ERROR, CRITICAL or FATAL, or when it holds a
traceback. Timestamps without a zone are read as this machine's local time, as `date` shows it.
"""

from __future__ import annotations

import glob
import itertools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from irkit import programs
from irkit.errors import NotVisible, ParameterError
from irkit.probes import compose_logs
from irkit.probes.contract import Finding, probe
from irkit.result import Result, Status, utc_now
from irkit.secrets import redact
from irkit.targets import LogSource
from irkit.units import count

# Read at most this much of the end of each file: a responder wants the last minutes, not a year.
MAX_BYTES_PER_FILE = 16 * 1024 * 1024
# And this much in all, shared by the files a glob matched, up to this many of them.
MAX_BYTES_IN_ALL = 64 * 1024 * 1024
MAX_FILES = 64
_SAMPLE_CHARS = 240

_TIMESTAMP = re.compile(
    r"^\W{0,2}(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?P<fraction>[.,]\d+)?"
    r"\s*(?P<zone>Z|[+-]\d{2}:?\d{2}|UTC)?\]?\s?"
)
# `docker compose logs` puts the container's name first: `web-1  | …`.
_CONTAINER = re.compile(r"^[\w.-]+\s*\|\s?")
_LEVEL = re.compile(r"\b(?:ERROR|CRITICAL|FATAL)\b|level=(?:error|critical|fatal)\b")
_TRACEBACK = "Traceback (most recent call last):"
# The last line of a Python traceback: `module.Type: message`, or the bare type.
_RAISED = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s|:$|$)")
# An exception named anywhere in a line without a traceback.
_NAMED = re.compile(r"\b(?P<type>(?:[a-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception))\b")
NO_TYPE = "(no exception type)"
# Lines of one traceback even when a log tool stamps each with a time.
_CHAINED = (
    _TRACEBACK,
    "During handling of the above exception",
    "The above exception was the direct cause",
)


@dataclass
class Entry:
    at: datetime | None
    # The entry's lines without container name or timestamp.
    lines: list[str] = field(default_factory=list)
    # Inside a traceback's frames: its next lines belong here whatever they carry.
    in_traceback: bool = False

    def add(self, text: str) -> None:
        self.lines.append(text)
        if _TRACEBACK in text:
            self.in_traceback = True
        elif self.in_traceback and text and not text[0].isspace():
            self.in_traceback = False  # the exception line ends the traceback

    @property
    def is_error(self) -> bool:
        head = self.lines[0] if self.lines else ""
        return bool(_LEVEL.search(head)) or any(_TRACEBACK in line for line in self.lines)

    @property
    def exception(self) -> str:
        raised = ""
        in_traceback = False
        for line in self.lines:
            if _TRACEBACK in line:
                in_traceback = True
                continue
            if in_traceback and line and not line[0].isspace():
                match = _RAISED.match(line.strip())
                raised = match["type"] if match else raised
                in_traceback = False
        if raised:
            return raised
        for line in self.lines:
            if match := _NAMED.search(line):
                return match["type"]
        return NO_TYPE


def split_line(line: str) -> tuple[datetime | None, str]:
    """A log line's time (UTC, or None) and its text without container name and timestamp."""
    text = _CONTAINER.sub("", line, count=1)
    match = _TIMESTAMP.match(text)
    if not match:
        return None, text
    fraction = (match["fraction"] or "").replace(",", ".")[:7]
    zone = match["zone"] or ""
    if zone in ("Z", "UTC"):
        zone = "+00:00"
    try:
        at = datetime.fromisoformat(f"{match['date']}T{match['time']}{fraction}{zone}")
    except ValueError:
        return None, text
    # No zone: this machine's local time.
    return (at.astimezone() if at.tzinfo is None else at), text[match.end() :]


def parse_time(line: str) -> datetime | None:
    return split_line(line)[0]


def entries(lines: Iterable[str]) -> Iterator[Entry]:
    current: Entry | None = None
    for raw in lines:
        at, text = split_line(raw.rstrip("\n"))
        # A new entry starts at a timestamp, unless we are inside a traceback's frames (with
        # `docker compose logs -t` every line carries one).
        # A blank line continues too: chained tracebacks are separated by one.
        continues = current is not None and (
            current.in_traceback or not text.strip() or text.startswith(_CHAINED)
        )
        starts = at is not None and not continues
        if starts or current is None:
            if current is not None:
                yield current
            current = Entry(at)
        current.add(text)
    if current is not None:
        yield current


def group(found: Iterable[Entry], since: datetime) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Errors since `since`, by exception type, most frequent first; and what was read."""
    groups: dict[str, dict[str, Any]] = {}
    seen = {"entries": 0, "undated": 0, "older": 0}
    for entry in found:
        seen["entries"] += 1
        if entry.at is None:
            seen["undated"] += 1
            continue
        if entry.at < since:
            seen["older"] += 1
            continue
        if not entry.is_error:
            continue
        kind = entry.exception
        at = entry.at.astimezone(since.tzinfo).isoformat(timespec="seconds")
        row = groups.setdefault(kind, {"type": kind, "count": 0, "first_at": at, "sample": ""})
        row["count"] += 1
        row["last_at"] = at
        if not row["sample"]:
            row["sample"] = _sample(entry)
    rows = sorted(groups.values(), key=lambda r: (-r["count"], r["type"]))
    return rows, seen


def _sample(entry: Entry) -> str:
    raised = next(
        (line for line in reversed(entry.lines) if line and not line[0].isspace()), entry.lines[0]
    )
    return redact(raised.strip())[:_SAMPLE_CHARS]


def _logs_errors(r: Result) -> str:
    top = (r.evidence.get("rows") or [{}])[0]
    return (
        f"Runbook 'High Error Rate Alert', errors by type: most are {top.get('type')} "
        f"({top.get('count')}, e.g. {top.get('sample')!r}). Read one whole traceback in the log, "
        "and check Sentry for the same type."
    )


@probe(
    "logs.errors",
    measures=(
        "the runbook's `logs web --since 30m \\| grep ERROR \\| … \\| uniq -c`: errors of the "
        "last {log_window_min} in `log_files` (globs), `log_command`'s output, or the Compose "
        "services' containers (`compose_log_services`, through the Engine API), grouped by the "
        "exception each traceback ended with, with a sample; only the last 16 MB of a file "
        "(or {compose_log_lines} lines of a service) are read"
    ),
    grades=(
        "informational (the error rate grades); UNKNOWN when the log cannot be read or carries "
        "no times"
    ),
    target="logs",
    thresholds={"window_min": "log_window_min"},
    needs=("log_files", "log_command", "compose_dir", "compose_files", "compose_project"),
    area="monitoring",
    advice=_logs_errors,
    advice_when_ok=True,
)
def errors(target: LogSource, *, window_min: float) -> Finding:
    """Errors in the last `window_min` minutes of the log, grouped by exception type."""
    if window_min <= 0:
        raise ParameterError(
            f"the log window must be a positive number of minutes, got {window_min:g}"
        )
    if not target.configured:
        raise ParameterError(f"no log source given: {target.hint}")
    since = utc_now() - timedelta(minutes=window_min)
    cut: list[str]
    cut_key = "read_only_the_last_mb_of"
    if target.command:
        texts, sources, cut = [_command_lines(target)], [target.display], []
    elif target.compose is not None and not target.files:
        # Only the window is asked of the engine; the cut names containers, not files.
        texts, sources, cut = compose_logs.read(
            target.compose, target.services, since, target.max_lines
        )
        cut_key = "read_only_the_last_lines_of"
    else:
        texts, sources, cut = _file_lines(target.files)
    # Each file on its own: a file's first lines never continue another file's last entry.
    rows, seen = group(itertools.chain.from_iterable(entries(t) for t in texts), since)
    total = sum(r["count"] for r in rows)
    evidence: dict[str, Any] = {
        "window_min": window_min,
        "total": total,
        "rows": rows,
        "sources": sources,
        cut_key: cut,
        **seen,
    }
    if seen["entries"] and seen["undated"] == seen["entries"]:
        return Finding(
            Status.UNKNOWN,
            f"no line of the log carries a timestamp, so the last {window_min:g} min cannot be "
            "told apart; use a log format with times (or a log command with --timestamps)",
            evidence,
        )
    if not rows:
        return Finding(Status.OK, f"no errors in the last {window_min:g} min", evidence)
    top = ", ".join(f"{r['type']} {r['count']}" for r in rows[:3])
    more = f" and {len(rows) - 3} more types" if len(rows) > 3 else ""
    summary = f"{count(total, 'error')} in the last {window_min:g} min: {top}{more}"
    # Informational: the error rate (prometheus.query) grades; this says which errors they are.
    return Finding(Status.OK, summary, evidence)


def _command_lines(target: LogSource) -> list[str]:
    try:
        done = programs.run(target.command, timeout_s=target.timeout_s)
    except programs.TimedOut as exc:
        raise NotVisible(
            f"the log command ran longer than {target.timeout_s:g} s and was stopped "
            "(use a command that ends, e.g. without --follow)"
        ) from exc
    if done.returncode != 0:
        raise NotVisible(
            f"the log command failed (exit code {done.returncode}): "
            f"{programs.tail(done.stderr or done.stdout, 300).strip()}"
        )
    # `docker compose logs` writes to stdout; other tools log to stderr.
    return (done.stdout + "\n" + done.stderr).splitlines()


def _file_lines(patterns: Iterable[str]) -> tuple[list[list[str]], list[str], list[str]]:
    paths: list[str] = []
    for pattern in patterns:
        matched = sorted(glob.glob(os.path.expanduser(pattern)))
        if not matched:
            raise NotVisible(f"no log file matches {pattern}")
        paths.extend(p for p in matched if os.path.isfile(p))
    paths = list(dict.fromkeys(paths))
    if len(paths) > MAX_FILES:
        raise NotVisible(
            f"{len(paths)} log files match; name at most {MAX_FILES} (the current logs, not "
            "their rotated copies)"
        )
    each = min(MAX_BYTES_PER_FILE, MAX_BYTES_IN_ALL // max(1, len(paths)))
    texts: list[list[str]] = []
    cut: list[str] = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                start = max(0, size - each)
                f.seek(start)
                data = f.read(each)  # a log written meanwhile grows no further here
        except OSError as exc:
            raise NotVisible(f"cannot read the log file {path}: {exc.strerror}") from None
        text = data.decode("utf-8", errors="replace").splitlines()
        if start:
            cut.append(path)
            text = text[1:]  # the first line read is likely cut in half
        texts.append(text)
    return texts, paths, cut
