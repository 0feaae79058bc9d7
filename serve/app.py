"""The routes: the page, and JSON endpoints that mirror the CLI (`search`, `info`,
`search --export`, thumbnails, the video), described at /api/openapi.json."""

from __future__ import annotations

import logging
import shutil
import threading
from importlib import resources

from fastapi import Depends, FastAPI, HTTPException, Path, Query as Param
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from scenegrep.pipeline.errors import DamagedIndexError, ScenegrepError
from scenegrep.pipeline.present import FORMATS, clip_record

from .downloads import export_download
from .engine import Engine, video_id_of
from .guard import Guard
from .media import Thumbnails, video_response
from .params import SearchForm, search_form

log = logging.getLogger("scenegrep.serve")

STATIC_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
"""The page's files, the only ones served from the package (by these fixed names)."""


class OpenRequest(BaseModel):
    video_id: str = Field(max_length=64)
    start: float = Field(ge=0, allow_inf_nan=False)
    end: float | None = Field(None, ge=0, allow_inf_nan=False)


def create_app(engine: Engine, *, token: str | None = None, allow_open: bool = False) -> Guard:
    """The ASGI app for `engine`. `token`: required on every request when given
    (else only loopback Host names are answered); `allow_open`: whether
    /api/open may start a player on this machine (only on loopback)."""
    app = FastAPI(title="scenegrep", summary="Search a video archive by meaning.", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    thumbnails = Thumbnails()
    _errors(app)

    def entry_of(video_id: str):
        entry = engine.video(video_id)
        if entry is None:
            raise HTTPException(404, "no video with this id in the index")
        return entry

    @app.get("/", include_in_schema=False)
    def page():
        return _static("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in STATIC_FILES or name == "index.html":
            raise HTTPException(404, "no such file")
        return _static(name)

    @app.post("/api/search", summary="Find clips, as `scenegrep search --json` does")
    async def search(form: SearchForm = Depends(search_form)):
        query, pictures, filters, rules = await form.plan()
        answer = await _in_thread(engine.search, query, pictures, form.k, filters, rules)
        return {"query": answer.query, "took_ms": round(answer.seconds * 1000, 1),
                "clips": [_record(rank, clip) for rank, clip in enumerate(answer.clips, 1)]}

    @app.post("/api/export", summary="Search and download the clips in an export format, as `search --export`")
    async def export(form: SearchForm = Depends(search_form),
                     format: str = Param(..., pattern="^(" + "|".join(FORMATS) + ")$", description="Export format.")):
        query, pictures, filters, rules = await form.plan()
        answer = await _in_thread(engine.search, query, pictures, form.k, filters, rules)
        download = await _in_thread(export_download, answer.clips, format, answer.query)
        for warning in download.warnings:
            log.warning("export: %s", warning)
        return FileResponse(download.path, filename=download.filename,
                            background=BackgroundTask(shutil.rmtree, download.folder, ignore_errors=True))

    @app.get("/api/info", summary="The index: model, interval, videos, frames, a running index's progress")
    def info():
        return {**engine.status(), "can_open": allow_open}

    @app.get("/api/videos/{video_id}", summary="A video of the index, streamed with Range requests")
    def video(video_id: str = Path(max_length=64)):
        return video_response(entry_of(video_id))

    @app.get("/api/thumbnails/{video_id}", summary="The frame at t seconds, as a JPEG (made once, then kept)")
    def thumbnail(video_id: str = Path(max_length=64), t: float = Param(ge=0, allow_inf_nan=False)):
        data = thumbnails.jpeg(entry_of(video_id), t)
        return Response(data, media_type="image/jpeg", headers={"cache-control": "private, max-age=3600"})

    @app.post("/api/open", summary="Play a clip in a desktop player on the serving machine (loopback only)")
    def open_player(request: OpenRequest):
        from scenegrep.pipeline.present.player import choose_command, launch

        if not allow_open:
            raise HTTPException(403, "opening a desktop player is offered only when serving on 127.0.0.1")
        entry = entry_of(request.video_id)
        command = choose_command("auto", entry.path, request.start, request.end)
        threading.Thread(target=_launch_quietly, args=(launch, command), daemon=True).start()
        return {"player": command[0], "command": command}

    return Guard(app, token=token)


def _record(rank: int, clip) -> dict:
    record = clip_record(rank, clip)
    video_id = video_id_of(clip)
    record.update(video_id=video_id, video_url=f"/api/videos/{video_id}",
                  thumbnail_url=f"/api/thumbnails/{video_id}?t={clip.best.t:.3f}")
    return record


def _static(name: str) -> Response:
    data = resources.files("scenegrep.serve").joinpath("static", name).read_bytes()
    return Response(data, media_type=STATIC_FILES[name] + "; charset=utf-8", headers={"cache-control": "no-cache"})


async def _in_thread(function, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


def _launch_quietly(launch, command) -> None:
    try:
        launch(command)
    except ScenegrepError as exc:
        log.warning("%s", exc)


def _errors(app: FastAPI) -> None:
    """Every error is JSON `{"error": "one line"}`; a bug is logged here, never sent."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        problems = []
        for error in exc.errors()[:3]:
            where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse({"error": "; ".join(problems) or "invalid request"}, status_code=422)

    @app.exception_handler(DamagedIndexError)
    async def damaged(request, exc):
        return JSONResponse({"error": str(exc)}, status_code=503)

    @app.exception_handler(ScenegrepError)
    async def refused(request, exc):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def bug(request, exc):
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal error; the server's log has the details"}, status_code=500)
