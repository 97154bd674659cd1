"""What the containers notebook's checks add to papermill, on a Compose project of 10 containers.

    .venv/bin/python benchmarks/bench_containers.py [--runs 7]

Needs Docker (Debian's docker.io and docker-compose, which `./kit test` installs) and root: it
starts a Docker engine of its own in a temporary folder (irkit.sandbox.engine), imports a busybox
image and brings up a 10-container project (web scaled to 3, celery to 2, five more services;
memory and CPU limits, health checks, a restart policy). Then, alternating the two commands:

1. `papermill` executing an empty notebook (the baseline: kernel start and save);
2. `irkit run containers` against the project (services, stats, logs and the running image),

and prints both medians, their difference and ratio, and the time papermill recorded for the
notebook's check cells. Target: the checks add <= 0.5 s to papermill's empty-notebook time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import docker
from bench_run import BIN, medians_of, papermill_empty

from irkit import records
from irkit.sandbox import busybox
from irkit.sandbox.engine import DockerEngine

ADDED_TARGET_S = 0.5
PROJECT = "benchten"

# Ten containers: web scaled to 3 and celery to 2, and five services of one container each.
COMPOSE = """\
version: "2.4"
x-service: &service
  image: {image}
  network_mode: host
  restart: unless-stopped
  mem_limit: 64m
  cpus: 0.5
  command: ["sh", "-c", "while :; do echo \\"$$(date) INFO still here\\"; sleep 1; done"]
services:
  web: *service
  celery: *service
  db: *service
  redis: *service
  prometheus: *service
  nginx: *service
  beat:
    <<: *service
    healthcheck: {{test: ["CMD", "true"], interval: 1s, retries: 1}}
"""


def bring_up(engine: DockerEngine, folder: Path) -> list[str]:
    client = docker.DockerClient(base_url=engine.url)
    try:
        image = busybox.import_image(client)
    finally:
        client.close()
    folder.mkdir(parents=True)
    (folder / "docker-compose.yml").write_text(COMPOSE.format(image=image))
    env = {**os.environ, "DOCKER_HOST": engine.url}
    subprocess.run(
        ["docker-compose", "--project-name", PROJECT, "up", "--detach",
         "--scale", "web=3", "--scale", "celery=2"],
        cwd=folder, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return [
        f"compose_dir={folder}",
        f"compose_project={PROJECT}",
        f"docker_host={engine.url}",
        "compose_log_services=[web, celery]",
        # Made a moment ago: a deploy that recent is WARN, and the command's exit code with it.
        "deploy_window_min=0.01",
    ]


def cell_seconds(notebook: Path) -> list[tuple[float, str]]:
    """Each code cell's time as papermill recorded it, with its first line."""
    cells = json.loads(notebook.read_text())["cells"]
    return [
        (float(cell["metadata"].get("papermill", {}).get("duration") or 0.0),
         "".join(cell["source"]).strip().splitlines()[0][:60])
        for cell in cells
        if cell["cell_type"] == "code" and cell["source"]
    ]  # fmt: skip


def check_seconds(notebook: Path) -> float:
    """What papermill recorded for the cells that run a check (`section.check(`)."""
    cells = json.loads(notebook.read_text())["cells"]
    return sum(
        float(cell["metadata"].get("papermill", {}).get("duration") or 0.0)
        for cell in cells
        if cell["cell_type"] == "code" and "section.check(" in "".join(cell["source"])
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="command runs per median")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="irkit-bench-"))
    engine = DockerEngine(work / "docker")
    reports = work / "reports"
    try:
        engine.start()
        values = bring_up(engine, work / "project")
        pairs = [arg for v in values for arg in ("-p", v)]

        def irkit_containers(i: int) -> list[str]:
            return [str(BIN / "irkit"), "run", "containers", *pairs]

        env = {**os.environ, "IRKIT_REPORTS": str(reports)}
        baseline, containers = medians_of(args.runs, papermill_empty(work), irkit_containers, env)
        runs = sorted((reports / "runs").glob("*-containers.ipynb"))
        checks = statistics.median(check_seconds(path) for path in runs)
        statuses = {records.read(path).status.name for path in runs}
        slowest = sorted(cell_seconds(runs[-1]), reverse=True)[:6]
    finally:
        engine.stop()
        shutil.rmtree(work, ignore_errors=True)

    added = containers - baseline
    runs_said = f"(median of {args.runs})"
    print(f"papermill, empty notebook          {baseline * 1000:8.0f} ms  {runs_said}")
    print(f"irkit run containers, 10 containers {containers * 1000:7.0f} ms  {runs_said}")
    print(f"ratio                              {containers / baseline:8.2f}")
    verdict = "meets" if added <= ADDED_TARGET_S else "MISSES"
    print(f"added by irkit run containers      {added * 1000:8.0f} ms  {verdict} target <= "
          f"{ADDED_TARGET_S * 1000:.0f} ms")  # fmt: skip
    print(f"of which the check cells           {checks * 1000:8.0f} ms  (papermill's cell times)")
    print(f"verdicts of the runs               {', '.join(sorted(statuses))}")
    print("slowest cells of the last run:")
    for seconds, first_line in slowest:
        print(f"  {seconds * 1000:6.0f} ms  {first_line}")
    return 0 if added <= ADDED_TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
