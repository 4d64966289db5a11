"""Starting the studio: the data folder, the listening socket, the model, recovery after a crash, and uvicorn.

The socket is bound here, before uvicorn starts, so a port in use is one clear error, `--port 0` learns the
port the system chose before the address is printed, and the Host check knows its port.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import secrets
import socket
import sys
import threading
import webbrowser
from pathlib import Path

import uvicorn

from ..errors import DreamscopeError
from ..settings import DEFAULT_MODEL
from .guard import is_loopback

SHUTDOWN_GRACE = 3  # seconds uvicorn waits for open requests when stopping


def default_data_folder() -> Path:
    """$XDG_DATA_HOME/dreamscope/studio, else ~/.local/share/dreamscope/studio."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "dreamscope" / "studio"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: one the system picks)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host.strip("[]")).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a name such as localhost
    try:
        sock = socket.create_server((host.strip("[]"), port), family=family, backlog=2048)
    except socket.gaierror:
        raise DreamscopeError(
            f"cannot listen on {host}: no such address here; give --host 127.0.0.1 or an address of this machine"
        ) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DreamscopeError(
                f"port {port} on {host} is in use (another dreamscope studio?); choose another with --port, "
                "or --port 0 for any free one"
            ) from None
        if exc.errno == errno.EACCES:
            raise DreamscopeError(f"port {port} needs administrator rights here; choose one above 1023 with --port") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise DreamscopeError(
                f"cannot listen on {host}: it is not an address of this machine; give --host 127.0.0.1"
            ) from None
        raise DreamscopeError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --host or --port"
        ) from None
    return sock


def address(host: str, port: int, token: str | None) -> str:
    """The address to open: the loopback one when bound to every interface."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    data: str | Path | None = None,
    open_browser: bool = False,
    token: str | None = None,
    model: str = DEFAULT_MODEL,
    weights: str | None = None,
    device: str | None = "auto",
    threads: int | None = None,
    max_upload_mb: float | None = None,
) -> int:
    """Run the studio until Ctrl-C or SIGTERM; returns the exit code."""
    from .. import runtime
    from ..models import load_model
    from .app import Studio, create_app
    from .uploads import Limits

    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)  # reachable from other machines: never without a token
    folder = Path(data).expanduser() if data is not None else default_data_folder()
    sock = bind(host, port)
    try:
        runtime.configure(threads)
        loaded = load_model(model, device, weights)
        bound = sock.getsockname()[1]
        studio = Studio(folder, loaded, weights=weights, host=host, port=bound, token=token, limits=Limits.from_mb(max_upload_mb))
        requeued = studio.recover()
        config = uvicorn.Config(
            create_app(studio),
            host=host,
            port=bound,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=SHUTDOWN_GRACE,
        )
        server = _Server(config, studio)  # serves on `sock`, already listening
        url = address(host, bound, token)
        print(f"dreamscope studio: {url}", flush=True)
        note = f"; {len(requeued)} interrupted job(s) queued again" if requeued else ""
        print(f"data in {folder}, model {loaded.name} on {loaded.device}{note}; Ctrl-C stops it", file=sys.stderr, flush=True)
        if open_browser:
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn stopped gracefully, then passed the signal on
            pass
        return 0
    finally:
        sock.close()


class _Server(uvicorn.Server):
    """uvicorn's server, which also tells the studio it is stopping: open event streams end at once instead of
    holding the graceful shutdown until its timeout."""

    def __init__(self, config, studio):
        super().__init__(config)
        self.studio = studio

    def handle_exit(self, sig, frame):
        self.studio.closing.set()
        super().handle_exit(sig, frame)
