"""HTTP details the WSGI servers leave to the application."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class HeadWithoutBodyMiddleware:
    """A HEAD response carries the headers of GET, Content-Length included, and no body
    (RFC 9110, 9.3.2). Django leaves that to the server: its runserver drops the body quietly,
    gunicorn drops it too but logs "WSGI app sent body bytes on a no-body response" for every
    HEAD request (load balancers and uptime checks send many). Outermost middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method != "HEAD":
            return response
        if response.streaming:
            # The file behind a FileResponse stays registered for closing with the response.
            response.streaming_content = iter(())  # type: ignore[attr-defined]
        else:
            response.content = b""  # a Content-Length already set keeps the length of GET's body
        return response
