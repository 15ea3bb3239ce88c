"""A ceiling on request bodies, checked before anything reads them.

Django's CSRF check reads the token from the form body for every unsafe request, including the
one its own 404 page makes, and parsing a multipart body streams its files to temporary files.
Without a ceiling, anyone holding the CSRF cookie the sign-in page hands out could stream any
amount to disk on any address. The few views that take large uploads say so with
``@large_body_allowed`` and check who is asking before they read the body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

View = TypeVar("View", bound=Callable[..., Any])

TOO_LARGE = "The request is too large. Nothing was kept."


def large_body_allowed(view: View) -> View:
    """Let ``view`` receive bodies beyond ``REQUEST_BODY_MAX_SIZE``; it must refuse anyone it
    does not serve before it reads the body."""
    view.large_body_allowed = True  # type: ignore[attr-defined]
    return view


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _allows_large_body(request: HttpRequest) -> bool:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return bool(getattr(match.func, "large_body_allowed", False))


class RequestBodyLimitMiddleware:
    """Refuses a body declared larger than ``REQUEST_BODY_MAX_SIZE`` (413) unless the address's
    view allows large bodies. Django reads no body without a Content-Length (a chunked request
    arrives empty), so the declared length is the whole story."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _declared_length(request) > settings.REQUEST_BODY_MAX_SIZE and not _allows_large_body(request):
            return HttpResponse(TOO_LARGE, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
