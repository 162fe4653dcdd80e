"""The desk's small HTTP server: the editing page, its proxy and four JSON actions,
on 127.0.0.1 only.

Anyone on the machine can reach a loopback port, and any web page the editor has open
can make the browser send requests to it, so every request must carry the random
token of the printed address (403 without), and name this server in its Host header
(403 otherwise: a DNS-rebinding page names its own). No part of a request becomes a
path: the routes are fixed, and tracks are named by language code, looked up among the
film's own tracks. Bodies are size-limited. Stopping (Ctrl-C, SIGTERM) waits for a save
in progress, so every file is whole.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .desk import Desk, DeskError, Stale
from .errors import SubpipeError
from .review import findings_data

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# A feature film's four tracks as JSON are a few MB; a body past this is no edit.
MAX_BODY = 32 << 20
TOKEN_HEADER = "X-Subpipe-Token"
_CHUNK = 1 << 16


class DeskServer(ThreadingHTTPServer):
    """The server of one desk, with its token."""

    daemon_threads = True

    def __init__(self, desk: Desk, port: int = 0, token: str | None = None):
        self.desk = desk
        self.token = token or secrets.token_urlsafe(24)
        super().__init__((HOST, port), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/?token={self.token}"

    def hosts(self) -> tuple[str, ...]:
        return (f"{HOST}:{self.port}", f"localhost:{self.port}")


def serve(desk: Desk, port: int = 0, *, announce: Callable[[str], None] = print) -> None:
    """Serve ``desk`` until stopped; ``announce`` gets the address (with its token) first.

    A stop signal arrives as ``Interrupted`` (a KeyboardInterrupt) in this thread: the
    server stops taking requests and a save under way finishes before it goes on up.
    """
    try:
        server = DeskServer(desk, port)
    except OSError as exc:
        raise DeskError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
    with server:
        announce(server.url)
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            with desk.lock:  # a commit in progress completes; the next waits for nobody
                pass


class _Handler(BaseHTTPRequestHandler):
    server: DeskServer
    server_version = "subpipe-desk"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.info("desk: " + format, *args)

    # ---- the gate --------------------------------------------------------------------

    def _allowed(self) -> bool:
        if self.headers.get("Host", "") not in self.server.hosts():
            self._error(HTTPStatus.FORBIDDEN, "this server answers only to its own address")
            return False
        given = self.headers.get(TOKEN_HEADER) or parse_qs(urlsplit(self.path).query).get("token", [""])[0]
        if not hmac.compare_digest(given.encode(), self.server.token.encode()):
            self._error(HTTPStatus.FORBIDDEN, "a token is needed: open the address subpipe printed")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._allowed():
            return
        route = urlsplit(self.path).path
        if route == "/":
            self._send(HTTPStatus.OK, self.server.desk.page(self.server.token).encode("utf-8"),
                       "text/html; charset=utf-8")
        elif route == "/proxy":
            self._proxy()
        else:
            self._error(HTTPStatus.NOT_FOUND, "no such page")

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        if not self._allowed():
            return
        action = _ACTIONS.get(urlsplit(self.path).path)
        if action is None:
            self._error(HTTPStatus.NOT_FOUND, "no such action")
            return
        body = self._body()
        if body is None:
            return
        try:
            answer = action(self.server.desk, body)
        except Stale as exc:
            self._json(HTTPStatus.CONFLICT, {"error": str(exc), "diff": exc.diff})
        except DeskError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except SubpipeError as exc:
            status = HTTPStatus.CONFLICT if exc.exit_code == 3 else HTTPStatus.BAD_REQUEST
            self._json(status, {"error": str(exc)})
        else:
            self._json(HTTPStatus.OK, answer)

    # ---- bodies and answers ------------------------------------------------------------

    def _body(self) -> dict | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(HTTPStatus.LENGTH_REQUIRED, "a body needs its Content-Length")
            return None
        if not 0 <= length <= MAX_BODY:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a body may hold at most {MAX_BODY >> 20} MB")
            return None
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            self._error(HTTPStatus.BAD_REQUEST, "the body is not JSON")
            return None
        if not isinstance(body, dict):
            self._error(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
            return None
        return body

    def _proxy(self) -> None:
        path = self.server.desk.proxy
        size = path.stat().st_size
        start, end = 0, size - 1
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            first, _, last = ranged[6:].split(",")[0].partition("-")
            try:
                start = int(first) if first else max(0, size - int(last))
                end = min(int(last), size - 1) if first and last else size - 1
            except ValueError:
                start, end = size, 0
            if start > end or start >= size:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.send_response(HTTPStatus.PARTIAL_CONTENT if ranged else HTTPStatus.OK)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self._common_headers()
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            left = end - start + 1
            try:
                while left > 0:
                    chunk = f.read(min(_CHUNK, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the player seeks elsewhere and drops this request

    def _json(self, status: HTTPStatus, doc: Any) -> None:
        self._send(status, json.dumps(doc, ensure_ascii=False).encode("utf-8"), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self.close_connection = True
        self._json(status, {"error": message})

    def _send(self, status: HTTPStatus, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self._common_headers()
        self.end_headers()
        self.wfile.write(data)

    def _common_headers(self) -> None:
        # The token is in the address: no page may learn it from a Referer.
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")


# ---- the actions: a request's JSON in, an answer's JSON out ----------------------------

def _judge(desk: Desk, body: dict) -> dict:
    track = desk.track_from(body.get("track"), body.get("cues"))
    return findings_data(track, desk.judge(track))


def _save(desk: Desk, body: dict) -> dict:
    tracks = body.get("tracks")
    if not isinstance(tracks, dict):
        raise DeskError("a save names its tracks")
    edits = {}
    for code, item in tracks.items():
        if not isinstance(item, dict) or not isinstance(item.get("version"), str):
            raise DeskError(f"{str(code)[:20]}: a save gives each track's version and cues")
        edits[code] = (item["version"], desk.track_from(code, item.get("cues")))
    saved = desk.save(edits)
    return {"written": [p.name for p in saved.paths], "versions": saved.versions,
            "retranslate": saved.retranslate}


def _retranslate(desk: Desk, body: dict) -> dict:
    saved = desk.retranslate()
    return {"written": [p.name for p in saved.paths], "versions": saved.versions, "kept": list(saved.kept),
            "notices": list(saved.notices)}


def _signoff(desk: Desk, body: dict) -> dict:
    return desk.sign_off(body)


_ACTIONS: dict[str, Callable[[Desk, dict], dict]] = {
    "/api/judge": _judge, "/api/save": _save, "/api/retranslate": _retranslate, "/api/signoff": _signoff,
}

