"""What a Compose deployment runs, for `deploy.recent`: the web service's image (when it was built,
from which revision, by its OCI or label-schema labels), when its containers were (re)created
(the deploy), and, when asked, the runbook's `docker-compose exec web git rev-parse HEAD`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from irkit import compose as project
from irkit.errors import NotVisible
from irkit.probes import container_state
from irkit.targets import ComposeTarget

if TYPE_CHECKING:
    from docker.models.containers import Container

# The labels a build puts on an image to say what it was built from, newest convention first.
REVISION_LABELS = ("org.opencontainers.image.revision", "org.label-schema.vcs-ref")
CREATED_LABELS = ("org.opencontainers.image.created", "org.label-schema.build-date")
VERSION_LABELS = ("org.opencontainers.image.version", "org.label-schema.version")
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")


def running(target: ComposeTarget, service: str, *, git_revision: bool) -> dict[str, Any]:
    """The web service's image and containers, as evidence; `changed_ago_s` is the age of its
    newest container (a deploy recreates them; a restart does not)."""
    now = container_state.now_utc()
    with project.engine(target) as client:
        found = project.containers(client, target)
        if not found:
            raise project.no_such_project(client, target)
        seen = project.by_service(found)
        members = seen.get(service)
        if not members:
            raise NotVisible(
                f"no container of service {service} in compose project {target.project} (its "
                f"services: {', '.join(sorted(seen))}); set compose_web_service"
            )
        newest = max(members, key=lambda c: str(c.attrs.get("Created", "")))
        image = client.images.get(newest.attrs["Image"])
        rows = [_container(service, c, now) for c in members]
        revision = _git_revision(members) if git_revision else None
    labels = {**(newest.attrs.get("Config", {}).get("Labels") or {})}
    labels.update((image.attrs.get("Config") or {}).get("Labels") or {})
    built = container_state.parse_time(_first(labels, CREATED_LABELS) or image.attrs.get("Created"))
    created = container_state.parse_time(newest.attrs.get("Created"))
    evidence: dict[str, Any] = {
        "service": service,
        "image": newest.attrs.get("Config", {}).get("Image", ""),
        "image_id": str(image.id).removeprefix("sha256:")[:12],
        "image_tags": list(image.tags),
        "image_built_at": built.isoformat() if built else None,
        "image_built_ago_s": round((now - built).total_seconds()) if built else None,
        "revision": _first(labels, REVISION_LABELS),
        "version": _first(labels, VERSION_LABELS),
        "labels": {
            k: v
            for k, v in labels.items()
            if k.startswith(("org.opencontainers.", "org.label-schema."))
        },
        "containers": rows,
        "images_running": sorted({r["image_id"] for r in rows}),
        "changed_ago_s": round((now - created).total_seconds()) if created else None,
        "changed_from": "containers created",
    }
    if revision is not None:
        evidence["git_revision"] = revision
    return evidence


def _container(service: str, container: Container, now: Any) -> dict[str, Any]:
    attrs = container.attrs
    created = container_state.parse_time(attrs.get("Created"))
    return {
        "name": f"{service}-{project.number_of(container)}",
        "state": (attrs.get("State") or {}).get("Status"),
        "created_at": created.isoformat() if created else None,
        "created_ago_s": round((now - created).total_seconds()) if created else None,
        "image_id": str(attrs.get("Image", "")).removeprefix("sha256:")[:12],
    }


def _git_revision(members: list[Container]) -> dict[str, Any]:
    """`git rev-parse HEAD` in the first running container; bounded by the client's timeout."""
    up = [c for c in members if (c.attrs.get("State") or {}).get("Status") == "running"]
    if not up:
        return {"error": "no running container to ask"}
    try:
        code, output = up[0].exec_run(["git", "rev-parse", "HEAD"], stdout=True, stderr=True)
    except Exception as exc:  # the engine refused the exec, or it outlived the timeout
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}
    raw = output if isinstance(output, bytes) else b"".join(output or ())
    text = raw.decode("utf-8", errors="replace").strip()
    if code != 0 or not _COMMIT.match(text):
        return {"error": f"git rev-parse HEAD failed (exit code {code}): {text[:160]}"}
    return {"commit": text, "container": up[0].name}


def _first(labels: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((labels[n] for n in names if labels.get(n)), None)
