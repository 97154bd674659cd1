"""Runbook Scenario 3's `docker system prune`: the engine's stopped containers and dangling
images, each listed with its size, removed one by one through the Engine API; unused volumes
only when `compose.prune_volumes` is allowed as well, for a volume holds data (a stopped
database's files, uploads) that no clean-up of space is worth by default.

Like `docker system prune`, it is the whole engine's, not only the project's: the plan says so.
At act time each item must still be what was planned (a container still stopped, an image still
dangling and unused, a volume still unused); a container started since is left alone, and one
created since was never planned. Each removal is read back: the engine no longer knows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from irkit import compose
from irkit.actions.guard import Item, Outcome, Plan, act_on, counted
from irkit.errors import IrkitError
from irkit.targets import ComposeTarget
from irkit.units import count, human_bytes

if TYPE_CHECKING:
    import docker

STOPPED = ("exited", "created", "dead")
VOLUMES_ACTION = "compose.prune_volumes"


class Prune:
    name = "compose.prune"

    def __init__(self, target: ComposeTarget, *, allow_actions: Sequence[str] = ()) -> None:
        self.target = target
        self.volumes_allowed = VOLUMES_ACTION in allow_actions

    def plan(self) -> Plan:
        with compose.engine(self.target) as client:
            api = client.api
            every = api.containers(all=True)
            stopped = api.containers(all=True, size=True, filters={"status": list(STOPPED)})
            dangling = api.images(filters={"dangling": True})
            unused = self._unused_volumes(client, every, {c["Id"] for c in stopped})
        going = {c["Id"] for c in stopped}
        items = [_container_item(c) for c in stopped]
        refused = []
        for image in dangling:
            users = [
                _name(c) for c in every if c["ImageID"] == image["Id"] and c["Id"] not in going
            ]
            if users:
                refused.append((_image_label(image), f"used by {', '.join(users)}"))
            else:
                items.append(_image_item(image))
        notes = [
            f"Scope: the whole Docker engine at {self.target.engine}, like docker system prune: "
            f"stopped containers and dangling images of every project, not only "
            f"{self.target.project or 'this one'}. Unused networks and the build cache are left "
            "alone."
        ]
        if self.volumes_allowed:
            items += [_volume_item(v) for v in unused]
            if unused:
                notes.append(
                    f"WARNING: {VOLUMES_ACTION} is allowed: unused volumes are deleted with "
                    "their data: " + "; ".join(_volume_label(v) for v in unused)
                )
        else:
            names = ", ".join(str(v["Name"]) for v in unused[:10])
            notes.append(
                "Volumes left out: pruning them deletes their data (a stopped database's files, "
                f"uploads); {count(len(unused), 'unused volume')} here"
                + (f" ({names})" if names else "")
                + f". To include them, add {VOLUMES_ACTION} to allow_actions as well."
            )
        # An image's size counts the layers it shares with others: what is freed may be less.
        size = sum(int(i.details.get("size") or 0) for i in items)
        kinds = [i.details["kind"] for i in items]
        what = (
            f"docker system prune{' --volumes' if self.volumes_allowed else ''}: remove "
            f"{count(kinds.count('container'), 'stopped container')}, "
            f"{count(kinds.count('image'), 'dangling image')}"
            + (f", {count(kinds.count('volume'), 'unused volume')}" if self.volumes_allowed else "")
            + f" (about {human_bytes(size)}), one by one through the Engine API"
        )
        return Plan(
            self.name, self.target.display, what, tuple(items), tuple(refused), notes=tuple(notes)
        )

    def _unused_volumes(
        self, client: docker.DockerClient, every: list[dict[str, Any]], going: set[str]
    ) -> list[dict[str, Any]]:
        """Volumes no container uses once the stopped ones are gone, with their size when the
        engine reports it (`docker system df -v`; only asked when volumes may go)."""
        users: dict[str, list[str]] = {}
        for c in every:
            for mount in c.get("Mounts") or []:
                if mount.get("Type") == "volume":
                    users.setdefault(str(mount.get("Name")), []).append(c["Id"])
        volumes = client.api.volumes().get("Volumes") or []
        unused = [v for v in volumes if set(users.get(v["Name"], [])) <= going]
        if self.volumes_allowed and unused:
            sizes = {
                v["Name"]: (v.get("UsageData") or {}).get("Size", -1)
                for v in client.api.df().get("Volumes") or []
            }
            for v in unused:
                v["Size"] = sizes.get(v["Name"], -1)
                v["UsedBy"] = [_user(c) for c in every if c["Id"] in users.get(v["Name"], [])]
        return sorted(unused, key=lambda v: str(v["Name"]))

    def act(self, plan: Plan) -> Outcome:
        with compose.engine(self.target) as client:
            done, skipped, failed = act_on(
                plan, lambda item: _changed(client, item), lambda item: _remove(client, item)
            )
        freed = sum(
            int(i.details.get("size") or 0)
            for i in plan.items
            if any(k == i.summary for k, _ in done)
        )
        summary = f"removed {len(done)} of {len(plan.items)} (about {human_bytes(freed)} freed)"
        return counted(self.name, plan, summary, done, skipped, failed, "changed since the plan")


def _changed(client: docker.DockerClient, item: Item) -> str | None:
    """Why the item is no longer what was planned, or None."""
    import docker

    kind, api = item.details["kind"], client.api
    try:
        if kind == "container":
            status = api.inspect_container(item.key)["State"]["Status"]
            return None if status in STOPPED else f"now {status}: left alone"
        if kind == "image":
            tags = [t for t in client.images.get(item.key).tags if t != "<none>:<none>"]
            if tags:
                return f"tagged since the plan ({', '.join(tags)})"
            users = [_name(c) for c in api.containers(all=True) if c["ImageID"] == item.key]
            return f"used by {', '.join(users)}" if users else None
        api.inspect_volume(item.key)
        users = [_name(c) for c in api.containers(all=True, filters={"volume": item.key})]
        return f"used by {', '.join(users)} since the plan" if users else None
    except docker.errors.NotFound:
        return "already gone"


def _remove(client: docker.DockerClient, item: Item) -> str:
    kind, api = item.details["kind"], client.api
    if kind == "container":
        api.remove_container(item.key)
    elif kind == "image":
        api.remove_image(item.key)
    else:
        api.remove_volume(item.key)
    if _known(client, kind, item.key):
        raise IrkitError(f"the engine still lists this {kind} after removing it")
    size = int(item.details.get("size") or 0)
    return f"removed ({human_bytes(size)})" if size > 0 else "removed"


def _known(client: docker.DockerClient, kind: str, key: str) -> bool:
    import docker

    try:
        if kind == "container":
            client.containers.get(key)
        elif kind == "image":
            client.images.get(key)
        else:
            client.volumes.get(key)
    except docker.errors.NotFound:
        return False
    return True


def _name(container: dict[str, Any]) -> str:
    names = container.get("Names") or [container["Id"][:12]]
    return str(names[0]).lstrip("/")


def _user(container: dict[str, Any]) -> str:
    service = (container.get("Labels") or {}).get(compose.SERVICE_LABEL)
    return _name(container) + (f" (service {service})" if service else "")


def _container_item(c: dict[str, Any]) -> Item:
    labels = c.get("Labels") or {}
    where = _compose_labels(labels)
    size = int(c.get("SizeRw") or 0)
    summary = f"container {_name(c)}{where}, {c.get('Status')}, {human_bytes(size)}"
    details = {"kind": "container", "name": _name(c), "image": c.get("Image"), "size": size}
    details |= {"status": c.get("State"), "project": labels.get(compose.PROJECT_LABEL, "")}
    return Item(str(c["Id"]), summary, details | {"service": labels.get(compose.SERVICE_LABEL, "")})


def _image_label(image: dict[str, Any]) -> str:
    return f"dangling image {str(image['Id']).removeprefix('sha256:')[:12]}"


def _image_item(image: dict[str, Any]) -> Item:
    size = int(image.get("Size") or 0)
    summary = f"{_image_label(image)}, {human_bytes(size)}"
    return Item(
        str(image["Id"]), summary, {"kind": "image", "size": size, "created": image.get("Created")}
    )


def _volume_label(v: dict[str, Any]) -> str:
    size = int(v.get("Size", -1))
    used = v.get("UsedBy") or []
    return (
        f"volume {v['Name']}{_compose_labels(v.get('Labels') or {})}, "
        + (human_bytes(size) if size >= 0 else "size not reported")
        + (f", was used by {', '.join(used)}" if used else "")
    )


def _volume_item(v: dict[str, Any]) -> Item:
    labels = v.get("Labels") or {}
    details = {"kind": "volume", "size": max(int(v.get("Size", -1)), 0), "driver": v.get("Driver")}
    details |= {"project": labels.get(compose.PROJECT_LABEL, ""), "used_by": v.get("UsedBy") or []}
    details["volume"] = labels.get("com.docker.compose.volume", "")
    return Item(str(v["Name"]), _volume_label(v), details)


def _compose_labels(labels: dict[str, Any]) -> str:
    project = labels.get(compose.PROJECT_LABEL)
    if not project:
        return ""
    service = labels.get(compose.SERVICE_LABEL) or labels.get("com.docker.compose.volume")
    return f" (project {project}" + (f", {service})" if service else ")")
