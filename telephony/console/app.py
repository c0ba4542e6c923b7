"""The operator console: live calls (pushed with server-sent events), call history with the recording,
actions on a live call (hang up, transfer to an allowed target), behind a password.

Why Starlette + Jinja2 pages and a few lines of plain JavaScript: it installs from PyPI with no build
step and no network at install time, and office staff get a page that works in any browser.
Security: nothing but the login page without a session; the session is a signed cookie
(SameSite=Strict, HttpOnly); every action is a POST carrying the session's CSRF token; the password
is compared in constant time, and there is no default password.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import Environment, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from memory.documents import SUFFIXES as DOCUMENT_SUFFIXES
from telephony.console.pages import TEMPLATES

if TYPE_CHECKING:
    from telephony.switchboard import Switchboard

def _jinja() -> Environment:
    from jinja2 import DictLoader

    return Environment(loader=DictLoader(TEMPLATES), autoescape=select_autoescape(default=True))


class Console:
    """The console's view of one running switchboard."""

    def __init__(self, board: "Switchboard") -> None:
        self.board = board
        self.settings = board.settings
        self.store = board.brain.memory.store
        self.env = _jinja()

    # -- data ----------------------------------------------------------------------------------------
    def live_calls(self) -> list[dict[str, Any]]:
        calls = []
        for call in list(self.board.active.values()):
            loop = call.loop
            conversation_id = call.outcome.conversation_id
            transcript = [{"role": m.role, "text": m.content} for m in self.store.messages(conversation_id)
                          if m.role in ("user", "assistant")] if conversation_id else []
            turns = [{"caller": t.caller_text, "voice_to_voice_ms": t.voice_to_voice_ms,
                      "stt_ms": round(t.stt_wait_s * 1000), "first_token_ms": _ms(t.first_token_s),
                      "first_audio_ms": _ms(t.first_audio_s)} for t in (loop.turns if loop else [])]
            state = "agent speaking" if loop and loop.speaking else (
                "caller speaking" if loop and loop.listener.endpointer.in_speech else "listening")
            calls.append({"call_id": call.call_id, "remote": call.remote, "direction": call.direction,
                          "duration_s": round(time.monotonic() - call.started), "state": state,
                          "conversation_id": conversation_id, "transcript": transcript, "turns": turns})
        return calls

    def history(self, query: str = "", outcome: str = "", day: str = "", limit: int = 200) -> list[dict[str, Any]]:
        rows = []
        for conversation in self.store.recent_conversations(1000):
            info = self.store.call_info(conversation.id) or {}
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.started_at))
            status = info.get("status", conversation.channel)
            if query and query.lower() not in f"{conversation.caller} {conversation.summary or ''}".lower():
                continue
            if outcome and status != outcome:
                continue
            if day and not started.startswith(day):
                continue
            rows.append({"id": conversation.id, "started": started, "caller": conversation.caller,
                         "direction": info.get("direction", ""), "status": status,
                         "duration_s": info.get("duration_s"), "summary": conversation.summary or ""})
            if len(rows) >= limit:
                break
        return rows

    def call(self, conversation_id: int) -> dict[str, Any] | None:
        conversation = self.store.conversation(conversation_id)
        if conversation is None:
            return None
        turns = self.store.turns(conversation_id)
        return {
            "id": conversation_id, "caller": conversation.caller, "summary": conversation.summary or "",
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(conversation.started_at)),
            "info": self.store.call_info(conversation_id) or {},
            "messages": [{"role": m.role, "text": m.content, "name": m.name} for m in self.store.messages(conversation_id)],
            "turns": [{"caller": t.caller_text, "agent": t.agent_text, "tools": t.tools, "timings": t.timings,
                       "interrupted": t.interrupted} for t in turns],
            "recording": bool(self.store.recording(conversation_id)),
        }

    # -- pages and endpoints -------------------------------------------------------------------------
    def render(self, request: Request, name: str, **context: Any) -> HTMLResponse:
        page = self.env.get_template(name).render(
            csrf=request.session.get("csrf", ""), logged_in=bool(request.session.get("operator")),
            company=self.settings.job.company, **context)
        return HTMLResponse(page)

    async def login_page(self, request: Request) -> Response:
        request.session.setdefault("csrf", secrets.token_urlsafe(24))
        locked = self.settings.console.password is None
        return self.render(request, "login.html", locked=locked, error=request.query_params.get("error"))

    async def login(self, request: Request) -> Response:
        form = await request.form()
        if not _same(str(form.get("csrf", "")), request.session.get("csrf", "")):
            return Response("bad or missing CSRF token", status_code=403)
        password = self.settings.console.password
        given = str(form.get("password", ""))
        if password is None or not _same(given, password.get_secret_value()):
            await asyncio.sleep(0.5)  # slows password guessing
            return RedirectResponse("/login?error=1", status_code=303)
        request.session.clear()
        request.session.update({"operator": True, "csrf": secrets.token_urlsafe(24),
                                "expires": time.time() + self.settings.console.session_hours * 3600})
        return RedirectResponse("/", status_code=303)

    async def logout(self, request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def live_page(self, request: Request) -> Response:
        targets = sorted(self.settings.job.transfers)
        return self.render(request, "live.html", calls=self.live_calls(), targets=targets)

    async def live_json(self, request: Request) -> Response:
        return JSONResponse({"calls": self.live_calls()})

    async def events(self, request: Request) -> Response:
        """Server-sent events: the live calls, once a second and whenever they change."""

        async def stream():
            last = None
            while not await request.is_disconnected():
                snapshot = json.dumps({"calls": self.live_calls()})
                if snapshot != last:
                    yield f"data: {snapshot}\n\n"
                    last = snapshot
                else:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(1.0)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def hang_up(self, request: Request) -> Response:
        call = self.board.active.get(request.path_params["call_id"])
        if call is None:
            return JSONResponse({"error": "no such live call"}, status_code=404)
        call.stop_requested = "operator"
        return _done(request, {"ok": True, "action": "hang up"})

    async def transfer(self, request: Request) -> Response:
        call = self.board.active.get(request.path_params["call_id"])
        if call is None:
            return JSONResponse({"error": "no such live call"}, status_code=404)
        form = await request.form()
        name = str(form.get("target", ""))
        target = self.settings.job.transfers.get(name)
        if target is None:
            return JSONResponse({"error": f"{name!r} is not an allowed transfer target"}, status_code=400)
        call.line.transfer(target.target)
        return _done(request, {"ok": True, "action": f"transfer to {name}"})

    async def calls_page(self, request: Request) -> Response:
        params = request.query_params
        rows = self.history(params.get("q", ""), params.get("outcome", ""), params.get("date", ""))
        return self.render(request, "calls.html", rows=rows, q=params.get("q", ""), outcome=params.get("outcome", ""),
                           date=params.get("date", ""))

    async def call_page(self, request: Request) -> Response:
        details = self.call(int(request.path_params["conversation_id"]))
        if details is None:
            return HTMLResponse("no such call", status_code=404)
        return self.render(request, "call.html", call=details, chart=_latency_chart(details["turns"]))

    async def recording(self, request: Request) -> Response:
        """The stereo recording, or one side of it (``?side=caller`` or ``agent``) as a mono WAV."""
        path = self.store.recording(int(request.path_params["conversation_id"]))
        if not path or not Path(path).is_file():
            return Response("no recording", status_code=404)
        side = request.query_params.get("side")
        if side is None:
            return FileResponse(path, media_type="audio/wav")
        if side not in ("caller", "agent"):
            return Response("side is caller or agent", status_code=400)
        return Response(await asyncio.to_thread(_one_side, Path(path), 0 if side == "caller" else 1),
                        media_type="audio/wav")


class OfficeWork:
    """The console's pages for the office: messages for staff, campaigns, callers' memory, the job.

    Every change made here is appended to ``<data_dir>/audit.log`` (JSON lines: when, from where,
    what), so an erasure or a memory edit can be accounted for.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.board = console.board
        self.store = console.store
        self.data_dir = console.settings.service.data_dir

    def audit(self, request: Request, action: str, **details: Any) -> None:
        entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "from": request.client.host if request.client else "",
                 "action": action, **details}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "audit.log").open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")

    # messages for staff
    async def messages_page(self, request: Request) -> Response:
        show_all = request.query_params.get("all") == "1"
        messages = self.store.staff_messages(open_only=not show_all)
        return self.console.render(request, "messages.html", messages=messages, show_all=show_all,
                                   when=lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t)))

    async def message_done(self, request: Request) -> Response:
        message_id = int(request.path_params["message_id"])
        if not self.store.set_staff_message_done(message_id):
            return JSONResponse({"error": "no such message"}, status_code=404)
        self.audit(request, "message done", message=message_id)
        return _done(request, {"ok": True}, "/messages")

    # campaigns
    def _campaigns(self):
        from telephony.campaign.store import CampaignStore

        path = self.data_dir / "campaigns.sqlite3"
        return CampaignStore(path) if path.exists() else None

    async def campaigns_page(self, request: Request) -> Response:
        store = self._campaigns()
        rows = []
        if store is not None:
            rows = [{"name": c.name, "goal": c.goal, "status": c.status, "counts": store.counts(c.name)}
                    for c in store.campaigns()]
            store.close()
        return self.console.render(request, "campaigns.html", campaigns=rows)

    async def campaign_page(self, request: Request) -> Response:
        from telephony.campaign.store import CampaignError

        store = self._campaigns()
        if store is None:
            return HTMLResponse("no campaigns yet", status_code=404)
        try:
            campaign = store.campaign(request.path_params["name"])
            counts, contacts = store.counts(campaign.name), store.contacts(campaign.name)
        except CampaignError as exc:
            return HTMLResponse(str(exc), status_code=404)
        finally:
            store.close()
        return self.console.render(request, "campaign.html", campaign=campaign, counts=counts, contacts=contacts)

    async def campaign_export(self, request: Request) -> Response:
        import io

        from telephony.campaign.export import write_results

        store = self._campaigns()
        if store is None:
            return Response("no campaigns yet", status_code=404)
        try:
            rows = store.contacts(store.campaign(request.path_params["name"]).name)
        except ValueError as exc:
            return Response(str(exc), status_code=404)
        finally:
            store.close()
        out = io.StringIO()
        write_results(rows, out)
        return Response(out.getvalue(), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{request.path_params["name"]}.csv"'})

    # callers
    async def callers_page(self, request: Request) -> Response:
        query = request.query_params.get("q", "").lower()
        seen: dict[str, Any] = {}
        for conversation in self.store.recent_conversations(1000):
            if conversation.caller not in seen and query in conversation.caller.lower():
                seen[conversation.caller] = conversation
        return self.console.render(request, "callers.html", callers=list(seen.values()), q=query,
                                   when=lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t)))

    async def caller_page(self, request: Request) -> Response:
        key = request.path_params["key"]
        block = self.store.get_block(key, "human")
        return self.console.render(request, "caller.html", key=key, memory=block.value if block else "",
                                   limit=self.board.brain.memory.settings.human_limit,
                                   conversations=self.store.conversations(key, 50),
                                   when=lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t)))

    async def caller_memory(self, request: Request) -> Response:
        key = request.path_params["key"]
        value = str((await request.form()).get("memory", "")).strip()
        limit = self.board.brain.memory.settings.human_limit
        if len(value) > limit:
            return JSONResponse({"error": f"{len(value)} characters, over the limit of {limit}"}, status_code=400)
        before: list[str] = []

        def replace(current: str) -> str:  # read in the same transaction as the write: the audit is exact
            before.append(current)
            return value

        self.store.update_block(key, "human", limit, replace)
        self.audit(request, "caller memory edited", caller=key, before=before[0], after=value)
        return _done(request, {"ok": True}, f"/callers/{quote(key, safe='')}")

    async def caller_erase(self, request: Request) -> Response:
        key = request.path_params["key"]
        removed = self.store.delete_owner(key)
        self.audit(request, "caller erased", caller=key, rows=removed)
        return _done(request, {"ok": True, "rows": removed}, "/callers")

    # the job
    async def job_page(self, request: Request) -> Response:
        from config.loader import render_toml
        from memory.records import COMPANY_OWNER

        sources: dict[str, int] = {}
        for passage in self.store.passages(COMPANY_OWNER):
            sources[passage.source] = sources.get(passage.source, 0) + 1
        return self.console.render(request, "job.html", config=render_toml(self.console.settings), sources=sources,
                                   uploaded=request.query_params.get("uploaded"))

    async def job_upload(self, request: Request) -> Response:
        import tempfile

        form = await request.form()
        upload = form.get("document")
        name = Path(getattr(upload, "filename", "") or "").name
        if not name or Path(name).suffix.lower() not in DOCUMENT_SUFFIXES:
            return JSONResponse({"error": f"upload a document of one of these types: {' '.join(DOCUMENT_SUFFIXES)}"},
                                status_code=400)
        content = await upload.read()
        kept = self.data_dir / "documents"
        kept.mkdir(parents=True, exist_ok=True)
        (kept / name).write_bytes(content)
        with tempfile.TemporaryDirectory() as folder:  # ingest just this file, under its own name
            (Path(folder) / name).write_bytes(content)
            report = await asyncio.to_thread(self.board.brain.memory.ingest, Path(folder))
        if report.skipped:
            (kept / name).unlink(missing_ok=True)
            return JSONResponse({"error": report.skipped[0]}, status_code=400)
        self.audit(request, "document ingested", document=name, passages=report.passages)
        return _done(request, {"ok": True, "passages": report.passages}, f"/job?uploaded={quote(name)}")


def _one_side(path: Path, channel: int) -> bytes:
    """One channel of a stereo call recording (left: caller, right: agent) as a mono WAV."""
    import io
    import wave

    import numpy as np

    with wave.open(str(path), "rb") as stereo:
        rate = stereo.getframerate()
        frames = np.frombuffer(stereo.readframes(stereo.getnframes()), "<i2").reshape(-1, stereo.getnchannels())
    out = io.BytesIO()
    with wave.open(out, "wb") as mono:
        mono.setnchannels(1)
        mono.setsampwidth(2)
        mono.setframerate(rate)
        mono.writeframes(np.ascontiguousarray(frames[:, min(channel, frames.shape[1] - 1)]).tobytes())
    return out.getvalue()


def _same(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _done(request: Request, payload: dict, then: str = "/") -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(payload)
    return RedirectResponse(then, status_code=303)


def _stages(timings: dict[str, Any]) -> list[tuple[str, str, float]]:
    """A stored turn's timings as consecutive stages (label, colour, ms) that add up to voice to voice."""
    def get(key: str) -> float | None:
        value = timings.get(key)
        return None if value is None else float(value)

    speech_end, endpoint = get("speech_end_ms"), get("endpoint_ms")
    stt, token, audio = get("stt_final_ms"), get("first_token_ms"), get("first_audio_ms")
    out = []
    if speech_end is not None and endpoint is not None:
        out.append(("endpoint", "#8aa", endpoint - speech_end))
    if stt is not None:
        out.append(("STT final", "#68c", stt))
    if token is not None:
        out.append(("first text", "#c86", token))
    if audio is not None:
        out.append(("first audio", "#6a6", audio - (token or 0.0)))
    return [(label, colour, max(0.0, ms)) for label, colour, ms in out]


def _latency_chart(turns: list[dict[str, Any]]) -> str:
    """One stacked bar per turn (endpoint, STT, model's first text, TTS), as inline SVG with titles."""
    bars, width, scale = [], 18, 20.0  # 20 ms per pixel: 2.8 s fills the 140 px height
    for index, turn in enumerate(turns):
        y, x = 150.0, 10 + index * (width + 6)
        total = (turn.get("timings") or {}).get("voice_to_voice_ms")
        for label, colour, ms in _stages(turn.get("timings") or {}):
            height = min(y - 10, ms / scale)
            y -= height
            bars.append(f'<rect x="{x}" y="{y:.0f}" width="{width}" height="{height:.0f}" fill="{colour}">'
                        f"<title>turn {index + 1}, {label}: {ms:.0f} ms</title></rect>")
        if total is not None:
            bars.append(f'<text x="{x}" y="{y - 2:.0f}" font-size="9">{total}</text>')
    labels = [("endpoint", "#8aa"), ("STT final", "#68c"), ("first text", "#c86"), ("first audio", "#6a6")]
    legend = " ".join(f'<tspan fill="{colour}">■ {label}</tspan>' for label, colour in labels)
    return (f'<svg class="chart" width="{max(260, 20 + len(turns) * 24)}" height="170" role="img" '
            f'aria-label="latency per turn, ms">{"".join(bars)}<text x="10" y="166" font-size="10">{legend} '
            "(number: voice to voice, ms)</text></svg>")


def create_app(board: "Switchboard", session_secret: str | None = None) -> Starlette:
    console = Console(board)
    office = OfficeWork(console)

    def guarded(handler, *, action: bool = False):
        async def endpoint(request: Request) -> Response:
            session = request.session
            if not session.get("operator") or session.get("expires", 0) < time.time():
                session.clear()
                if request.url.path.startswith("/api/") or request.method != "GET":
                    return JSONResponse({"error": "log in first"}, status_code=401)
                return RedirectResponse("/login", status_code=303)
            if action:
                form = await request.form()
                token = request.headers.get("x-csrf-token") or str(form.get("csrf", ""))
                if not _same(token, session.get("csrf", "")):
                    return JSONResponse({"error": "bad or missing CSRF token"}, status_code=403)
            return await handler(request)

        return endpoint

    routes = [
        Route("/login", console.login_page, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", guarded(console.logout, action=True), methods=["POST"]),
        Route("/", guarded(console.live_page)),
        Route("/api/live", guarded(console.live_json)),
        Route("/events", guarded(console.events)),
        Route("/calls", guarded(console.calls_page)),
        Route("/calls/{conversation_id:int}", guarded(console.call_page)),
        Route("/calls/{conversation_id:int}/recording.wav", guarded(console.recording)),
        Route("/live/{call_id:path}/hangup", guarded(console.hang_up, action=True), methods=["POST"]),
        Route("/live/{call_id:path}/transfer", guarded(console.transfer, action=True), methods=["POST"]),
        Route("/messages", guarded(office.messages_page)),
        Route("/messages/{message_id:int}/done", guarded(office.message_done, action=True), methods=["POST"]),
        Route("/campaigns", guarded(office.campaigns_page)),
        Route("/campaigns/{name}", guarded(office.campaign_page)),
        Route("/campaigns/{name}/export.csv", guarded(office.campaign_export)),
        Route("/callers", guarded(office.callers_page)),
        Route("/callers/{key:path}/memory", guarded(office.caller_memory, action=True), methods=["POST"]),
        Route("/callers/{key:path}/erase", guarded(office.caller_erase, action=True), methods=["POST"]),
        Route("/callers/{key:path}", guarded(office.caller_page)),
        Route("/job", guarded(office.job_page)),
        Route("/job/documents", guarded(office.job_upload, action=True), methods=["POST"]),
    ]
    middleware = [Middleware(SessionMiddleware, secret_key=session_secret or secrets.token_urlsafe(32),
                             session_cookie="employai_console", same_site="strict", https_only=False,
                             max_age=int(board.settings.console.session_hours * 3600))]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.console = console
    return app
