"""The dashboard's ASGI application (Starlette): the page, its JSON API, and the live feed over a WebSocket.

Routes: ``/`` the page and ``/static/`` its files; ``/api/state`` the whole picture now; ``/api/gallery?q=``
identities (list, search); ``POST /api/gallery/{rename,enroll,merge,remove}`` changes (token needed);
``/api/det`` the threshold file's DET data; ``/ws`` the feed: a snapshot, then batches of changes.

Why every gallery change is told to every page: a page that renamed someone and the other pages open on the
site must agree at once; changes made elsewhere (a shell, a node enrolling) are seen from the gallery's
``generation``, looked at every ``GALLERY_POLL_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from sensors.errors import GaitwatchError
from stream.dashboard.access import authorized
from stream.dashboard.clients import Client, Clients
from stream.dashboard.desk import Desk
from stream.dashboard.feed import Feed
from stream.dashboard.live import LiveState

STATIC = Path(__file__).parent / "static"
GALLERY_POLL_S = 1.0
MAX_BODY = 4096  # bytes of a change request: an id or two and a name


@dataclass
class Dashboard:
    """What the application serves: the live picture, the pages, the feed, and optionally a gallery and DET data."""

    state: LiveState
    clients: Clients
    feed: Feed | None
    endpoint: str
    desk: Desk | None = None
    det: dict | None = None
    token: str | None = None  # None: no change is accepted (read-only)
    hosts: list[str] = field(default_factory=lambda: ["*"])  # Host headers answered (DNS rebinding)
    generation: int | None = None


def build_app(dashboard: Dashboard) -> Starlette:
    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def state(request: Request) -> Response:
        return JSONResponse({**dashboard.state.snapshot(), **_about(dashboard)})

    async def det(request: Request) -> Response:
        return JSONResponse(dashboard.det)

    async def identities(request: Request) -> Response:
        desk = _desk(dashboard)
        if isinstance(desk, Response):
            return desk
        return await _answer(desk.call(desk.identities, request.query_params.get("q", "")))

    def change(work_name: str, fields: tuple[str, ...], text_field: str | None = None):
        async def endpoint(request: Request) -> Response:
            desk = _desk(dashboard)
            if isinstance(desk, Response):
                return desk
            if dashboard.token is None or not desk.writable:
                return _error(403, "this dashboard is read-only (started with --read-only, or the gallery is)")
            if not authorized(request.headers.get("authorization"), dashboard.token):
                return _error(401, "a change needs the dashboard's write token (Authorization: Bearer TOKEN)")
            body = await _body(request, fields, text_field)
            if isinstance(body, Response):
                return body
            work = getattr(desk, work_name)
            answer = await _answer(desk.call(work, *body))
            if answer.status_code == 200:
                await _gallery_changed(dashboard, json.loads(answer.body))
            return answer

        return endpoint

    async def feed_socket(websocket: WebSocket) -> None:
        origin = websocket.headers.get("origin")
        if origin and urlsplit(origin).netloc != websocket.headers.get("host"):
            await websocket.close(code=1008)  # another site's page in the same browser
            return
        await websocket.accept()
        await _serve_page(dashboard, websocket)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        watcher = asyncio.create_task(_watch_gallery(dashboard)) if dashboard.desk is not None else None
        if dashboard.feed is not None:
            dashboard.feed.start()
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            if dashboard.feed is not None:
                dashboard.feed.stop()

    routes = [
        Route("/", page),
        Route("/api/state", state),
        Route("/api/det", det),
        Route("/api/gallery", identities),
        Route("/api/gallery/rename", change("rename", ("id",), "name"), methods=["POST"]),
        Route("/api/gallery/enroll", change("enroll", ("id",), "name"), methods=["POST"]),
        Route("/api/gallery/merge", change("merge", ("source", "into")), methods=["POST"]),
        Route("/api/gallery/remove", change("remove", ("id",)), methods=["POST"]),
        WebSocketRoute("/ws", feed_socket),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=dashboard.hosts)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def _about(dashboard: Dashboard) -> dict:
    desk = dashboard.desk
    return {
        "endpoint": dashboard.endpoint,
        "gallery": None if desk is None else {"where": desk.where, "writable": desk.writable and bool(dashboard.token)},
        "det": dashboard.det,
        "pages": dashboard.clients.counts(),
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _desk(dashboard: Dashboard) -> Desk | Response:
    if dashboard.desk is None:
        return _error(404, "no gallery: start the dashboard with --gallery to manage one")
    return dashboard.desk


async def _body(request: Request, ids: tuple[str, ...], text: str | None) -> list | Response:
    """The request's JSON fields: ``ids`` as identity ids (whole numbers), ``text`` as a string."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return _error(413, f"request body over {MAX_BODY} bytes")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return _error(400, "the request body is not JSON")
    if not isinstance(body, dict):
        return _error(400, "the request body must be a JSON object")
    values: list[Any] = []
    for name in ids:
        value = body.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
            return _error(400, f"{name}: an identity id (a whole number above 0), got {value!r}")
        values.append(value)
    if text is not None:
        value = body.get(text)
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            return _error(400, f"{text}: some text (1 to 200 characters), got {value!r}")
        values.append(value)
    return values


async def _answer(work) -> JSONResponse:
    """The gallery's answer, or its one-line error as 400 (a missing identity, a read-only gallery, ...)."""
    try:
        return JSONResponse(await work)
    except GaitwatchError as err:
        return _error(400, str(err))


async def _gallery_changed(dashboard: Dashboard, change: dict | None) -> None:
    desk = dashboard.desk
    assert desk is not None
    with contextlib.suppress(GaitwatchError):
        dashboard.generation = await desk.call(desk.generation)
    told = {"kind": "gallery", "key": "gallery", "generation": dashboard.generation, "change": change}
    dashboard.clients.offer([told])


async def _watch_gallery(dashboard: Dashboard) -> None:
    """Tell the pages when the gallery changed by another hand (seen from its generation)."""
    desk = dashboard.desk
    assert desk is not None
    while True:
        try:
            now = await desk.call(desk.generation)
        except GaitwatchError:
            now = dashboard.generation  # unreachable for a moment: looked at again next time
        if now != dashboard.generation:
            dashboard.generation = now
            dashboard.clients.offer([{"kind": "gallery", "key": "gallery", "generation": now, "change": None}])
        await asyncio.sleep(GALLERY_POLL_S)


async def _serve_page(dashboard: Dashboard, websocket: WebSocket) -> None:
    """Send one page its snapshot, then its changes as they come; a slow page only makes its own queue coalesce."""
    client = Client(asyncio.get_running_loop())
    dashboard.clients.add(client)
    listening = asyncio.create_task(_until_closed(websocket, client))
    try:
        while True:
            await client.wake.wait()
            if client.closed:
                return
            snapshot, changes = client.take()
            if snapshot:
                state = {**dashboard.state.snapshot(), **_about(dashboard)}
                await websocket.send_text(json.dumps({"type": "snapshot", "state": state, "page": client.counts()}))
            if changes:
                message = {"type": "changes", "changes": changes, "page": client.counts()}
                await websocket.send_text(json.dumps(message))
    except (WebSocketDisconnect, RuntimeError, OSError):
        return  # the page went away mid-send
    finally:
        dashboard.clients.remove(client)
        listening.cancel()


async def _until_closed(websocket: WebSocket, client: Client) -> None:
    """Read (and ignore) what the page sends until it goes away; then the sender stops."""
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        client.close()
