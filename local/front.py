"""The local CloudFront + Lambda function URLs: one HTTP server on 127.0.0.1.

- `/api/event` (and Umami's `/api/send`, `/api/batch`) → a function URL event for the real ingest
  handler; every other `/api/*` → the real query handler (FastAPI behind Mangum), as CloudFront's
  cache behaviors route them to each function's URL (decision 0023).
- `/js/script.js` → the built tracker; anything else → the built dashboard, as S3 would serve it,
  with the security headers CloudFront's response-headers policy adds.
The handlers never know they are not in AWS. As CloudFront does, the front names the viewer in
CloudFront-Viewer-Address and adds the origin secret the handlers check before they believe it
(decision 0016); locally the secret is a fixed, public one, ORIGIN_ENVIRONMENT its digest. As a
function URL does, it gives the handlers the URL's own Host, never the viewer's: the query
function knows the dashboard's origin from its settings (PUBLIC_URL_VARIABLE, set by the stack).
`api_gateway_event` builds what the former front door, the HTTP API, sent (the same payload
format 2.0; many tests still send it).
"""

from __future__ import annotations

import base64
import ipaddress
import mimetypes
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from core import edge
from core.observability import logger
from local.outbox import PAGE_HEADERS as OUTBOX_HEADERS
from local.outbox import PATH as OUTBOX_PATH
from local.runtime import LocalFunction

log = logger("local-front")

INGEST_PATHS = ("/api/event", "/api/send", "/api/batch")
MAX_BODY = 1024 * 1024  # a function URL's payload limit is larger; our ingest enforces its own
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-frame-options": "DENY",
}
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")
# Only ever local: AWS's comes from terraform/cdn.tf (random_password, decision 0016).
LOCAL_ORIGIN_SECRET = "liveinsight-local-front-origin-secret"
# What the handlers behind this front need in their environment to believe it.
ORIGIN_ENVIRONMENT = {"LIVEINSIGHT_ORIGIN_SECRET_SHA256": edge.origin_digest(LOCAL_ORIGIN_SECRET)}
# The query function's setting that names the dashboard's origin: the Host it sees is the URL's.
PUBLIC_URL_VARIABLE = "LIVEINSIGHT_PUBLIC_URL"


LOCATION_HEADERS = (edge.VIEWER_COUNTRY, edge.VIEWER_REGION, edge.VIEWER_CITY)


def edge_headers(headers: dict[str, str], client_ip: str, origin_secret: str) -> dict[str, str]:
    """A request's headers as CloudFront hands them to a function URL: the viewer named in
    CloudFront-Viewer-Address, the peer appended to X-Forwarded-For, the origin secret added, and
    whatever a client sent under those names (or any CloudFront-* name) replaced.

    Locally, a loopback client that sends X-Forwarded-For is a load generator speaking for
    simulated viewers (demo traffic, tests): it is believed, and so are its CloudFront-Viewer-Country,
    -Country-Region and -City (there is no geolocation here)."""
    loopback = _is_loopback(client_ip)
    out: dict[str, str] = {}
    forwarded = ""
    location: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key == "x-forwarded-for":
            forwarded = value
        elif key in LOCATION_HEADERS:
            location[key] = value
        elif key != edge.ORIGIN_HEADER and not key.startswith("cloudfront-"):
            out[name] = value
    viewer = client_ip
    if forwarded and loopback:
        viewer = forwarded.split(",")[0].strip() or client_ip
    out["x-forwarded-for"] = f"{forwarded}, {client_ip}" if forwarded else client_ip
    out[edge.VIEWER_ADDRESS] = f"[{viewer}]:443" if ":" in viewer else f"{viewer}:443"
    if loopback:
        out.update((k, v) for k, v in location.items() if v)
    out[edge.ORIGIN_HEADER] = origin_secret
    return out


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def api_gateway_event(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str
) -> dict[str, Any]:
    """An HTTP API (payload format 2.0) event, as API Gateway builds it."""
    event = _payload_v2(method, raw_path, headers, body, source_ip)
    event["requestContext"].update(apiId="local", domainPrefix="local")
    return event


def function_url_event(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
    url_id: str = "local",
) -> dict[str, Any]:
    """A Lambda function URL's event (decision 0023): payload format 2.0 as the HTTP API's, but
    named after the URL (`<url-id>.lambda-url.<region>.on.aws`), with `pathParameters`,
    `stageVariables` and `requestContext.authentication` present as null, as Lambda sends
    them for auth type NONE. The Host a function URL sees is its own: CloudFront must not
    forward the viewer's."""
    domain = f"{url_id}.lambda-url.us-east-1.on.aws"
    without_host = {k: v for k, v in headers.items() if k.lower() != "host"}
    event = _payload_v2(method, raw_path, {**without_host, "host": domain}, body, source_ip)
    event["requestContext"].update(
        apiId=url_id, domainName=domain, domainPrefix=url_id, authentication=None
    )
    event.update(pathParameters=None, stageVariables=None)
    return event


def _payload_v2(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str
) -> dict[str, Any]:
    """What the HTTP API and function URLs share: payload format 2.0."""
    parts = urlsplit(raw_path)
    lowered: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers.items():
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    content_type = lowered.get("content-type", "")
    is_text = not body or content_type.startswith(TEXT_TYPES) or "charset" in content_type
    if is_text:
        try:
            text_body: str | None = body.decode("utf-8")
        except UnicodeDecodeError:
            is_text, text_body = False, None
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": unquote(parts.path),
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "domainName": lowered.get("host", "127.0.0.1"),
            "http": {
                "method": method,
                "path": unquote(parts.path),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:20],
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        event["body"] = text_body if is_text else base64.b64encode(body).decode()
    return event


class Front:
    def __init__(
        self,
        host: str,
        port: int,
        ingest: LocalFunction,
        query: LocalFunction,
        dashboard_dir: Path,
        tracker_file: Path,
        origin_secret: str = LOCAL_ORIGIN_SECRET,
        outbox: Callable[[str], tuple[int, bytes]] | None = None,
    ) -> None:
        self.origin_secret = origin_secret
        # The local outbox page (local/outbox.py): the local front's alone, never the functions'.
        self.outbox = outbox
        self.ingest = ingest
        self.query = query
        self.dashboard_dir = dashboard_dir
        self.tracker_file = tracker_file
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "LiveInsightLocal"

            def log_message(self, format: str, *args: Any) -> None:
                return  # access logs would carry client IPs and user agents

            def do_GET(self) -> None:
                front.handle(self)

            do_POST = do_OPTIONS = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="front", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ---- routing ------------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        path = urlsplit(request.path).path
        try:
            if path.startswith("/api/"):
                self._api(request, self.ingest if path in INGEST_PATHS else self.query)
            elif self.outbox and (path == OUTBOX_PATH or path.startswith(OUTBOX_PATH + "/")):
                status, page = self.outbox(path)
                self._send(request, status, page, dict(OUTBOX_HEADERS))
            elif path in ("/js/script.js", "/js/liveinsight.js"):
                self._file(request, self.tracker_file, cache="public, max-age=300")
            else:
                self._static(request, path)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _api(self, request: BaseHTTPRequestHandler, function: LocalFunction) -> None:
        length = int(request.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self._send(
                request,
                413,
                b'{"message":"Request Entity Too Large"}',
                {"content-type": "application/json"},
            )
            return
        body = request.rfile.read(length) if length else b""
        client_ip = request.client_address[0]
        headers = edge_headers(dict(request.headers.items()), client_ip, self.origin_secret)
        # The function URL's caller is CloudFront; locally the connection's own address.
        event = function_url_event(request.command, request.path, headers, body, client_ip)
        try:
            result = function.invoke(event)
        except Exception:
            log.exception("handler failed", extra={"function": function.name})
            self._send(
                request,
                500,
                b'{"message":"Internal Server Error"}',
                {"content-type": "application/json"},
            )
            return
        status = int(result.get("statusCode", 200))
        out_headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        cookies = result.get("cookies") or []
        self._send(request, status, payload, out_headers, cookies)

    def _static(self, request: BaseHTTPRequestHandler, path: str) -> None:
        relative = unquote(path).lstrip("/") or "index.html"
        target = (self.dashboard_dir / relative).resolve()
        root = self.dashboard_dir.resolve()
        if root not in target.parents and target != root:
            self._send(request, 403, b"Forbidden", {"content-type": "text/plain"})
            return
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            # Single-page fallback, as a CloudFront custom error response would do.
            target = root / "index.html"
        self._file(
            request, target, cache="no-cache" if target.suffix == ".html" else "public, max-age=300"
        )

    def _file(self, request: BaseHTTPRequestHandler, target: Path, cache: str) -> None:
        if not target.is_file():
            message = f"{target.name} is not built yet: run `make build`".encode()
            self._send(request, 404, message, {"content-type": "text/plain"})
            return
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        headers = {"content-type": content_type, "cache-control": cache, **SECURITY_HEADERS}
        if target == self.tracker_file:
            headers["access-control-allow-origin"] = "*"
        self._send(request, 200, target.read_bytes(), headers)

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str],
        cookies: list[str] | None = None,
    ) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name != "content-length":
                request.send_header(name, value)
        for cookie in cookies or []:
            request.send_header("set-cookie", cookie)
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)
