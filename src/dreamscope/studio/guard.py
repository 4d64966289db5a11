"""Who may talk to the studio: requests addressed to this server by name (no DNS rebinding), sent by its own page
(no cross-site requests), and, with a token, by someone who has it.

An ASGI middleware, not a Starlette BaseHTTPMiddleware, so streamed responses (the event stream) pass through
untouched. It also adds the headers that keep the page and the served files from being framed by other sites
or sniffed as another type.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import parse_qs, urlsplit

from ..fields import excerpt

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
# The page's own files, its API and the report pages it frames: nothing from elsewhere.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)
# Bodies other than uploads are jobs' settings: a few kB. More is refused unread (413), so a client cannot make
# the server hold (and echo back) megabytes of JSON.
BODY_LIMIT = 64 * 1024
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"content-security-policy", PAGE_POLICY.encode()),
]


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None] | None:
    """'127.0.0.1:8765' -> ('127.0.0.1', 8765); '[::1]:8765' -> ('::1', 8765); None when malformed."""
    try:
        parts = urlsplit(f"//{value}")
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None


class Access:
    """The rules: which Host names are ours, and the token (None: none needed)."""

    def __init__(self, host: str, port: int, token: str | None = None, extra_hosts=()):
        self.port = port
        self.token = token
        bound = host.strip("[]").lower()
        # Bound to every interface (or one that is not loopback), the server cannot know every name it is reached
        # by; a token is then required (server.py makes one), which a rebinding site does not have.
        self.check_host = is_loopback(bound) or bool(extra_hosts)
        self.names = {*LOOPBACK_NAMES, bound, *(h.lower() for h in extra_hosts)}
        self.cookie = f"dreamscope_studio_{port}"  # cookies ignore ports: one name per server

    def host_problem(self, host: str | None) -> str | None:
        if not self.check_host:
            return None
        parsed = split_host(host or "")
        if parsed is None or parsed[0] not in self.names or parsed[1] not in (None, self.port):
            return f"this server answers to 127.0.0.1:{self.port} and localhost:{self.port}, not {excerpt(host)}; open the address it printed"
        return None

    def origin_problem(self, origin: str | None, host: str | None) -> str | None:
        """An Origin, when sent, must be this server's own (the page's): any other is another site's request."""
        if origin is None:
            return None
        try:
            parts = urlsplit(origin)
        except ValueError:  # not a URL at all
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != (host or "").lower():
            return f"requests from another site ({excerpt(origin)}) are refused; use the studio's own page"
        return None

    def has_token(self, authorization: str | None, cookies: dict[str, str]) -> bool:
        if self.token is None:
            return True
        given = None
        if authorization and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        given = given or cookies.get(self.cookie)
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())


class Guard:
    """The ASGI middleware that applies `Access` to every HTTP request."""

    def __init__(self, app, access: Access):
        self.app = app
        self.access = access

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            return await self._websocket(scope, receive, send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from starlette.requests import Request
        from starlette.responses import JSONResponse, RedirectResponse

        request = Request(scope)
        headers = request.headers
        access = self.access
        problem = access.host_problem(headers.get("host")) or access.origin_problem(headers.get("origin"), headers.get("host"))
        response = None
        if problem:
            response = JSONResponse({"detail": {"field": None, "message": problem}}, status_code=403)
        elif access.token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [None])[0]
            if scope["path"] == "/" and given is not None and access.token_matches(given):
                # Opened from the printed address: remember the token in a cookie, and drop it from the address bar.
                response = RedirectResponse("/", status_code=303)
                response.set_cookie(access.cookie, access.token, httponly=True, samesite="strict", path="/")
            elif not access.has_token(headers.get("authorization"), request.cookies):
                response = JSONResponse(
                    {
                        "detail": {
                            "field": None,
                            "message": "this studio needs its token: open the address "
                            "dreamscope studio printed (with ?token=...), or send Authorization: Bearer TOKEN",
                        }
                    },
                    status_code=401,
                )
        if response is None and scope["method"] in STATE_CHANGING:
            if headers.get("sec-fetch-site") == "cross-site":  # defence in depth: browsers send Origin too
                response = _refusal(403, None, "a request from another site is refused (Sec-Fetch-Site: cross-site)")
            elif scope["path"] != "/api/uploads":
                receive, response = await _limited(receive, headers.get("content-length"))
        if response is not None:
            return await response(scope, receive, _with_headers(send))
        return await self.app(scope, receive, _with_headers(send))

    async def _websocket(self, scope, receive, send):
        """A WebSocket (the live view) passes the same checks; one that fails is refused at the handshake (403)."""
        from starlette.requests import HTTPConnection

        connection = HTTPConnection(scope)
        headers, access = connection.headers, self.access
        problem = access.host_problem(headers.get("host")) or access.origin_problem(headers.get("origin"), headers.get("host"))
        if problem is None and headers.get("sec-fetch-site") == "cross-site":
            problem = "a request from another site is refused (Sec-Fetch-Site: cross-site)"
        if problem is None and not access.has_token(headers.get("authorization"), connection.cookies):
            problem = "this studio needs its token"
        if problem is not None:
            await receive()  # the handshake's websocket.connect
            return await send({"type": "websocket.close", "code": 1008, "reason": problem[:120]})
        return await self.app(scope, receive, send)


def _refusal(status: int, field: str | None, message: str):
    from starlette.responses import JSONResponse

    return JSONResponse({"detail": {"field": field, "message": message}}, status_code=status)


async def _limited(receive, length: str | None):
    """(receive, None) for a body within BODY_LIMIT, read here and replayed to the app; (receive, a 413) for a
    larger one, said as soon as its length (or its first BODY_LIMIT bytes) shows it."""
    too_large = _refusal(413, "body", f"the request body is larger than {BODY_LIMIT // 1024} KB; a job's settings are a few KB")
    if length is not None and length.isdigit() and int(length) > BODY_LIMIT:
        return receive, too_large
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > BODY_LIMIT:
            return receive, too_large
        if not message.get("more_body", False):
            break

    async def replay():
        return messages.pop(0) if messages else await receive()

    return replay, None


def _with_headers(send):
    async def sending(message):
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            message = dict(message)
            message["headers"] = [*message.get("headers", []), *((k, v) for k, v in HEADERS if k not in present)]
        await send(message)

    return sending
