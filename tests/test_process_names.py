"""Processes named by what they are, from their command lines as /proc shows them."""

from __future__ import annotations

import pytest

from irkit.process_names import readable_name

PY = "/usr/local/bin/python3.11"


@pytest.mark.parametrize(
    ("name", "cmdline", "readable"),
    [
        ("python3.11", [PY, "-m", "gunicorn", "app.wsgi:application", "--bind", "x"], "gunicorn"),
        ("gunicorn", ["gunicorn: worker [himalytix-web]"], "gunicorn"),
        ("python3.11", [PY, "-m", "celery", "-A", "proj", "worker", "-c", "2"], "celery worker"),
        ("celery", ["/app/.venv/bin/celery", "-A", "proj", "beat"], "celery beat"),
        ("python3.11", [PY, "-m", "ipykernel_launcher", "-f", "/tmp/k.json"], "ipykernel"),
        ("python3.11", [PY, "/app/.venv/bin/irkit", "run", "db"], "irkit"),
        ("python3.11", [PY, "-m", "irkit", "health"], "irkit"),
        ("python3.11", [PY, "/app/.venv/bin/papermill", "in.ipynb", "out.ipynb"], "papermill"),
        ("python3.11", [PY, "-m", "irkit.drills.agent", "burn-cpu", "{}"], "irkit.drills.agent"),
        ("python3.11", [PY, "-X", "dev", "-m", "pytest", "-q"], "pytest"),
        ("python3", ["python3", "manage.py", "runserver"], "manage"),
        ("python3", ["python3", "-c", "while True: pass"], "python3"),
        ("python3", ["python3"], "python3"),
        ("redis-server", ["/usr/bin/redis-server 127.0.0.1:6379", "", ""], "redis-server"),
        ("postgres", ["postgres: 15/main: checkpointer "], "postgres"),
        ("kworker/0:1", [], "kworker/0:1"),
    ],
)
def test_readable_name(name: str, cmdline: list[str], readable: str) -> None:
    assert readable_name(name, cmdline) == readable
