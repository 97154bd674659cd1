"""The receiver: Alertmanager's webhook over HTTP (Starlette on uvicorn), a bounded spool in
front of a fixed number of workers.

    POST /alertmanager   a version-4 notification: 200 once it is on disk; 401 without the
                         token, 400 naming what is malformed, 413 too large, 503 + Retry-After
                         while the spool is full (Alertmanager sends it again)
    GET  /healthz        the receiver's own liveness, with what waits and what runs
    GET  /               the recent intakes, newest first
"""

from __future__ import annotations

import collections
import hmac
import json
import os
import queue
import sys
import threading
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from irkit import escape
from irkit.intake import alertmanager
from irkit.intake.handle import Intake
from irkit.intake.spool import Entry, Full
from irkit.secrets import scrub

# Alertmanager sends every alert of a group in one body; thousands of alerts stay under this.
MAX_BODY = 4 << 20
RETRY_AFTER_S = 30
RECENT = 30


class Receiver:
    def __init__(self, intake: Intake, *, token: str, workers: int) -> None:
        self.intake = intake
        self.spool = intake.spool
        self.token = token
        self.workers = workers
        self._queue: queue.Queue[Entry | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._groups: dict[str, collections.deque[Entry]] = {}
        self.resumed = 0

    # --- the workers -----------------------------------------------------------------------

    def start(self) -> None:
        """Take up what a previous receiver left unfinished, then start the workers."""
        for entry in self.spool.pending():
            self._queue.put(entry)
            self.resumed += 1
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"intake-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _work(self) -> None:
        while (entry := self._queue.get()) is not None:
            # One group's notifications in the order they came: a worker handling the group
            # takes this one after its own (a resolution never overtakes its firing).
            group = str(entry.body.get("groupKey", ""))
            with self._busy_lock:
                if group in self._groups:
                    self._groups[group].append(entry)
                    continue
                self._groups[group] = collections.deque([entry])
            while True:
                with self._busy_lock:
                    if not self._groups[group]:
                        del self._groups[group]
                        break
                    entry = self._groups[group].popleft()
                self._handle(entry)

    def _handle(self, entry: Entry) -> None:
        with self._busy_lock:
            self._busy += 1
        try:
            outcome = self.intake.handle(entry)
            print(f"irkit listen: {entry.id}: {outcome}", flush=True)
        except Exception as exc:  # one notification must not stop the others
            # Left pending: the next start takes it up again, and says why it stopped here.
            reason = scrub(f"{type(exc).__name__}: {exc}")
            print(f"irkit listen: {entry.id} not finished: {reason}", file=sys.stderr)
            if os.environ.get("IRKIT_DEBUG"):
                traceback.print_exc(file=sys.stderr)
            entry.progress["error"] = reason[:500]
            self.spool.save(entry)
        finally:
            with self._busy_lock:
                self._busy -= 1

    # --- HTTP ------------------------------------------------------------------------------

    def app(self) -> Starlette:
        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            self.start()
            yield
            self.stop()

        return Starlette(
            routes=[
                Route("/alertmanager", self.receive, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/", self.status_page, methods=["GET"]),
            ],
            lifespan=lifespan,
        )

    def _authorized(self, request: Request) -> bool:
        if not self.token:
            return True  # --insecure-loopback
        given = request.headers.get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), self.token.encode()
        )

    async def receive(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            return _error(413, f"the body is over {MAX_BODY} bytes")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                return _error(413, f"the body is over {MAX_BODY} bytes")
        try:
            notification = alertmanager.parse(bytes(raw))
        except alertmanager.PayloadError as exc:
            return _error(400, str(exc))
        try:
            entry = self.spool.accept(json.loads(raw), bytes(raw))
        except Full:
            return _error(
                503,
                f"{self.spool.capacity} alert groups are waiting (alert_queue_size): "
                f"send again in {RETRY_AFTER_S} s",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        except OSError as exc:
            # Not on disk, so not acknowledged: Alertmanager will send it again.
            return _error(503, f"could not keep the notification: {exc.strerror or exc}")
        self._queue.put(entry)
        return JSONResponse(
            {"status": "accepted", "id": entry.id, "alert": notification.name}, status_code=200
        )

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "waiting": self.spool.waiting, "running": self._busy})

    async def status_page(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        rows = []
        for entry in self.spool.recent(RECENT):
            body = entry.body
            name = (body.get("groupLabels") or {}).get("alertname") or (
                (body.get("commonLabels") or {}).get("alertname", "")
            )
            state = entry.outcome or entry.progress.get("error") or "waiting or running"
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{escape.html(value)}</td>"
                    for value in (
                        entry.received_at,
                        body.get("status", ""),
                        name,
                        entry.progress.get("incident", ""),
                        state,
                    )
                )
                + "</tr>"
            )
        html = (
            "<!doctype html><meta charset=utf-8><title>irkit listen</title>"
            f"<h1>irkit listen</h1><p>{self.spool.waiting} waiting, {self._busy} running</p>"
            "<table><tr><th>received</th><th>status</th><th>alert</th><th>incident</th>"
            "<th>outcome</th></tr>" + "".join(rows) + "</table>"
        )
        return HTMLResponse(html)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"status": "error", "error": message}, status_code=status, headers=headers)


def serve(receiver: Receiver, host: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        receiver.app(),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()
