"""Severity by the runbook's decision list (§2 Triage), first match wins, with each answer
inferred from the probes where it can be and overridable by the responder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from irkit.catalogue.parameters import default
from irkit.errors import ParameterError
from irkit.incident.schema import SEVERITIES, SEVERITY_NAMES
from irkit.result import Result, Status

# (key, the runbook's question, the answer that decides, the severity it gives)
QUESTIONS = (
    ("service_down", "Is the service down completely?", True, "P0"),
    ("users_can_login", "Can users log in?", False, "P0"),
    ("core_features_work", "Can users access core features (journal entry, reports)?", False, "P1"),
    ("one_tenant_only", "Is only one tenant affected?", True, "P2"),
    ("cosmetic_only", "Is it a UI cosmetic issue?", True, "P3"),
)
# When no question decides: something is degraded, but neither core nor cosmetic (runbook P2,
# "minor feature degraded").
FALLBACK = "P2"

ANSWERS = {"yes": True, "no": False, "": None}


@dataclass(frozen=True)
class Answer:
    key: str
    question: str
    value: bool | None
    source: str  # "responder", "inferred from <probe>: …", or "not known"

    @property
    def shown(self) -> str:
        return {True: "yes", False: "no", None: "?"}[self.value]


@dataclass(frozen=True)
class Decision:
    severity: str
    reason: str
    answers: tuple[Answer, ...]
    overridden: bool = False

    @property
    def label(self) -> str:
        return f"{self.severity} - {SEVERITY_NAMES[self.severity]}"

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "reason": self.reason,
            "overridden": self.overridden,
            "answers": [
                {"question": a.question, "answer": a.shown, "source": a.source}
                for a in self.answers
            ],
        }

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from irkit import escape

        rows = "".join(
            f"<tr><td>{n}.</td><td>{escape.html(a.question)}</td><td><b>{escape.html(a.shown)}</b></td>"
            f"<td>{escape.html(a.source)}</td></tr>"
            for n, a in enumerate(self.answers, 1)
        )
        html = (
            f"<p><b>Severity: {escape.html(self.label)}</b>: {escape.html(self.reason)}</p>"
            "<table><tr><th></th><th>question</th><th>answer</th><th>from</th></tr>"
            f"{rows}</table>"
        )
        text = "\n".join(
            [f"Severity: {self.label}: {self.reason}"]
            + [
                f"  {n}. {a.question} {a.shown}  ({a.source})"
                for n, a in enumerate(self.answers, 1)
            ]
        )
        return {"text/plain": text, "text/html": html}


def parse_answer(name: str, value: str) -> bool | None:
    try:
        return ANSWERS[value.strip().lower()]
    except KeyError:
        raise ParameterError(f"{name} must be yes, no or empty (infer it); got {value!r}") from None


def infer(
    results: Iterable[Result], *, login_path: str, core_paths: Iterable[str]
) -> dict[str, tuple[bool, str]]:
    """What the probes already tell: {question key: (answer, why)}."""
    by_probe: dict[str, Result] = {r.probe: r for r in results}
    inferred: dict[str, tuple[bool, str]] = {}
    health = by_probe.get("http.health")
    smoke = by_probe.get("http.smoke")
    down = [r for r in (health, smoke) if r is not None and r.evidence.get("reachable") is False]
    if down:
        inferred["service_down"] = (True, f"inferred from {down[0].probe}: {down[0].summary}")
    elif health is not None and health.status is not Status.UNKNOWN:
        inferred["service_down"] = (False, f"inferred from http.health: {health.summary}")
    if smoke is not None:
        rows = {r.get("path"): r for r in smoke.evidence.get("requests", [])}
        login = rows.get(login_path)
        if login is not None:
            verdict = "answers" if login.get("ok") else "FAILS"
            detail = login.get("status_code") or login.get("error")
            inferred["users_can_login"] = (
                bool(login.get("ok")),
                f"inferred from http.smoke: {login_path} {verdict} ({detail})",
            )
        core = [rows[p] for p in core_paths if p in rows]
        failing = [r for r in core if not r.get("ok")]
        if failing:
            inferred["core_features_work"] = (
                False,
                "inferred from http.smoke: "
                + ", ".join(
                    f"{r['path']} ({r.get('status_code') or r.get('error')})" for r in failing
                ),
            )
        elif core:
            inferred["core_features_work"] = (True, "inferred from http.smoke: core URLs answer")
    rate = by_probe.get("prometheus.query")
    if rate is not None and rate.status is Status.CRIT and "core_features_work" not in inferred:
        inferred["core_features_work"] = (False, f"inferred from prometheus.query: {rate.summary}")
    return inferred


def decide(
    results: Iterable[Result],
    responder: Mapping[str, bool | None] | None = None,
    *,
    override: str = "",
    login_path: str = default("web_login_path"),
    core_paths: Iterable[str] = (),
) -> Decision:
    """Walk the decision list. A responder's answer beats an inferred one; `override` (P0-P3)
    beats the list, and the record says so."""
    responder = responder or {}
    inferred = infer(results, login_path=login_path, core_paths=core_paths)
    answers = []
    for key, question, _, _ in QUESTIONS:
        given = responder.get(key)
        if given is not None:
            answers.append(Answer(key, question, given, "responder"))
        elif key in inferred:
            answers.append(Answer(key, question, *inferred[key]))
        else:
            answers.append(Answer(key, question, None, "not known: answer it"))
    if override:
        if override not in SEVERITIES:
            raise ParameterError(
                f"severity must be one of {', '.join(SEVERITIES)}; got {override!r}"
            )
        return Decision(override, "set by the responder", tuple(answers), overridden=True)
    unknown = []
    for (_, question, deciding, severity), answer in zip(QUESTIONS, answers, strict=True):
        if answer.value is deciding:
            return Decision(
                severity, f"{question} {answer.shown} ({answer.source})", tuple(answers)
            )
        if answer.value is None:
            unknown.append(question)
            if severity in ("P0", "P1"):
                # Cannot rule out the graver levels: assume the worse until a human answers.
                return Decision(
                    severity,
                    f"not yet known: {question} Assumed the worse until answered",
                    tuple(answers),
                )
    why = "no question decided" + (f" (not answered: {'; '.join(unknown)})" if unknown else "")
    return Decision(
        FALLBACK,
        f"{why}: P2, the runbook's level when nothing graver or cosmetic applies",
        tuple(answers),
    )
