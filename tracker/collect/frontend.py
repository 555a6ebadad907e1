"""The hot routes as a thin WSGI layer in front of Flask: beacon, GIF fallback, open pixel, click.

Measured on this kind of machine, Flask's per-request machinery alone caps a pixel endpoint near
7,600 requests/s, far below the 20,000 events/s budget; these four routes are therefore answered
here, with the same pipeline and the same JSON errors, and every other path falls through to the
Flask app (login, dashboard, unsubscribe page, the snippet file). Nothing here raises to the
server: an ``OdnosError`` becomes its 4xx/503 JSON, anything unexpected a logged JSON 500.
Plausible's ``/api/event`` and Umami's ``/api/send`` are beacons in other trackers' words
(``tracker.collect.dropin``), answered here the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from tracker.collect.beacon import BadBeacon, parse_body, parse_query
from tracker.collect.clients import NO_PROXIES, TrustedProxies, client_of
from tracker.collect.dropin import ROUTES as DROPIN_ROUTES
from tracker.collect.pipeline import Pipeline
from tracker.enrich.referrer import split_url
from tracker.errors import OdnosError
from tracker.metrics import Refusals

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
NO_STORE = ("Cache-Control", "no-store, no-cache, must-revalidate, private")
_GIF_HEADERS = [("Content-Type", "image/gif"), ("Content-Length", str(len(GIF))), NO_STORE,
                ("Pragma", "no-cache")]
_STATUS = {200: "200 OK", 202: "202 Accepted", 204: "204 No Content", 302: "302 Found",
           400: "400 Bad Request", 403: "403 Forbidden", 404: "404 Not Found",
           405: "405 Method Not Allowed", 411: "411 Length Required", 413: "413 Content Too Large",
           415: "415 Unsupported Media Type", 500: "500 Internal Server Error",
           503: "503 Service Unavailable"}
_BEACON_TYPES = ("application/json", "text/plain", "")


class Frontend:
    """WSGI middleware: ``Frontend(flask_app.wsgi_app, pipeline, max_body, max_events)``.

    ``refusals`` counts the requests refused, by error code, for ``/metrics``.
    """

    def __init__(self, app: WSGIApp, pipeline: Pipeline, max_body: int, max_events: int,
                 trusted: TrustedProxies = NO_PROXIES, refusals: Refusals | None = None) -> None:
        self.app = app
        self.refusals = refusals or Refusals()
        self.trusted = trusted
        self.pipeline = pipeline
        self.max_body = max_body
        self.max_events = max_events

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/e":
            handler = self.beacon
        elif path.startswith("/o/"):
            handler = self.pixel
        elif path.startswith("/c/"):
            handler = self.click
        elif path == "/e.gif":
            handler = self.gif_beacon
        elif path in DROPIN_ROUTES:
            handler = self.dropin
        else:
            return self.app(environ, start_response)
        try:
            return handler(environ, start_response)
        except OdnosError as exc:
            self.refusals.add(exc.code)
            return _json(start_response, exc.status, exc.to_json(), self._cors(environ))
        except Exception:
            self.refusals.add("internal")
            log.exception("collector error on %s", path)
            return _json(start_response, 500, {"error": {"code": "internal", "message":
                                                         "internal error; see the collector log"}})

    # -- routes -------------------------------------------------------------------------------

    def beacon(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method == "OPTIONS":
            return self._preflight(environ, start_response)
        self._check_post(environ, "send events with POST (or GET /e.gif)")
        events = parse_body(self._body(environ), self.max_events)
        accepted = self.pipeline.beacon(events, client_of(environ, self.trusted))
        body = b'{"ok":true,"accepted":%d}' % accepted
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(_STATUS[202], headers + self._cors(environ, events[0]["site"]))
        return [body]

    def dropin(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Plausible's ``/api/event`` and Umami's ``/api/send`` (``tracker.collect.dropin``), as ``/e``."""
        route = DROPIN_ROUTES[environ["PATH_INFO"]]
        if environ["REQUEST_METHOD"] == "OPTIONS":
            return self._preflight(environ, start_response, route.allow_headers)
        self._check_post(environ, "send the tracker's event with POST")
        events = route.parse(self._body(environ), self.pipeline.sites)
        self.pipeline.beacon(events, client_of(environ, self.trusted))
        headers = [("Content-Type", route.content_type), ("Content-Length", str(len(route.body)))]
        start_response(_STATUS[route.status], headers + self._cors(environ, events[0]["site"]))
        return [route.body]

    def gif_beacon(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        event = parse_query(environ.get("QUERY_STRING", ""))
        self.pipeline.beacon([event], client_of(environ, self.trusted))
        start_response(_STATUS[200], _GIF_HEADERS)
        return [GIF]

    def pixel(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        self.pipeline.open(environ["PATH_INFO"][3:], client_of(environ, self.trusted))
        start_response(_STATUS[200], _GIF_HEADERS)
        return [GIF]

    def click(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        redirect = self.pipeline.click(environ["PATH_INFO"][3:], client_of(environ, self.trusted))
        start_response(_STATUS[302], [("Location", redirect.location), NO_STORE,
                                      ("Referrer-Policy", "no-referrer"), ("Content-Length", "0")])
        return [b""]

    # -- helpers ------------------------------------------------------------------------------

    def _check_post(self, environ: dict, hint: str) -> None:
        if environ["REQUEST_METHOD"] != "POST":
            raise OdnosError(hint, code="method_not_allowed", status=405)
        content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type not in _BEACON_TYPES:
            raise OdnosError(f"content type {content_type!r}: send application/json or text/plain",
                             code="unsupported_media_type", status=415)

    def _body(self, environ: dict) -> bytes:
        length = environ.get("CONTENT_LENGTH") or ""
        if length:
            if not length.isdigit():
                raise BadBeacon("Content-Length is not a number", code="bad_request")
            if int(length) > self.max_body:
                raise BadBeacon(f"the body is {length} bytes; at most {self.max_body}", code="too_large",
                                status=413)
            return environ["wsgi.input"].read(int(length))
        body = environ["wsgi.input"].read(self.max_body + 1)
        if len(body) > self.max_body:
            raise BadBeacon(f"the body is over {self.max_body} bytes", code="too_large", status=413)
        return body

    def _cors(self, environ: dict, site_id: str | None = None) -> list[tuple[str, str]]:
        """Allow the page's origin to read the answer only when it is one of the site's domains."""
        origin = environ.get("HTTP_ORIGIN", "")
        if not origin:
            return []
        host, _ = split_url(origin)
        site = self.pipeline.sites.get(site_id) if site_id else None
        allowed = (self.pipeline.sites.allows(site, host) if site is not None
                   else self.pipeline.sites.any_allows(host))
        if not allowed:
            return []
        return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]

    def _preflight(self, environ: dict, start_response: Callable,
                   allow_headers: str = "Content-Type") -> Iterable[bytes]:
        headers = self._cors(environ)
        if headers:
            headers += [("Access-Control-Allow-Methods", "POST"),
                        ("Access-Control-Allow-Headers", allow_headers),
                        ("Access-Control-Max-Age", "86400")]
        start_response(_STATUS[204], headers + [("Content-Length", "0")])
        return [b""]


def _json(start_response: Callable, status: int, payload: Any,
          extra: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
    body = orjson.dumps(payload)
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), NO_STORE]
    start_response(_STATUS.get(status, f"{status} Error"), headers + (extra or []))
    return [body]
