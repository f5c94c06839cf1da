"""What ``gpskit app`` can be asked: where it listens, its token, its upload limits."""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass, field

from gpskit import arguments
from gpskit.errors import UsageError

MAX_UPLOAD_BYTES = 40 * 1024**2
MAX_UPLOAD_PIXELS = 120_000_000
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class AppOptions:
    """Where the app listens and what it accepts. Off loopback every request needs
    ``token`` (made at random unless given); changes need it everywhere."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0: any free port (the one chosen is set here once bound)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_upload_pixels: int = MAX_UPLOAD_PIXELS
    tls: bool = False  # HTTPS (the collect page, for phones: camera and position need it)
    #: The address phones use (shown in the URL; default: this machine's first one).
    public_address: str | None = None

    def validate(self) -> None:
        arguments.number("--port", self.port, minimum=0, maximum=65535, integer=True)
        arguments.number("--max-upload-bytes", self.max_upload_bytes, minimum=1, integer=True)
        arguments.number("--max-upload-pixels", self.max_upload_pixels, minimum=1, integer=True)
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", self.token):
            raise UsageError(
                "--token must be 16 to 256 letters, digits, '-' or '_' (it travels in URLs, "
                "headers and the page)",
                hint="leave --token out for a random one",
            )
        if not self.host or any(c.isspace() for c in self.host):
            raise UsageError(f"--host {self.host!r} is not a host name or address")

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def names(self) -> set[str]:
        """The ``host:port`` values requests may carry in their Host header."""
        port = str(self.port)
        if self.loopback:
            hosts = ("127.0.0.1", "localhost", "[::1]", self.host)
            names = {f"{h}:{port}" for h in hosts}
            return names | set(hosts) if self.port == 80 else names  # browsers drop :80
        return set()  # any name reaches a public address: the token guards it

    def host_allowed(self, host: str) -> bool:
        return not self.loopback or host in self.names()

    def origin_allowed(self, origin: str) -> bool:
        if not self.loopback:
            return True  # the token in the header is the guard
        return any(origin in (f"http://{name}", f"https://{name}") for name in self.names())

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "[::]") else host
        suffix = "" if self.loopback else f"?token={self.token}"
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{shown}:{self.port}{path}{suffix}"

    def phone_url(self) -> str:
        """The collect page's URL as a phone on the network opens it (with the token)."""
        shown = self.public_address or self.host
        shown = f"[{shown}]" if ":" in shown else shown
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{shown}:{self.port}/collect?token={self.token}"
