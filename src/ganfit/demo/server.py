"""The demo's HTTP server (standard library ``http.server``, loopback by default).

Routes:
    GET  /                              the page
    GET  /static/ganfit-viewer.min.js   the vendored viewer
    POST /api/fit?preset=P&filename=F   body = the photo's bytes -> {"id": ...} (202), or {"error": ...} (400/413)
    POST /api/fit?preset=P&example=E    a bundled example photo
    GET  /api/jobs/<id>                 the job's state (see ``FitQueue.status``)
    GET  /jobs/<id>/files/<name>        one result file (mesh.glb, overlay.png, ...)
    GET  /jobs/<id>/bundle.zip          the results as a zip
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from ganfit.demo.jobs import MAX_UPLOAD_BYTES, FitQueue, JobError
from ganfit.demo.page import demo_page
from ganfit.report.static import viewer_source

logger = logging.getLogger(__name__)

TYPES = {".glb": "model/gltf-binary", ".obj": "text/plain", ".mtl": "text/plain", ".json": "application/json"}


class DemoHandler(BaseHTTPRequestHandler):
    """Request handler; the server object carries the queue (``server.queue``)."""

    server: DemoServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        logger.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------------------------------------------- replies
    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, default=str).encode(), "application/json")

    def _file(self, path: Path, download_name: str | None = None) -> None:
        if not path.is_file():
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such file: {path.name}"})
            return
        kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        extra = {"Content-Disposition": f'attachment; filename="{download_name}"'} if download_name else None
        self._send(HTTPStatus.OK, path.read_bytes(), kind, extra)

    # ------------------------------------------------------------------------------------------------- routes
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        queue = self.server.queue
        if url.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, demo_page().encode(), "text/html; charset=utf-8")
        elif url.path == "/static/ganfit-viewer.min.js":
            self._file(viewer_source())
        elif match := re.fullmatch(r"/api/jobs/([0-9a-f]{12})", url.path):
            job = queue.jobs.get(match.group(1))
            if job is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": "no such job"})
            else:
                self._json(HTTPStatus.OK, queue.status(job))
        elif match := re.fullmatch(r"/jobs/([0-9a-f]{12})/files/([A-Za-z0-9_.-]+)", url.path):
            job = queue.jobs.get(match.group(1))
            if job is None or match.group(2) not in job.files():
                self._json(HTTPStatus.NOT_FOUND, {"error": "no such file"})
            else:
                self._file(job.out / match.group(2))
        elif match := re.fullmatch(r"/jobs/([0-9a-f]{12})/bundle\.zip", url.path):
            job = queue.jobs.get(match.group(1))
            if job is None or job.state != "done":
                self._json(HTTPStatus.NOT_FOUND, {"error": "no finished job with that id"})
            else:
                self._file(queue.bundle(job), download_name=f"{job.name}.zip")
        elif url.path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no route {url.path}"})

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        if url.path != "/api/fit":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no route {url.path}"})
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_UPLOAD_BYTES:
            self.close_connection = True  # the body is not read
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"uploads are limited to {MAX_UPLOAD_BYTES} B"})
            return
        data = self.rfile.read(length) if length else b""
        preset = query.get("preset", "fast")
        try:
            if "example" in query:
                job = self.server.queue.submit_example(query["example"], preset)
            else:
                job = self.server.queue.submit_upload(data, query.get("filename", "photo"), preset)
        except JobError as error:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
            return
        self._json(HTTPStatus.ACCEPTED, self.server.queue.status(job))


class DemoServer(ThreadingHTTPServer):
    """The demo on ``host:port`` (port 0 = any free port: see ``url``) with its own fit queue in ``root``."""

    daemon_threads = True

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 7860, overrides: Sequence[str] = ()):
        self.queue = FitQueue(root, overrides)
        super().__init__((host, port), DemoHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start_background(self) -> threading.Thread:
        """Serve in a daemon thread (tests, notebooks); stop with ``shutdown()`` then ``server_close()``."""
        thread = threading.Thread(target=self.serve_forever, name="ganfit-demo-http", daemon=True)
        thread.start()
        return thread

    def server_close(self) -> None:
        self.queue.close()
        super().server_close()
