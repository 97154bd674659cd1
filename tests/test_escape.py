"""Text from the record and from outside the team shown as text, never as structure or code:
in postmortem.md, in the HTML copies, in notebook outputs and in what is posted to Slack.

The hostile values come from each place such text enters: parameters (title, root cause, …), a
health endpoint's component text and Prometheus' alerts (a local HTTP server that answers as they
do), a log line, and a remote service's error text (the Slack webhook answering 500)."""

from __future__ import annotations

import json
import re
import shlex
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nbformat
import pytest
from bs4 import BeautifulSoup
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from irkit import escape
from irkit.health import charts, notice
from irkit.incident import load, messages, postmortem, resolve, triage
from irkit.result import Result, Status
from irkit.sandbox.stack import Stack
from tests.helpers import health_reports, healthy, irkit, run_health

SCRIPT = "<script>alert('xss-script')</script>"
IMG = "<img src=x onerror=\"alert('xss-img')\">"
SVG = "<svg onload=\"alert('xss-svg')\">"
LINK = "[click](javascript:alert('xss-link'))"
IMAGE = "![pixel](http://127.0.0.1:9/xss-image.png)"
HEADING = "# INJECTED-HEADING"
ROW = "| INJECTED-ROW | x |"
# What would page a channel or plant a disguised link in Slack.
SLACKY = "<!channel> <http://127.0.0.1:9/xss|click here> *bold* & co"
# What would clear a terminal (or a cron mail read in one).
CLEAR = "\x1b[2J\x1b[H"


def hostile(name: str) -> str:
    """A value holding every trick, with line breaks that would start a heading and a row."""
    return f"{name} {SCRIPT} {IMG} {SVG} {LINK} {IMAGE} a|b{CLEAR}\n{HEADING}\n{ROW}\n{SLACKY}"


# --- what counts as live ---------------------------------------------------------------------

_DANGEROUS = {"script", "img", "svg", "iframe", "object", "embed", "style", "link", "meta", "base"}


def live(html: str) -> list[str]:
    """What a hostile value turned into in `html`: elements, handlers or links it planted, and
    headings or table rows it started. The page's own scripts (nbconvert's) carry no marker."""
    soup = BeautifulSoup(html, "html.parser")
    found = []
    for tag in soup.find_all(True):
        # A chart's base64 picture may hold "xss" by chance: pictures are the kit's own.
        values = {
            name: " ".join(value) if isinstance(value, list) else str(value)
            for name, value in tag.attrs.items()
        }
        planted = [v for v in values.values() if "xss" in v and not v.startswith("data:")]
        if tag.name in _DANGEROUS and (planted or "xss" in tag.get_text()):
            found.append(str(tag)[:120])
        for name, text in values.items():
            if name.startswith("on") and "xss" in text:
                found.append(f"{tag.name} {name}={text[:80]}")
            if name == "src" and text in planted:
                found.append(f"{tag.name} {name}={text[:80]}")
            # A bare web address may be made a link (the reader sees where it goes); any other
            # link from a value is planted: another scheme, or a text that hides its target.
            visible = tag.get_text().strip() == text
            if (
                name == "href"
                and not text.startswith("#")
                and not (text.startswith(("http://", "https://")) and visible)
            ):
                found.append(f"{tag.name} {name}={text[:80]}")
        if re.fullmatch(r"h[1-6]", tag.name) and tag.get_text().strip().startswith("INJECTED"):
            found.append(f"heading {tag.get_text()[:80]}")
        if tag.name in ("td", "th") and tag.get_text().strip() == "INJECTED-ROW":
            found.append("table row INJECTED-ROW")
    return found


def markdown_live(markdown: str) -> list[str]:
    """The same for Markdown, rendered as the HTML copies render it (nbconvert's renderer), and
    read as text: no line a value started as a heading or table row."""
    lines = [
        line
        for line in markdown.splitlines()
        if re.match(r"\s*(#{1,6}\s*INJECTED|\|\s*INJECTED-ROW)", line)
    ]
    return lines + live(markdown2html_mistune(markdown))


def notebook_live(path: Path) -> list[str]:
    """Every rich output of an executed notebook, as a browser (HTML) or Jupyter (Markdown)
    would show it."""
    found = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data:
                found += live(data["text/html"])
            if "text/markdown" in data:
                found += markdown_live(data["text/markdown"])
    return [f"{path.name}: {f}" for f in found]


def test_the_checks_see_what_they_look_for() -> None:
    raw = "\n\n".join([SCRIPT, IMG, SVG, LINK, IMAGE, HEADING, "| a | b |\n|---|---|\n" + ROW])
    found = " ".join(markdown_live(raw))
    for planted in ("script", "img", "svg", "javascript:", "xss-image", "heading", "INJECTED-ROW"):
        assert planted in found


def test_the_escapes_one_by_one() -> None:
    assert escape.slack("<!channel> & <@U1> *b*") == "&lt;!channel&gt; &amp; &lt;@U1&gt; *b*"
    assert escape.one_line("a\r\nb\u2028c\x00d\x1b[1m") == "a b cd[1m"
    # Bidirectional overrides and zero-width characters: nothing may reorder or hide text.
    assert escape.one_line("ok\u202e1 TIRC\u202c \u200bx\u2066y\u2069\ufeff") == "ok1 TIRC xy"
    # Intraword `_` stays: identifiers read as they are.
    assert escape.markdown("1. max_connections _x_ ~$5") == r"1\. max_connections \_x\_ \~\$5"
    assert escape.markdown("see https://a.test/x") == r"see https\://a.test/x"
    # Only what could open something: "R&D > 5%" stays as it reads.
    assert escape.markdown("> R&D > 5% &lt; <b>") == r"\> R&D > 5% &amp;lt; &lt;b>"
    assert escape.html("<a href='x'>") == "&lt;a href=&#x27;x&#x27;&gt;"
    assert escape.code_fence("a ```` b").splitlines()[0] == "`````"
    assert escape.chart("$x$") == r"\$x\$"
    assert escape.link_target(" JavaScript:alert(1)") is None
    assert escape.link_target("https://grafana.test/d/1") == "https://grafana.test/d/1"


# --- the postmortem --------------------------------------------------------------------------

FIELDS: dict[str, Any] = {
    "title": hostile("title"),
    "responder": hostile("responder"),
    "impact": hostile("impact"),
    "root_cause": hostile("root cause"),
    "resolution": hostile("resolution"),
    "detection_source": hostile("detection source"),
    "revenue_impact": hostile("revenue"),
    "detection_review": hostile("review"),
    "users_affected": hostile("users"),
    "tenants_affected": hostile("tenants"),
    "severity": "P1",
    "action_items": [
        {
            "action": hostile("action"),
            "owner": hostile("owner"),
            "due": "2026-12-01",
            "priority": "P1",
            "done": False,
        },
    ],
    "lessons": {
        "went_well": [hostile("well")],
        "went_wrong": [hostile("wrong")],
        "lucky": [hostile("lucky")],
    },
    "follow_up": [hostile("follow")],
}


def test_the_postmortem_shows_hostile_values_as_text(tmp_path: Path) -> None:
    event = {"at": "2026-11-30T10:00:00Z", "kind": "message-failed", "text": hostile("event")}
    incident = load.Incident("X", tmp_path, fields=FIELDS, timeline=[event])
    text = postmortem.build(incident).markdown
    assert markdown_live(text) == []
    # One line per value: the title is the heading, and no value adds a row to a table.
    assert text.splitlines()[0].startswith("# Postmortem: title &lt;script>")
    assert [line for line in text.splitlines() if line.startswith("# ")] == [text.splitlines()[0]]
    tables = [line for line in text.splitlines() if line.startswith("|")]
    assert len(tables) == 2 + 1 + 2 + 1  # timeline: head, rule, 1 event; actions: head, rule, 1
    # As many cells in every row as in its table's head: a `|` from a value is escaped.
    cells = [len(re.findall(r"(?<!\\)\|", line)) for line in tables]
    assert cells == [3, 3, 3, 6, 6, 6]
    # What was written is still there to read, whole.
    shown = BeautifulSoup(markdown2html_mistune(text), "html.parser").get_text()
    for value in ("title", "root cause", "action", "event", "well", "follow"):
        assert " ".join(escape.one_line(hostile(value)).split()) in " ".join(shown.split())


def test_a_root_cause_over_several_lines_keeps_its_lines_and_nothing_else(tmp_path: Path) -> None:
    cause = "Pool exhausted\n\n- not a list\n===\n    not code\n1. not numbered"
    incident = load.Incident("X", tmp_path, fields={"root_cause": cause})
    html = markdown2html_mistune(postmortem.build(incident).markdown)
    section = html.split("Root Cause")[1].split("<hr")[0]
    soup = BeautifulSoup(section, "html.parser")
    assert [p.get_text() for p in soup.find_all("p")] == [
        "Pool exhausted",
        "- not a list\n===\nnot code\n1. not numbered",
    ]
    assert not soup.find_all(["ul", "ol", "pre", "h1", "h2", "code"])


def test_incident_show_and_list_print_each_value_on_its_own_line(tmp_path: Path) -> None:
    from irkit.incident import summary

    forged = "Login fails\n  status:            resolved\x1b[2J\x07"
    event = {"at": "2026-11-30T10:00:00Z", "kind": "note\x1b[31m", "text": forged}
    fields = {"title": forged, "root_cause": forged, "action_items": [{"action": forged}]}
    incident = load.Incident("X", tmp_path, fields=fields, timeline=[event])
    for shown in (summary.detail(incident), summary.table([incident])):
        assert "\x1b" not in shown
        assert "\x07" not in shown
        # The forged line is part of the value's own line, never a line of the listing.
        assert not any(line.lstrip().startswith("status:") for line in shown.splitlines())
        assert "Login fails   status:            resolved[2J" in shown


# --- Slack and the text to paste -------------------------------------------------------------


def test_slack_messages_escape_every_value_and_keep_their_lines() -> None:
    now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    fields = {
        **FIELDS,
        "title": SLACKY,
        "impact": SLACKY,
        "responder": "<!here>",
        "status": "investigating",
    }
    detected = messages.detected(fields, now)
    lines = detected.slack.splitlines()
    assert lines[:4] == [
        "🚨 *INCIDENT DETECTED* 🚨",
        "*Severity:* P1 - High",
        "*Status:* Investigating",
        "*Impact:* &lt;!channel&gt; &lt;http://127.0.0.1:9/xss|click here&gt; *bold* &amp; co",
    ]
    assert "*Responder:* @&lt;!here&gt;" in lines
    assert len(lines) == 9
    resolved = messages.resolved({**fields, "root_cause": hostile("cause")}).slack
    assert "*Root Cause:* cause &lt;script&gt;alert('xss-script')&lt;/script&gt; " in resolved
    assert len(resolved.splitlines()) == 10  # heading … "Action Items:", one item
    for text in (detected.slack, resolved):
        # Only the kit's own words are formatted: no `<` is left to open a link or a mention.
        assert not re.search("[<>]", text)
        assert re.search(r"&(?!amp;|lt;|gt;)", text) is None
    # The text to paste stays readable: the values as written, each on its line.
    assert f"**Impact:** {SLACKY}" in detected.markdown.splitlines()
    assert len(detected.markdown.splitlines()) == 9


def test_the_text_to_paste_is_shown_as_code() -> None:
    fields = {"impact": "```\n" + hostile("impact") + "\n```", "severity": "P0"}
    bundle = messages.detected(fields, datetime(2026, 11, 30, tzinfo=UTC))._repr_mimebundle_()
    assert markdown_live(bundle["text/markdown"]) == []
    code = BeautifulSoup(markdown2html_mistune(bundle["text/markdown"]), "html.parser")
    assert len(code.find_all("pre")) == 1
    assert SCRIPT in code.find("pre").get_text()


def test_the_status_page_command_keeps_each_value_one_argument() -> None:
    title = 'x" $(touch /tmp/pwned) `id` & incident[status]=resolved; rm -rf ~'
    text = messages.statuspage({"title": title, "status": "investigating"}).markdown
    argv = shlex.split(text.replace("\\\n", " "))
    assert f"incident[name]={title}" in argv
    assert argv.count("--data-urlencode") == 3
    assert "-d" not in argv  # form-encoded by curl: a `&` cannot add a field


def test_the_health_notice_escapes_what_came_from_outside() -> None:
    results = [
        Result(probe="http.health", target="web", status=Status.CRIT, summary=hostile("health")),
        Result(probe="prometheus.alerts", target="prom", status=Status.CRIT, summary=SLACKY),
    ]
    text = notice.text(results, Status.CRIT, "first health report: CRIT", datetime.now(UTC))
    assert not re.search("[<>]", text)
    assert (
        "• CRIT prometheus.alerts: &lt;!channel&gt; &lt;http://127.0.0.1:9/xss|click here" in text
    )
    assert len(text.splitlines()) == 3  # the heading and one line per finding


# --- other HTML and pictures -----------------------------------------------------------------


def test_a_dashboard_link_runs_no_script() -> None:
    links = triage.Links({"Grafana": "javascript:alert('xss')", "Jaeger": "https://jaeger.test"})
    html = links._repr_mimebundle_()["text/html"]
    assert live(html) == []
    assert "href='https://jaeger.test'" in html


def test_the_resolve_verdict_is_escaped() -> None:
    html = resolve.Verdict(False, f"NOT resolved: {SCRIPT}")._repr_mimebundle_()["text/html"]
    assert live(html) == []


def test_a_dollar_sign_in_a_label_is_drawn_as_text() -> None:
    evidence = {"rows": [{"path": r"/srv/$\foo$", "used_pct": 50.0}], "warn_pct": 80}
    (chart,) = charts._disk(evidence)
    assert chart.startswith("data:image/png;base64,")


# --- end to end: the record, its HTML copies and Slack ---------------------------------------

HEALTH_BODY = {IMG: "OK", "Cache": hostile("component"), "Database": "OK"}
ALERTS = {
    "status": "success",
    "data": {
        "alerts": [
            {
                "labels": {"alertname": SCRIPT, "severity": "critical", "team": SLACKY},
                "annotations": {"summary": hostile("alert"), "runbook": LINK},
                "state": "firing",
                "activeAt": "2026-11-30T10:00:00Z",
                "value": "1e+00",
            }
        ]
    },
}


class Outside:
    """The world outside the kit on loopback: a web app whose health endpoint and a Prometheus
    whose alerts carry hostile text, and a Slack webhook that records what is posted and
    answers `status` with a hostile body."""

    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []
        self.status = 200
        outside = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/health/ready/":
                    self._send(500, HEALTH_BODY)
                elif path == "/api/v1/alerts":
                    self._send(200, ALERTS)
                elif path == "/api/v1/query":
                    self._send(
                        200, {"status": "success", "data": {"resultType": "vector", "result": []}}
                    )
                else:
                    self._send(200, {"ok": True})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outside.posted.append(json.loads(body))
                reply = hostile("slack said") if outside.status >= 300 else "ok"
                self._send(outside.status, reply)

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
                self.send_response(status)
                kind = "text/plain" if isinstance(body, str) else "application/json"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def outside() -> Iterator[Outside]:
    server = Outside()
    yield server
    server.server.shutdown()
    server.server.server_close()


def given(**values: str) -> list[str]:
    """`-p name=value` for each."""
    return [arg for name, value in values.items() for arg in ("-p", f"{name}={value}")]


def test_a_hostile_incident_is_inert_in_its_record_html_copies_and_slack(
    tmp_path: Path, stack: Stack, outside: Outside
) -> None:
    env = {"IRKIT_SLACK_WEBHOOK": f"{outside.url}/services/T0/B0/escape"}
    there = given(web_url=outside.url, prom_url=outside.url)
    opened = irkit(
        *["incident", "open", "--id", "X", "--title", FIELDS["title"]],
        *["--detection-source", FIELDS["detection_source"]],
        reports=tmp_path,
    )
    assert opened.returncode == 0, opened.stderr
    # Slack refuses the first post with a hostile error text: it lands in the timeline.
    outside.status = 500
    triage_values = given(notify="true", responder=FIELDS["responder"], impact=SLACKY)
    triaged = irkit(
        *["run", "triage", "--incident", "X", "--html"],
        *there,
        *triage_values,
        reports=tmp_path,
        env=env,
    )
    assert triaged.returncode < 3, triaged.stdout + triaged.stderr
    assert "CRIT    http.health  /health/ready/ answered 500" in triaged.stdout
    assert "\x1b" not in triaged.stdout  # the component's text, printed, moves no cursor
    outside.status = 200
    # `|` separates an item's parts: the rest of the tricks go in.
    item = [hostile(part).replace("|", "/") for part in ("action", "owner")]
    resolve_values = given(
        root_cause=FIELDS["root_cause"],
        resolution=FIELDS["resolution"],
        action_items=json.dumps([f"{item[0]} | {item[1]} | 2026-12-01 | P1"]),
        declare_resolved="true",
        notify="true",
        load_requests="4",
        load_concurrency="2",
    )
    resolved = irkit(
        *["run", "resolve", "--incident", "X"], *there, *resolve_values, reports=tmp_path, env=env
    )
    assert resolved.returncode < 3, resolved.stdout + resolved.stderr
    lessons = json.dumps([hostile("well")])
    postmortem_values = given(
        went_well=lessons,
        follow_up=lessons,
        revenue_impact=FIELDS["revenue_impact"],
        detection_review=FIELDS["detection_review"],
        author=FIELDS["responder"],
    )
    written_up = irkit(
        *["run", "postmortem", "--incident", "X", "--html"], *postmortem_values, reports=tmp_path
    )
    # The postmortem gives no verdict (hence UNKNOWN); it wrote the document and its copy.
    assert "04-postmortem.html" in written_up.stdout, written_up.stdout + written_up.stderr

    # Slack got every value escaped: no link, no mention, and the kit's lines as they are.
    detected, announced = (post["text"] for post in outside.posted)
    impact = "&lt;!channel&gt; &lt;http://127.0.0.1:9/xss|click here&gt; *bold* &amp; co"
    assert f"*Impact:* {impact}" in detected.splitlines()
    assert announced.startswith("✅ *INCIDENT RESOLVED* ✅\n*Severity:* ")
    for text in (detected, announced):
        assert not re.search("[<>]", text)

    folder = tmp_path / "incidents" / "X"
    text = (folder / "postmortem.md").read_text()
    assert markdown_live(text) == []
    assert "slack said &lt;script>alert('xss-script')&lt;/script>" in text  # the error text
    assert "| action &lt;script>" in text
    html_copies = sorted(folder.glob("*.html"))
    assert [p.name for p in html_copies] == ["02-triage.html", "04-postmortem.html"]
    for page in html_copies:
        assert live(page.read_text()) == [], page.name
    postmortem_page = BeautifulSoup((folder / "04-postmortem.html").read_text(), "html.parser")
    assert "title <script>alert('xss-script')</script>" in postmortem_page.get_text()
    for notebook in sorted(folder.glob("*.ipynb")):
        assert notebook_live(notebook) == []


def test_a_hostile_health_report_is_inert_in_its_html_copy_and_its_notice(
    tmp_path: Path, stack: Stack, outside: Outside
) -> None:
    log = tmp_path / "web.log"
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    log.write_text(
        f"{at} ERROR django.request {SCRIPT}\nTraceback (most recent call last):\n"
        f'  File "x.py", line 1\nKeyError: "{IMG} {LINK}"\n'
    )
    values = {
        **healthy(stack),
        "web_url": outside.url,
        "prom_url": outside.url,
        "log_files": [str(log)],
        "charts_always": True,
    }
    env = {"IRKIT_SLACK_WEBHOOK": f"{outside.url}/services/T0/B0/escape"}
    done = run_health(tmp_path, values, "--notify", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "\x1b" not in done.stdout
    (posted,) = outside.posted
    text = posted["text"]
    assert not re.search("[<>]", text)
    assert "&lt;script&gt;alert('xss-script')&lt;/script&gt;" in text  # the alert's name
    assert "• CRIT http.health: " in text
    (report,) = health_reports(tmp_path)
    page = report.with_suffix(".html").read_text()
    assert live(page) == []
    shown = BeautifulSoup(page, "html.parser").get_text()
    assert f'KeyError: "{IMG} {LINK}"' in shown  # the log line, as text
    assert notebook_live(report) == []
