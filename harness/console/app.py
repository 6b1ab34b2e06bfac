"""The console's web application (Starlette): pages, the live stream, the files of the reports
folders and the abort button, for one stack home, to whoever holds the access token.

Access: every request must carry the token the console printed, as `?token=` (the first visit:
it becomes a cookie, HttpOnly and SameSite=Strict, and the page is reloaded without it so the
token never stays on a projected screen) or as that cookie; anything else gets 403. The abort
POST also needs the page's CSRF token (a keyed hash of the access token) and, when the browser
says where it comes from, this very origin. Only requests addressed to 127.0.0.1 or localhost
are answered (a DNS-rebinding page cannot borrow the browser). Pages load nothing from anywhere
else: the header's Content-Security-Policy allows only this origin's own script and style.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse,
                                 Response, StreamingResponse)
from starlette.routing import Route

from harness.console import runs as runs_mod
from harness.console.live import RunView
from harness.console.runs import Roots, gameday_progress, live_run, list_gamedays, list_quarterly, list_runs
from harness.report.page import STATUSES, fmt_when
from harness.run.abort import send_abort, wait_ended

__all__ = ["Console", "create_app", "new_token"]

POLL_S = 0.1           # how often a stream looks for new lines (the page is this much behind, plus its own drawing)
LOOK_FOR_RUN_S = 0.5   # how often a following stream looks for the next run
GAMEDAY_EVERY_S = 2.0  # how often the game day's progress is recomputed
KEEPALIVE_S = 15.0
ABORT_WAIT_S = 120.0
STATIC = Path(__file__).parent / "static"
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# The run reports are pages of their own (harness/report): inline style and SVG, no script.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"

TEMPLATES = jinja2.Environment(
    loader=jinja2.ChoiceLoader([jinja2.PackageLoader("harness.console", "templates"),
                                jinja2.PackageLoader("harness.report", "templates")]),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
TEMPLATES.globals["STATUSES"] = STATUSES
TEMPLATES.filters["fmt_when"] = fmt_when


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class Console:
    """What the application serves: one home, its reports folders, its access token."""
    home: Path
    reports_dir: Path
    token: str
    port: int = 0
    roots: Roots = field(default_factory=Roots)
    abort_state: dict = field(default_factory=dict)
    _abort_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.home = Path(self.home).resolve()
        self.roots.add(self.reports_dir)
        target = runs_mod.target_of_home(self.home)
        self.alerts_log = target.get("alerts_log") if isinstance(target.get("alerts_log"), str) else None

    @property
    def csrf(self) -> str:
        return hmac.new(self.token.encode(), b"gameday-console-csrf", hashlib.sha256).hexdigest()

    @property
    def cookie(self) -> str:
        # Cookies do not tell ports apart: two consoles on one machine keep theirs apart by name.
        return f"gameday-console-{self.port}"

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def abort(self) -> dict:
        """`gameday abort` on this home: the runs are told to stop now; their rollbacks are
        waited for in the background (the page sees the run end in its stream)."""
        with self._abort_lock:
            runs = send_abort([self.home])
            if not runs:
                self.abort_state = {"state": "none", "words": f"no run in progress on {self.home}", "at": time.time()}
                return self.abort_state
            pids = [run["pid"] for _, run in runs]
            started = time.monotonic()
            self.abort_state = {"state": "sent", "pids": pids, "at": time.time(),
                                "words": f"abort sent to run pid {', '.join(map(str, pids))}: rolling back"}
            state = self.abort_state

        def wait():
            left = wait_ended(runs, ABORT_WAIT_S)
            took = time.monotonic() - started
            state.update({"state": "done" if not left else "slow", "at": time.time(),
                          "words": f"every run ended in {took:.1f} s (rollbacks done)" if not left else
                                   f"still rolling back after {took:.1f} s: pids {left}"})

        threading.Thread(target=wait, name="console-abort-wait", daemon=True).start()
        return dict(state)


class Follower:
    """One page's stream: a given run, or (following) whatever run the home has in progress,
    moving on to the next run of a game day by itself."""

    def __init__(self, console: Console, run_dir: Path | None = None):
        self.console = console
        self.follow = run_dir is None
        self.view = RunView(run_dir, console.roots, console.alerts_log) if run_dir else None
        self.entry: dict | None = None
        self.next_look = 0.0
        self.next_gameday = 0.0
        self.last_gameday = None
        self.idle_sent = False
        self.abort_seen = None

    def poll(self) -> list[tuple[str, dict]]:
        now = time.time()
        out: list[tuple[str, dict]] = []
        if self.follow and now >= self.next_look and (self.view is None or self.view.finished):
            self.next_look = now + LOOK_FOR_RUN_S
            self.entry, run_dir = live_run(self.console.home, self.console.roots)
            if run_dir is not None and (self.view is None or run_dir != self.view.run_dir):
                self.view, self.idle_sent = RunView(run_dir, self.console.roots, self.console.alerts_log), False
            elif self.view is None and not self.idle_sent:
                self.idle_sent = True
                out.append(("idle", {"words": f"no run in progress on {self.console.home}"}))
        if self.view is not None:
            out += self.view.poll(now)
        if self.follow and self.entry and now >= self.next_gameday:
            self.next_gameday = now + GAMEDAY_EVERY_S
            base = Path(self.entry.get("reports") or "")
            if base.name.startswith(runs_mod.GAMEDAY_PREFIX):
                progress = gameday_progress(base, self.entry, self.console.roots, now)
                if progress != self.last_gameday:
                    self.last_gameday = progress
                    out.append(("gameday", progress))
        state = self.console.abort_state
        if state and (state.get("at"), state.get("state")) != self.abort_seen:
            self.abort_seen = (state.get("at"), state.get("state"))
            out.append(("abort", dict(state)))
        return out


def create_app(console: Console):
    """The application for `console` (routes below; every one behind the token)."""

    def page(template: str, request: Request, **context) -> HTMLResponse:
        html = TEMPLATES.get_template(template).render(home=str(console.home), csrf=console.csrf,
                                                       path=request.url.path, **context)
        return HTMLResponse(html, headers=_headers())

    async def live(request: Request) -> Response:
        run_dir = _run_dir(request) if "n" in request.path_params else None
        if "n" in request.path_params and run_dir is None:
            return _not_found("no such run folder")
        events = "/events" + (request.url.path.removeprefix("/run") if run_dir else "")
        return page("live.html.j2", request, title="Live" if run_dir is None else run_dir.name,
                    events=events, following=run_dir is None, here="live")

    async def events(request: Request) -> Response:
        run_dir = _run_dir(request) if "n" in request.path_params else None
        if "n" in request.path_params and run_dir is None:
            return _not_found("no such run folder")
        follower = Follower(console, run_dir)

        async def stream():
            yield "retry: 1000\n: gameday console stream\n\n"
            quiet_since = time.monotonic()
            while True:
                messages = await asyncio.to_thread(follower.poll)
                if messages:
                    quiet_since = time.monotonic()
                    yield "".join(f"event: {name}\ndata: {runs_mod.dumps(data)}\n\n" for name, data in messages)
                elif time.monotonic() - quiet_since > KEEPALIVE_S:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
                await asyncio.sleep(POLL_S)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={**_headers(), "Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def gamedays(request: Request) -> Response:
        entry, _ = live_run(console.home, console.roots)
        active = {Path(entry["reports"]).resolve()} if entry and entry.get("reports") else set()
        return page("gamedays.html.j2", request, title="Game days", here="gamedays",
                    gamedays=list_gamedays(console.roots, active))

    async def gameday(request: Request) -> Response:
        folder = console.roots.resolve(request.path_params["n"], request.path_params["rel"])
        if folder is None or not folder.is_dir() or not folder.name.startswith(runs_mod.GAMEDAY_PREFIX):
            return _not_found("no such game day")
        entry, _ = live_run(console.home, console.roots)
        mine = entry if entry and Path(entry.get("reports") or "").resolve() == folder else None
        return page("gameday-progress.html.j2", request, title=folder.name, here="gamedays",
                    g=gameday_progress(folder, mine, console.roots))

    async def run_list(request: Request) -> Response:
        scenario = request.query_params.get("scenario", "")
        status = request.query_params.get("status", "")
        rows, scenarios = await asyncio.to_thread(list_runs, console.roots, scenario, status)
        return page("runs.html.j2", request, title="Runs", here="runs", rows=rows, scenarios=scenarios,
                    scenario=scenario, status=status, statuses=[*STATUSES, "running"])

    async def quarterly(request: Request) -> Response:
        return page("quarters.html.j2", request, title="Quarterly evidence", here="quarterly",
                    quarters=list_quarterly(console.roots))

    async def files(request: Request) -> Response:
        path = console.roots.resolve(request.path_params["n"], request.path_params["rel"])
        if path is None or not path.is_file():
            return _not_found("no such file")
        return FileResponse(path, headers={**_headers(REPORT_CSP), "Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        path = STATIC / name
        if "/" in name or not path.is_file():
            return _not_found("no such file")
        return FileResponse(path, headers=_headers())

    async def abort(request: Request) -> Response:
        # The page's form, URL-encoded (parsed here: Starlette's form parser needs a package we do not use).
        body = (await request.body())[:4096].decode("utf-8", "replace")
        form = parse_qs(body) if "urlencoded" in request.headers.get("content-type", "") else {}
        given = str((form.get("csrf") or [""])[0] or request.headers.get("x-csrf-token") or "")
        origin = request.headers.get("origin")
        if not hmac.compare_digest(given.encode(), console.csrf.encode()) or \
                (origin is not None and origin not in _own_origins(console.port)):
            return _forbidden("the abort needs this console's own page (its CSRF token was missing or wrong)")
        state = await asyncio.to_thread(console.abort)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(state, status_code=202, headers=_headers())
        return page("message.html.j2", request, title="Abort", here="live", words=state["words"])

    routes = [
        Route("/", live), Route("/run/{n:int}/{rel:path}", live),
        Route("/events", events), Route("/events/{n:int}/{rel:path}", events),
        Route("/gamedays", gamedays), Route("/gameday/{n:int}/{rel:path}", gameday),
        Route("/runs", run_list), Route("/quarterly", quarterly),
        Route("/files/{n:int}/{rel:path}", files), Route("/static/{name}", static),
        Route("/abort", abort, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.console = console

    def refused(request: Request) -> Response | None:
        """The token (query or cookie) and the host, before anything is served: None lets the
        request through, else the response it gets instead."""
        if (request.url.hostname or "") not in ALLOWED_HOSTS:
            return _forbidden("this console answers only at 127.0.0.1 or localhost")
        given = request.query_params.get("token")
        if given is not None:
            if not hmac.compare_digest(given.encode(), console.token.encode()):
                return _forbidden("wrong access token: use the URL `gameday console` printed")
            if request.method == "GET" and not request.url.path.startswith("/events"):
                # The token becomes a cookie; the page is shown without it in its address.
                rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
                response = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), status_code=303)
                response.set_cookie(console.cookie, console.token, httponly=True, samesite="strict", path="/")
                return response
            return None
        cookie = request.cookies.get(console.cookie, "")
        if not hmac.compare_digest(cookie.encode(), console.token.encode()):
            return _forbidden("this console needs its access token: open the URL `gameday console` printed")
        return None

    async def guarded(scope, receive, send):
        if scope["type"] == "http":
            response = refused(Request(scope, receive))
            if response is not None:
                await response(scope, receive, send)
                return
        await app(scope, receive, send)

    return guarded


# Internals ------------------------------------------------------------------------------------

def _headers(csp: str = CSP) -> dict:
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY"}


def _own_origins(port: int) -> set[str]:
    return {f"http://{host}:{port}" for host in ALLOWED_HOSTS}


def _forbidden(why: str) -> Response:
    return PlainTextResponse(f"403 forbidden: {why}\n", status_code=403, headers=_headers())


def _not_found(why: str) -> Response:
    return PlainTextResponse(f"404: {why}\n", status_code=404, headers=_headers())


def _run_dir(request: Request) -> Path | None:
    console: Console = request.app.state.console
    folder = console.roots.resolve(request.path_params["n"], request.path_params["rel"])
    if folder is None or not folder.is_dir() or not ((folder / "session.json").exists() or (folder / "verdict.json").exists()):
        return None
    return folder
