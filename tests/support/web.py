"""An HTTP client that uses the app as a browser behind an HTTPS load balancer would.

It keeps the session and CSRF cookies (which production marks Secure), says it came through an
HTTPS proxy (``X-Forwarded-Proto: https``) and sends the same-origin Referer a browser sends, and
it fills and submits the page's own forms: hidden fields, checked boxes and selected options
included, so a test submits what the page offers, not a hand-made payload.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    inner: list[str] = field(default_factory=list)  # the attributes of every tag inside

    def data(self, **overrides: Any) -> list[tuple[str, str]]:
        """The form's fields, with ``overrides`` replacing every value of a name (a list gives
        several values; None removes the field)."""
        out = [(k, v) for k, v in self.fields if k not in overrides]
        for name, value in overrides.items():
            if value is None:
                continue
            values = value if isinstance(value, list | tuple) else [value]
            out += [(name, str(v)) for v in values]
        return out

    def value(self, name: str) -> str:
        return next(v for k, v in self.fields if k == name)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        if tag == "form":
            self._form = Form(attrs.get("action", ""), attrs.get("method", "get").lower(), attrs=attrs)
            self.forms.append(self._form)
        if self._form is None:
            return
        if tag != "form":
            self._form.inner.append(" ".join(f'{k}="{v}"' for k, v in attrs.items()))
        name = attrs.get("name")
        if tag == "input" and name and "disabled" not in attrs:
            kind = attrs.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self._form.fields.append((name, attrs.get("value", "on")))
            elif kind not in ("submit", "button", "file", "image", "reset"):
                self._form.fields.append((name, attrs.get("value", "")))
        elif tag == "select" and name:
            self._select, self._select_first, self._select_chosen = name, None, False
        elif tag == "option" and self._select:
            value = attrs.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in attrs:
                self._form.fields.append((self._select, value))
                self._select_chosen = True
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select and self._form is not None:
            if not self._select_chosen and self._select_first is not None:
                self._form.fields.append((self._select, self._select_first))
            self._select = None
        elif tag == "textarea" and self._textarea and self._form is not None:
            self._form.fields.append((self._textarea, "".join(self._text)))
            self._textarea = None


def forms_of(page: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


def text_by_testid(page: str, testid: str) -> str:
    """The text of the first element with ``data-testid=testid`` (tags stripped)."""
    match = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?)</', page, re.S)
    if not match:
        raise AssertionError(f"no element data-testid={testid!r} on the page")
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


class WebClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["X-Forwarded-Proto"] = "https"
        self.last_url = self.base_url + "/"

    def _url(self, path: str) -> str:
        return urljoin(self.base_url + "/", path)

    def _send(self, method: str, url: str, *, follow: bool = True, **kwargs: Any) -> requests.Response:
        """One request, then the app's own redirects followed by hand: the TLS ends at the
        (pretend) proxy, so the Secure cookies the app sets must still travel over loopback HTTP,
        which requests' own redirect handling would refuse."""
        for _ in range(10):
            response = self.session.request(method, url, allow_redirects=False, timeout=120, **kwargs)
            for cookie in self.session.cookies:
                cookie.secure = False
            location = response.headers.get("Location")
            if not (follow and response.is_redirect and location):
                return response
            url = urljoin(url, location)
            if not url.startswith(self.base_url + "/"):
                return response  # leaving the app (a presigned storage URL): the caller decides
            if response.status_code in (301, 302, 303):
                method, kwargs = "GET", {k: v for k, v in kwargs.items() if k == "headers"}
        raise AssertionError(f"too many redirects from {url}")

    def get(self, path: str, *, expect: int | None = 200, follow: bool = True, **kwargs: Any) -> requests.Response:
        response = self._send("GET", self._url(path), follow=follow, **kwargs)
        if expect is not None:
            assert response.status_code == expect, f"GET {path}: {response.status_code}\n{response.text[:2000]}"
        self.last_url = response.url
        return response

    def post(self, path: str, data: Any = (), *, expect: int | None = None, **kwargs: Any) -> requests.Response:
        url = self._url(path)
        referer = "https://" + urlsplit(self.last_url).netloc + urlsplit(self.last_url).path
        headers = {"Referer": referer, **kwargs.pop("headers", {})}
        response = self._send("POST", url, data=data, headers=headers, **kwargs)
        if expect is not None:
            assert response.status_code == expect, f"POST {path}: {response.status_code}\n{response.text[:2000]}"
        self.last_url = response.url
        return response

    def form(self, page: requests.Response | str, match: str) -> Form:
        """The form on ``page`` whose opening tag, or a tag inside it, contains ``match`` (an
        action, an id, ``data-testid="..."`` of its button)."""
        text = page.text if isinstance(page, requests.Response) else page
        source_url = page.url if isinstance(page, requests.Response) else self.last_url
        for form in forms_of(text):
            opening = " ".join(f'{k}="{v}"' for k, v in form.attrs.items())
            if match in opening or any(match in tag for tag in form.inner):
                form.action = urljoin(source_url, form.action or source_url)
                return form
        raise AssertionError(f"no form matching {match!r} on {source_url}")

    def submit(
        self, form: Form, *, expect: int | None = None, files: Any = None, **overrides: Any
    ) -> requests.Response:
        return self.post(form.action, form.data(**overrides), files=files, expect=expect)

    def login(self, email: str, password: str) -> None:
        page = self.get("/accounts/login/")
        form = self.form(page, "post")
        response = self.submit(form, username=email, password=password, expect=200)
        assert "/accounts/login/" not in response.url, f"login failed for {email}:\n{response.text[:1500]}"
