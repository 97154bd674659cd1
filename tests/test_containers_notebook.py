"""The containers notebook, run by papermill against a real Docker engine and a real Compose
project; and on a machine without Docker, where it says so in one verdict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from irkit import compose
from irkit.probes import compose as compose_probes
from irkit.result import Status
from irkit.targets import ComposeTarget
from tests.containers import BUSYBOX, ComposeProject
from tests.helpers import ROOT, run_notebook

NOTEBOOK = ROOT / "notebooks" / "containers.ipynb"

HEALTHY = f"""
version: "2.4"
x-service: &service
  image: {BUSYBOX}
  network_mode: host
  restart: unless-stopped
  mem_limit: 64m
  cpus: 0.5
services:
  web:
    <<: *service
    command: ["sh", "-c", "while :; do echo \\"$$(date -u +%FT%T) INFO served\\"; sleep 1; done"]
    healthcheck: {{test: ["CMD", "true"], interval: 1s, retries: 1}}
  celery:
    <<: *service
    command: ["sleep", "100000"]
  redis:
    <<: *service
    command: ["sleep", "100000"]
"""


def parameters(project: ComposeProject, **extra: object) -> dict[str, object]:
    return {
        "compose_dir": str(project.folder),
        "compose_project": project.name,
        "docker_host": project.engine.url,
        # The project was made a moment ago: a deploy that recent is WARN, as it should be.
        "deploy_window_min": 0.01,
        **extra,
    }


def test_a_healthy_project_is_judged_ok_check_by_check(
    compose_project: Callable[..., ComposeProject], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project = compose_project(HEALTHY)
    compose_probes.services(project.target)  # waits for nothing: the health check may start
    record = run_notebook(NOTEBOOK, tmp_path, **parameters(project))
    assert record.complete, record.error
    results = {r.probe: r for r in record.results}
    assert list(results) == ["compose.services", "compose.stats", "logs.errors", "deploy.recent"]
    services = results["compose.services"]
    assert services.status in (Status.OK, Status.WARN), services.summary
    if services.status is Status.WARN:  # web's first health check had not passed yet
        assert "starting" in services.summary
    assert results["compose.stats"].status is Status.OK, results["compose.stats"].summary
    assert results["logs.errors"].status is Status.OK, results["logs.errors"].summary
    assert results["deploy.recent"].status is Status.OK, results["deploy.recent"].summary
    # Nothing to mend: every step says so in a line, and nothing was measured again.
    assert record.status in (Status.OK, Status.WARN)


def test_without_docker_the_notebook_says_so_in_one_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel without the docker package (as on a machine where it was never installed):
    the first check says so, and nothing after it repeats it."""
    hide = tmp_path / "no-docker"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['docker'] = None\n")
    monkeypatch.setenv("PYTHONPATH", str(hide))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    record = run_notebook(NOTEBOOK, tmp_path, compose_project="himalytix")
    assert record.complete, record.error
    assert [(r.probe, r.status) for r in record.results] == [
        ("compose.services", Status.UNKNOWN)
    ], [str(r) for r in record.results]
    assert "docker Python package is not installed" in record.results[0].summary


def test_no_engine_where_docker_would_be_is_no_docker_not_an_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compose, "DEFAULT_SOCKET", str(tmp_path / "docker.sock"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    result = compose_probes.services(ComposeTarget(project="himalytix"), expected=["web"])
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith("no Docker here: no engine at ")
    assert result.evidence["docker"] == "absent"
    # An engine named and not answering is an outage: CRIT.
    named = ComposeTarget(project="himalytix", docker_host=f"unix://{tmp_path}/other.sock")
    down = compose_probes.services(named, expected=["web"])
    assert down.status is Status.CRIT
    assert down.evidence["reachable"] is False


def test_the_engines_only_project_is_found_when_none_is_named(
    compose_project: Callable[..., ComposeProject],
) -> None:
    project = compose_project(HEALTHY)
    unnamed = ComposeTarget(docker_host=project.engine.url, discover=True)
    result = compose_probes.services(unnamed)
    # Other tests of this worker may have a project up too: then it is named, not guessed.
    if len(result.evidence.get("projects", [project.name])) > 1:
        assert "no Compose project named" in result.summary
        assert project.name in result.summary
    else:
        assert {r["service"] for r in result.evidence["services"]} == {"web", "celery", "redis"}
