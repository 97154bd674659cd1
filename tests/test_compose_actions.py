"""The container actions against a real Docker engine and real Compose projects: each changes
nothing unless allowed (read back from the engine), acts when allowed, and its result is read
back from the engine; what changed since the plan is left alone."""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Callable

import docker
import pytest

from irkit.actions import guard
from irkit.actions.containers import FakeMigration, InspectActive, Manage, Prune, Restart, Scale
from irkit.incident.log import IncidentLog
from irkit.targets import ComposeTarget
from tests.containers import BUSYBOX, ComposeProject

MANAGE = "irkit-test/manage:1"
# `python manage.py …` as far as the exec path needs it: one app's migrations, kept in /tmp,
# an unknown one refused as Django does; $SLOW_MIGRATE makes migrate outlive its timeout.
PYTHON = r"""#!/bin/sh
state=/tmp/applied
[ -f "$state" ] || echo 0001_initial > "$state"
applied() { while read -r seen; do [ "$seen" = "$1" ] && return 0; done < "$state"; return 1; }
shift
step=$1
shift
case "$step" in
showmigrations)
  echo accounting
  for m in 0001_initial 0002_invoice; do
    if applied "$m"; then echo " [X] $m"; else echo " [ ] $m"; fi
  done ;;
migrate)
  if [ "$1" = "--fake" ]; then
    if [ "$2" != accounting ] || { [ "$3" != 0001_initial ] && [ "$3" != 0002_invoice ]; }; then
      echo "CommandError: Cannot find a migration matching '$3' from app '$2'." >&2
      exit 1
    fi
    applied "$3" || echo "$3" >> "$state"
    echo "  Applying $2.$3... FAKED"
    exit 0
  fi
  echo "Operations to perform:"
  if [ -n "$SLOW_MIGRATE" ]; then sleep "$SLOW_MIGRATE"; fi
  for m in 0001_initial 0002_invoice; do
    applied "$m" || { echo "  Applying accounting.$m... OK"; echo "$m" >> "$state"; }
  done ;;
*) echo "Unknown command: '$step'" >&2; exit 1 ;;
esac
"""
CELERY = """#!/bin/sh
echo "->  celery@worker1: OK"
echo "    * {'id': 'f00d', 'name': 'reports.build', 'args': [], 'time_start': 1.0}"
"""
# Stops at once on SIGTERM (busybox's sleep as pid 1 would not).
SLEEPER = """["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]"""


def log() -> IncidentLog:
    return IncidentLog("", "test")


def build(client: docker.DockerClient, tag: str, dockerfile: str, files: dict[str, str]) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, text in {"Dockerfile": dockerfile, **files}.items():
            raw = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(raw), 0o755
            tar.addfile(info, io.BytesIO(raw))
    data.seek(0)
    client.images.build(fileobj=data, custom_context=True, tag=tag, rm=True)


@pytest.fixture
def manage_image(docker_client: docker.DockerClient) -> str:
    if not docker_client.images.list(name=MANAGE):
        dockerfile = f"FROM {BUSYBOX}\nCOPY python celery /usr/local/bin/\n"
        build(docker_client, MANAGE, dockerfile, {"python": PYTHON, "celery": CELERY})
    return MANAGE


def started(client: docker.DockerClient, project: ComposeProject, service: str) -> dict[str, str]:
    found = client.containers.list(
        all=True,
        filters={
            "label": [
                f"com.docker.compose.project={project.name}",
                f"com.docker.compose.service={service}",
            ]
        },
    )
    return {str(c.name): str(c.attrs["State"]["StartedAt"]) for c in found}


def running(client: docker.DockerClient, project: ComposeProject, service: str) -> int:
    found = client.containers.list(
        filters={
            "label": [
                f"com.docker.compose.project={project.name}",
                f"com.docker.compose.service={service}",
            ]
        }
    )
    return len(found)


def web_and_celery(image: str = BUSYBOX, env: str = "") -> str:
    return f"""
        version: "2.4"
        services:
          web:
            image: {image}
            command: {SLEEPER}
            network_mode: host
            {env}
          celery:
            image: {image}
            command: {SLEEPER}
            network_mode: host
        """


def test_restart_only_when_allowed_and_read_back_from_the_engine(
    compose_project: Callable[..., ComposeProject], docker_client: docker.DockerClient
) -> None:
    project = compose_project(web_and_celery())
    project.compose("up", "-d", "--scale", "web=2")
    docker_client.containers.get(f"{project.name}_web_2").stop(timeout=1)  # crashed, say
    before = started(docker_client, project, "web")
    celery = started(docker_client, project, "celery")
    action = Restart(project.target, "web", stop_timeout_s=2)
    assert action.name == "compose.restart_web"
    plan = action.plan()
    assert sorted(i.details["container"] for i in plan.items) == sorted(before)
    assert f"restart service web of project {project.name}: 2 containers" in plan.what
    assert all("POST /containers/" in i.summary for i in plan.items)
    assert plan.items[1].details["state"] == "exited (0)"
    assert guard.guarded(log(), action) is None  # a dry run
    assert started(docker_client, project, "web") == before  # read from the engine
    outcome = guard.guarded(log(), action, allow_actions=["compose.restart_web"])
    assert outcome is not None
    assert outcome.verdict == "DONE"
    assert outcome.changed
    assert all(r.startswith("running again, started ") for _, r in outcome.done)
    after = started(docker_client, project, "web")
    assert all(after[name] != before[name] for name in before)
    assert running(docker_client, project, "web") == 2
    assert started(docker_client, project, "celery") == celery  # another service: untouched


def test_restart_leaves_alone_a_container_gone_since_the_plan(
    compose_project: Callable[..., ComposeProject], docker_client: docker.DockerClient
) -> None:
    project = compose_project(web_and_celery())
    project.compose("up", "-d", "--scale", "web=2")
    action = Restart(project.target, "web", stop_timeout_s=1)
    plan = action.plan()
    project.compose("up", "-d", "--scale", "web=1")  # web_2 removed after the plan
    outcome = action.act(plan)
    assert outcome.verdict == "DONE"
    assert [r for _, r in outcome.skipped] == ["gone since the plan (removed or recreated)"]
    assert len(outcome.done) == 1


def test_scale_up_to_3_back_to_1_and_to_0_read_back_from_the_engine(
    compose_project: Callable[..., ComposeProject], docker_client: docker.DockerClient
) -> None:
    project = compose_project(web_and_celery())
    up = Scale(project.target, "web", to=3, timeout_s=120)
    plan = up.plan()
    assert plan.what.startswith(f"scale service web of project {project.name} from 1 to 3 ")
    assert "up -d --no-deps --no-recreate --scale web=3 web" in plan.what
    assert len(plan.items) == 2
    assert not plan.notes
    assert guard.guarded(log(), up) is None  # a dry run
    assert running(docker_client, project, "web") == 1
    outcome = guard.guarded(log(), up, allow_actions=["compose.scale_web"])
    assert outcome is not None
    assert outcome.verdict == "DONE", outcome
    assert outcome.summary == "web: 3 running (was 1, asked 3)"
    assert running(docker_client, project, "web") == 3
    assert running(docker_client, project, "celery") == 1
    back = Scale(project.target, "web", to=1, timeout_s=120)
    plan = back.plan()
    assert "from 3 to 1" in plan.what
    assert [i.summary for i in plan.items] == [
        f"stop and remove {project.name}_web_3",
        f"stop and remove {project.name}_web_2",
    ]
    outcome = back.act(plan)
    assert outcome.verdict == "DONE", outcome
    assert running(docker_client, project, "web") == 1
    assert Scale(project.target, "web", to=1).plan().what == (
        "web already runs 1 container: nothing to do"
    )
    zero = Scale(project.target, "web", to=0, timeout_s=120)
    plan = zero.plan()
    assert plan.notes[0].startswith("WARNING: scaling to 0 stops the service")
    assert "compose.scale_web is in allow_actions" in plan.notes[0]
    assert zero.act(plan).verdict == "DONE"
    assert running(docker_client, project, "web") == 0
    # Back from 0: no container is left to find the service by; Compose's own list has it.
    again = Scale(project.target, "web", to=1, timeout_s=120)
    assert again.act(again.plan()).summary == "web: 1 running (was 0, asked 1)"
    assert running(docker_client, project, "web") == 1


def test_scale_leaves_alone_a_service_scaled_since_the_plan(
    compose_project: Callable[..., ComposeProject], docker_client: docker.DockerClient
) -> None:
    project = compose_project(web_and_celery())
    action = Scale(project.target, "web", to=3, timeout_s=120)
    plan = action.plan()
    project.compose("up", "-d", "--scale", "web=2")
    outcome = action.act(plan)
    assert outcome.verdict == "NOT DONE"
    assert outcome.summary == "not run: web now runs 2 containers, not the 1 the plan was made for"
    assert running(docker_client, project, "web") == 2


def test_errors_at_the_boundary_are_named_never_a_traceback(
    compose_project: Callable[..., ComposeProject], capsys: pytest.CaptureFixture[str]
) -> None:
    project = compose_project(web_and_celery())
    assert "no container of service 'nginx'" in Restart(project.target, "nginx").plan().what
    assert "its services: celery, web" in Restart(project.target, "nginx").plan().what
    scale = Scale(project.target, "nginx", to=2, timeout_s=60).plan()
    assert scale.items == ()
    assert "no service 'nginx'" in scale.what
    other = ComposeTarget(project="nosuch", docker_host=project.target.docker_host)
    assert f"the projects on this engine: {project.name}" in Manage(other).plan().what
    nowhere = ComposeTarget(project="x", docker_host="unix:///nonexistent/docker.sock")
    capsys.readouterr()
    assert guard.guarded(log(), Prune(nowhere), allow_actions=["compose.prune"]) is None
    shown = capsys.readouterr().out
    assert "compose.prune: no plan could be made: no Docker engine here" in shown
    assert "Traceback" not in shown
    migrate = Manage(project.target, "web", "migrate")
    plan = migrate.plan()
    project.compose("stop", "-t", "1", "web")
    outcome = migrate.act(plan)
    assert outcome.verdict == "NOT DONE"
    assert outcome.summary.startswith(f"not run: {project.name}_web_1 is exited (")
    assert outcome.summary.endswith(") since the plan")
    stopped = migrate.plan()
    assert stopped.items == ()
    assert f"no running container of web to run it in ({project.name}_web_1 exited" in stopped.what


def test_manage_py_in_the_web_container_bounded_with_its_output_recorded(
    compose_project: Callable[..., ComposeProject], manage_image: str
) -> None:
    project = compose_project(web_and_celery(manage_image, "environment: {SLOW_MIGRATE: ''}"))
    show = Manage(project.target, "web", "showmigrations", timeout_s=60)
    plan = show.plan()
    assert plan.items[0].summary == (
        f"in {project.name}_web_1 (service web, --index 1): python manage.py showmigrations"
    )
    assert plan.what.startswith("Incident 1: manage.py showmigrations: docker-compose ")
    assert plan.what.endswith("exec -T --index 1 web python manage.py showmigrations")
    outcome = guard.guarded(log(), show, allow_actions=["compose.showmigrations"])
    assert outcome is not None
    assert outcome.read_only
    assert not outcome.changed
    assert "[ ] 0002_invoice" in outcome.done[0][1]
    unnamed = FakeMigration(project.target, "web", "").plan()
    assert unnamed.items == ()
    assert "name the migration to mark as applied in pg_fake_migration" in unnamed.what
    bad = FakeMigration(project.target, "web", "accounting.0009_missing", timeout_s=60)
    outcome = guard.guarded(log(), bad, allow_actions=["compose.migrate_fake"])
    assert outcome is not None
    assert outcome.verdict == "FAILED"
    assert (
        "exit code 1: CommandError: Cannot find a migration matching '0009_missing'"
        in (outcome.failed[0][1])
    )
    fake = FakeMigration(project.target, "web", "accounting.0002_invoice", timeout_s=60)
    assert guard.guarded(log(), fake) is None  # a dry run: still unapplied
    assert "[ ] 0002_invoice" in show.act(show.plan()).done[0][1]
    outcome = guard.guarded(log(), fake, allow_actions=["compose.migrate_fake"])
    assert outcome is not None
    assert outcome.verdict == "DONE"
    assert outcome.changed
    assert "Applying accounting.0002_invoice... FAKED" in outcome.done[0][1]
    assert outcome.done[0][1].endswith("read back (showmigrations accounting): [X] 0002_invoice")
    migrate = Manage(project.target, "web", "migrate", timeout_s=60)
    outcome = migrate.act(migrate.plan())
    assert outcome.done[0][1].endswith("read back (showmigrations): every migration applied")


def test_a_command_that_outlives_its_timeout_is_stopped_with_its_output_so_far(
    compose_project: Callable[..., ComposeProject], manage_image: str
) -> None:
    project = compose_project(web_and_celery(manage_image, "environment: {SLOW_MIGRATE: '60'}"))
    migrate = Manage(project.target, "web", "migrate", timeout_s=3)
    outcome = migrate.act(migrate.plan())
    assert outcome.verdict == "FAILED"
    assert outcome.failed[0][1].startswith("still running after 3 s: stopped; output so far: ")
    assert "Operations to perform:" in outcome.failed[0][1]


def test_inspect_active_in_the_worker_container(
    compose_project: Callable[..., ComposeProject], manage_image: str
) -> None:
    project = compose_project(web_and_celery(manage_image))
    inspect = InspectActive(project.target, "celery", "dashboard", timeout_s=60)
    plan = inspect.plan()
    assert plan.what.endswith("exec -T --index 1 celery celery -A dashboard inspect active")
    outcome = guard.guarded(log(), inspect, allow_actions=["compose.inspect_active"])
    assert outcome is not None
    assert outcome.read_only
    assert outcome.verdict == "DONE"
    assert "'name': 'reports.build'" in outcome.done[0][1]


def dangling_image(client: docker.DockerClient) -> str:
    """An image left without a tag: built, then its tag given to another build."""
    tag = f"irkit-test/dangle:{uuid.uuid4().hex[:8]}"
    build(client, tag, f"FROM {BUSYBOX}\nLABEL n=1\n", {})
    first = str(client.images.get(tag).id)
    build(client, tag, f"FROM {BUSYBOX}\nLABEL n=2\n", {})
    client.images.remove(tag)
    return first


def exists(client: docker.DockerClient, kind: str, key: str) -> bool:
    try:
        getattr(client, kind).get(key)
    except docker.errors.NotFound:
        return False
    return True


def test_prune_removes_what_it_planned_and_volumes_only_when_allowed_apart(
    compose_project: Callable[..., ComposeProject], docker_client: docker.DockerClient
) -> None:
    project = compose_project(
        f"""
        version: "2.4"
        services:
          web:
            image: {BUSYBOX}
            command: {SLEEPER}
            network_mode: host
          db:
            image: {BUSYBOX}
            command: {SLEEPER}
            network_mode: host
            volumes: ["data:/data"]
          job:
            image: {BUSYBOX}
            command: {SLEEPER}
            network_mode: host
        volumes:
          data: {{}}
        """
    )
    project.compose("stop", "-t", "1", "db", "job")
    db, job = (f"{project.name}_{s}_1" for s in ("db", "job"))
    volume = f"{project.name}_data"
    image = dangling_image(docker_client)
    prune = Prune(project.target, allow_actions=["compose.prune"])
    plan = prune.plan()
    keys = {i.details.get("name") or i.key: i for i in plan.items}
    assert {db, job, image} <= set(keys)
    assert volume not in keys
    assert f"container {db} (project {project.name}, db), Exited (" in keys[db].summary
    assert keys[image].summary.startswith(f"dangling image {image.removeprefix('sha256:')[:12]}, ")
    assert plan.notes[0].startswith("Scope: the whole Docker engine at unix://")
    assert "Volumes left out" in plan.notes[1]
    assert volume in plan.notes[1]
    assert "add compose.prune_volumes to allow_actions" in plan.notes[1]
    assert guard.guarded(log(), prune) is None  # a dry run: nothing removed
    assert exists(docker_client, "containers", db)
    assert exists(docker_client, "images", image)
    # After the plan: job started again, and a container made that the plan never saw.
    project.compose("start", "job")
    later = docker_client.containers.create(BUSYBOX, ["true"], network_mode="host")
    outcome = prune.act(plan)
    assert outcome.verdict == "DONE", outcome
    assert (keys[job].summary, "now running: left alone") in outcome.skipped
    assert not exists(docker_client, "containers", db)
    assert not exists(docker_client, "images", image)
    assert exists(docker_client, "containers", job)
    assert exists(docker_client, "containers", str(later.id))
    assert exists(docker_client, "volumes", volume)  # not allowed apart: kept
    later.remove()
    both = ["compose.prune", "compose.prune_volumes"]
    with_volumes = Prune(project.target, allow_actions=both)
    plan = with_volumes.plan()
    assert plan.what.startswith("docker system prune --volumes: ")
    item = next(i for i in plan.items if i.key == volume)
    assert item.details["project"] == project.name
    assert item.details["volume"] == "data"
    assert plan.notes[1].startswith("WARNING: ")
    assert volume in plan.notes[1]
    outcome = guard.guarded(log(), with_volumes, allow_actions=both)
    assert outcome is not None
    assert outcome.verdict == "DONE", outcome
    assert not exists(docker_client, "volumes", volume)


def test_compose_action_names_pass_the_parameter_check() -> None:
    from irkit.actions import catalogue
    from irkit.errors import ParameterError

    names = ["compose.restart_web", "compose.restart_beat-1", "compose.scale_celery"]
    catalogue.check_parameters({"allow_actions": [*names, "compose.prune_volumes"]})
    with pytest.raises(ParameterError, match=r"did you mean 'compose\.prune'"):
        catalogue.check_parameters({"allow_actions": ["compose.prunne"]})
    with pytest.raises(ParameterError, match="compose_scale_to must be 0 or more"):
        catalogue.check_parameters({"compose_scale_to": -1})
