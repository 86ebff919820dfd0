"""CORS for the upload endpoints (off unless ``cors_origins`` is set)."""

from __future__ import annotations

from typing import Any

from .http import Response

MAX_AGE = "86400"  # one preflight a day per URL, not one per PATCH or chunk


class CorsPolicy:
    """Answers preflights and decorates responses for allowed origins.

    ``origins`` is ``("*",)`` for any origin or a tuple of exact origins.  The
    matching origin is always echoed (never ``*``) together with
    ``Access-Control-Allow-Credentials: true``, so cookie- or
    ``withCredentials``-authenticated uploads work.
    """

    def __init__(self, origins: tuple[str, ...], *, methods: list[str], expose: list[str]):
        self.origins = origins
        self.methods = ", ".join(methods)
        self.expose = ", ".join(expose)

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def allows(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins

    def is_preflight(self, environ: dict[str, Any]) -> bool:
        return (
            self.enabled
            and environ.get("REQUEST_METHOD") == "OPTIONS"
            and "HTTP_ORIGIN" in environ
            and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
        )

    def preflight(self, environ: dict[str, Any]) -> Response:
        origin = environ["HTTP_ORIGIN"]
        if not self.allows(origin):
            return Response.text(403, "origin not allowed\n")
        headers = {
            "Access-Control-Allow-Methods": self.methods,
            "Access-Control-Max-Age": MAX_AGE,
        }
        requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")
        if requested:
            # The origin is trusted; echo what it asks for (custom auth, CSRF headers...).
            headers["Access-Control-Allow-Headers"] = requested
        # 200 rather than 204: waitress closes the connection after every 204,
        # and browsers accept any 2xx for a preflight.
        response = Response(200, headers)
        self.decorate(environ, response)
        return response

    def decorate(self, environ: dict[str, Any], response: Response) -> None:
        """Add the headers every actual response (success or error) needs."""
        origin = environ.get("HTTP_ORIGIN")
        if not self.enabled or origin is None or not self.allows(origin):
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = self.expose
        vary = response.headers.get("Vary")
        response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
