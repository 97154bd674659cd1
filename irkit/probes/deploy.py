"""Recent deploys, from the deployed checkout's git history: the runbook's High CPU step

    git log --oneline -10
    docker-compose exec web git rev-parse HEAD

"Rollback recent deployment if spike coincides": the reflog says when this checkout last moved
to another commit (the deploy), which can be much later than the commit itself. For a Compose
deployment, what runs says it better than any checkout: the web service's image and when its
containers were created (irkit.probes.deploy_image). Both are read when both are configured, and
the more recent change decides.
"""

from __future__ import annotations

import time
from typing import Any

from irkit import programs
from irkit.errors import NotVisible, ParameterError
from irkit.probes import deploy_image
from irkit.probes.contract import Finding, probe
from irkit.result import Result, Status
from irkit.secrets import redact
from irkit.targets import RepoTarget
from irkit.units import human_age

_SEP = "\x1f"


def _git(target: RepoTarget, *args: str) -> str:
    try:
        done = programs.run(["git", "-C", target.path, *args], timeout_s=target.timeout_s)
    except programs.TimedOut as exc:
        raise NotVisible(f"git did not answer within {target.timeout_s:g} s") from exc
    if done.returncode != 0:
        reason = programs.tail(done.stderr, 300).strip().splitlines()
        raise NotVisible(f"git cannot read {target.path}: {reason[-1] if reason else 'failed'}")
    return done.stdout


def _deploy_recent(r: Result) -> str:
    return (
        "Runbook 'High CPU Alert': a deploy landed shortly before; if the alert began after it, "
        "roll it back (redeploy the previous commit, listed in the evidence) and watch the alert."
    )


@probe(
    "deploy.recent",
    measures=(
        "the deployed checkout's `git log -10` and when it last changed (its reflog: the deploy, "
        "not the commit); for a Compose project, the web service's image (built when, its "
        "revision label) and when its containers were created, and `git rev-parse HEAD` in its "
        "container with `deploy_git_revision`"
    ),
    grades='a change within {deploy_window_min}: WARN ("roll back if the alert began after it")',
    target="repo",
    thresholds={"window_min": "deploy_window_min"},
    needs=("deploy_repo", "compose_dir", "compose_files", "compose_project"),
    area="monitoring",
    advice=_deploy_recent,
)
def recent(target: RepoTarget, *, commits: int = 10, window_min: float) -> Finding:
    """What is deployed and when it last changed; WARN when that was less than `window_min`
    minutes ago (a deploy that may coincide with an alert)."""
    if not target.configured:
        raise ParameterError(f"no repository given: {target.hint}")
    if commits < 1 or window_min <= 0:
        raise ParameterError("deploy.recent needs commits >= 1 and a positive window_min")
    found = []
    if target.compose is not None:
        found.append(_from_image(target, window_min))
    if target.path:
        found.append(_from_checkout(target, commits, window_min))
    if len(found) == 1:
        return found[0]
    image, checkout = found
    return Finding(
        Status.worst([image.status, checkout.status]),
        f"{image.summary}; checkout: {checkout.summary}",
        {**checkout.evidence, "running": image.evidence},
    )


def _from_image(target: RepoTarget, window_min: float) -> Finding:
    assert target.compose is not None
    evidence = deploy_image.running(
        target.compose, target.web_service, git_revision=target.git_revision
    )
    evidence["window_min"] = window_min
    built = evidence["image_built_ago_s"]
    revision = (evidence.get("git_revision") or {}).get("commit") or evidence["revision"]
    said = [evidence["image_id"]]
    if built is not None:
        said.append(f"built {human_age(built)} ago")
    if revision:
        said.append(f"revision {revision[:12]}")
    summary = f"{target.web_service} runs {evidence['image']} ({', '.join(said)})"
    if len(evidence["images_running"]) > 1:
        summary += f", {len(evidence['images_running'])} images at once (a rollout under way?)"
    changed = evidence["changed_ago_s"]
    if changed is None:
        return Finding(Status.OK, summary, evidence)
    summary += f"; its containers were created {human_age(changed)} ago"
    return _judged(summary, changed, window_min, evidence)


def _judged(
    summary: str, changed_ago: float, window_min: float, evidence: dict[str, Any]
) -> Finding:
    if changed_ago < window_min * 60:
        return Finding(
            Status.WARN,
            summary + f" (within {window_min:g} min): if the alert began after it, the runbook "
            "says roll the deploy back",
            evidence,
        )
    return Finding(Status.OK, summary, evidence)


def _from_checkout(target: RepoTarget, commits: int, window_min: float) -> Finding:
    fields = _SEP.join(["%H", "%h", "%ct", "%an", "%s"])
    log = _git(target, "log", f"-{commits}", f"--format={fields}")
    now = time.time()
    rows: list[dict[str, Any]] = []
    for line in log.splitlines():
        full, short, committed, author, subject = (line.split(_SEP) + [""] * 5)[:5]
        rows.append(
            {
                "commit": short,
                "full": full,
                "committed_ago_s": round(now - int(committed or now)),
                "author": redact(author),
                "subject": redact(subject)[:200],
            }
        )
    if not rows:
        return Finding(Status.OK, "the repository has no commits yet", {"rows": []})
    # When HEAD last moved here (checkout, pull, reset): the deploy time, if the reflog is kept.
    moved = _git(target, "reflog", "-1", "--date=unix", "--format=%gd").strip()
    moved_at = int(moved[moved.find("{") + 1 : -1]) if moved.startswith("HEAD@{") else None
    head = rows[0]
    changed_ago = now - moved_at if moved_at else head["committed_ago_s"]
    evidence: dict[str, Any] = {
        "head": head["full"],
        "changed_ago_s": round(changed_ago),
        "changed_from": "reflog" if moved_at else "commit time",
        "window_min": window_min,
        "rows": rows,
    }
    summary = (
        f'HEAD {head["commit"]} "{head["subject"][:60]}" by {head["author"]}; this checkout '
        f"changed {human_age(changed_ago)} ago"
    )
    return _judged(summary, changed_ago, window_min, evidence)
