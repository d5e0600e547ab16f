"""Read-only HTML pages for a person with a browser: what the Airflow UI's extra links open locally.

- ``/_emulator/s3/`` lists the buckets; ``/_emulator/s3/<bucket>/<prefix>`` the folders and objects under a
  prefix, PNGs shown inline (a report's ``decision.png``, ``rollout.png``);
- ``/_emulator/s3-object/<bucket>/<key>`` one object's bytes: a PNG as an image, JSON and text as text, the
  rest as a download;
- ``/_emulator/resources/<kind>/<name>`` a SageMaker resource's description as a page (times as UTC dates,
  S3 URIs as links); JSON with ``?format=json`` or to a client that does not ask for HTML.

Bucket names, keys and resource fields are other people's input: every one is escaped before it enters
HTML and quoted before it enters a URL, and no stored byte is ever served as HTML or script (PNGs are
checked by signature; everything else is text/plain or an attachment, with ``nosniff``). The pages answer
GET (and HEAD) only, and only to loopback clients: they show every bucket, and the emulator has no
authentication. Nothing here touches the file system.
"""

from __future__ import annotations

import datetime as dt
import html
import ipaddress
import json
from typing import Any
from urllib.parse import parse_qs, quote

__all__ = ["PAGE_PREFIXES", "Page", "render"]

PAGE_PREFIXES = ("/_emulator/s3/", "/_emulator/s3-object/", "/_emulator/resources/")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_LISTED = 1000  # objects per page; the rest is counted, not shown
MAX_INLINE_IMAGES = 24
SECURITY_HEADERS = (
    ("content-security-policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
)
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;"
    "vertical-align:top}th{background:#f3f3f3}code,pre{font-family:ui-monospace,monospace;font-size:.9em}"
    "pre{margin:0;white-space:pre-wrap}figure{display:inline-block;margin:.5em;border:1px solid #ddd;"
    "padding:.5em}img{max-width:720px}.status{font-weight:bold}"
)


class Page:
    """An answer: status, content type and body (headers added by :func:`render`'s caller)."""

    def __init__(self, status: int, content_type: str, body: bytes, extra: tuple[tuple[str, str], ...] = ()):
        self.status, self.content_type, self.body, self.extra = status, content_type, body, extra

    def headers(self) -> list[tuple[bytes, bytes]]:
        pairs = [("content-type", self.content_type), *SECURITY_HEADERS, *self.extra]
        return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _html(status: int, title: str, body: str) -> Page:
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>{body}"
        '<p><small>SageMaker emulator, read only. <a href="/_emulator/s3/">All buckets</a></small></p>'
        "</body></html>"
    )
    return Page(status, "text/html; charset=utf-8", document.encode("utf-8"))


def _error(status: int, message: str) -> Page:
    return _html(status, f"{status}", f"<p>{_e(message)}</p>")


def s3_page_href(bucket: str, prefix: str = "") -> str:
    return f"/_emulator/s3/{quote(bucket, safe='')}/{quote(prefix, safe='/')}"


def _object_href(bucket: str, key: str) -> str:
    return f"/_emulator/s3-object/{quote(bucket, safe='')}/{quote(key, safe='/')}"


def _is_loopback(client: Any) -> bool:
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except (TypeError, ValueError, IndexError):
        return False


def render(emulator: Any, scope: dict[str, Any]) -> Page | None:
    """The page for this request, or None when the path is not a page (the caller answers 404)."""
    path, method = scope["path"], scope["method"]
    if not path.startswith(PAGE_PREFIXES):
        return None
    if method not in ("GET", "HEAD"):
        page = _error(405, "These pages are read only: GET only.")
        page.extra = (("allow", "GET, HEAD"),)
        return page
    if not _is_loopback(scope.get("client")):
        return _error(403, "These pages answer only on this machine (loopback clients).")
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if path.startswith("/_emulator/s3-object/"):
        bucket, _, key = path[len("/_emulator/s3-object/") :].partition("/")
        return _object(emulator, bucket, key)
    if path.startswith("/_emulator/s3/"):
        bucket, _, prefix = path[len("/_emulator/s3/") :].partition("/")
        return _listing(emulator, bucket, prefix) if bucket else _buckets(emulator)
    kind, _, name = path[len("/_emulator/resources/") :].partition("/")
    wants_json = query.get("format", [""])[0] == "json" or (
        query.get("format", [""])[0] != "html" and "text/html" not in _accept(scope)
    )
    return _resource(emulator, kind, name, wants_json)


def _accept(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name.lower() == b"accept":
            return value.decode("latin-1").lower()
    return ""


# -- S3 --------------------------------------------------------------------------------------------------
def _buckets(emulator: Any) -> Page:
    names = emulator.moto.s3_bucket_names()
    rows = "".join(f'<li><a href="{_e(s3_page_href(name))}">{_e(name)}</a></li>' for name in names)
    return _html(200, "S3 buckets", f"<ul>{rows}</ul>" if rows else "<p>No buckets yet.</p>")


def _listing(emulator: Any, bucket: str, prefix: str) -> Page:
    from .aws import MissingObject

    try:
        objects = emulator.moto.s3_list(bucket, prefix)
    except MissingObject:
        return _error(404, f"No bucket named {bucket!r}.")
    folders: dict[str, int] = {}
    files: list[tuple[str, int]] = []
    for key, size in objects:
        rest = key[len(prefix) :]
        if "/" in rest:
            folder = prefix + rest.split("/", 1)[0] + "/"
            folders[folder] = folders.get(folder, 0) + 1
        else:
            files.append((key, size))
    crumbs = [f'<a href="{_e(s3_page_href(bucket))}">{_e(bucket)}</a>']
    parts = [part for part in prefix.split("/") if part]
    for index, part in enumerate(parts):
        crumbs.append(f'<a href="{_e(s3_page_href(bucket, "/".join(parts[: index + 1]) + "/"))}">{_e(part)}</a>')
    body = [f"<p>{' / '.join(crumbs)}</p>"]
    if folders:
        items = "".join(
            f'<li><a href="{_e(s3_page_href(bucket, folder))}">{_e(folder[len(prefix) :])}</a> '
            f"({count} object{'s' if count != 1 else ''})</li>"
            for folder, count in sorted(folders.items())
        )
        body.append(f"<h2>Folders</h2><ul>{items}</ul>")
    if files:
        rows = "".join(
            f'<tr><td><a href="{_e(_object_href(bucket, key))}">{_e(key[len(prefix) :])}</a></td><td>{size:,}</td></tr>'
            for key, size in files[:MAX_LISTED]
        )
        more = f"<p>{len(files) - MAX_LISTED:,} more not shown.</p>" if len(files) > MAX_LISTED else ""
        body.append(f"<h2>Objects</h2><table><tr><th>Key</th><th>Bytes</th></tr>{rows}</table>{more}")
        images = [key for key, _ in files if key.lower().endswith(".png")][:MAX_INLINE_IMAGES]
        figures = "".join(
            f'<figure><img src="{_e(_object_href(bucket, key))}" alt="{_e(key)}">'
            f"<figcaption>{_e(key[len(prefix) :])}</figcaption></figure>"
            for key in images
        )
        if figures:
            body.append(f"<h2>Images</h2>{figures}")
    if not folders and not files:
        body.append("<p>Nothing under this prefix.</p>")
    return _html(200, f"s3://{bucket}/{prefix}", "".join(body))


def _object(emulator: Any, bucket: str, key: str) -> Page:
    from .aws import MissingObject

    try:
        data = emulator.moto.s3_get(bucket, key)
    except MissingObject:
        return _error(404, f"No object s3://{bucket}/{key}.")
    if key.lower().endswith(".png") and data.startswith(PNG_SIGNATURE):
        return Page(200, "image/png", data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        filename = quote(key.rsplit("/", 1)[-1] or "object", safe="")
        return Page(
            200,
            "application/octet-stream",
            data,
            (("content-disposition", f"attachment; filename*=UTF-8''{filename}"),),
        )
    # Text, never HTML: a stored page or script must not run on the emulator's origin.
    return Page(200, "text/plain; charset=utf-8", data)


# -- SageMaker resources ---------------------------------------------------------------------------------
def _resource(emulator: Any, kind: str, name: str, wants_json: bool) -> Page:
    from .app import RESOURCE_KINDS
    from .store import public

    record = emulator.store.get(kind, name) if kind in RESOURCE_KINDS and name else None
    if record is None:
        if wants_json:
            return Page(404, "application/json", json.dumps({"error": f"no {kind} named {name!r}"}).encode())
        return _error(404, f"No {kind} named {name!r}.")
    described = public(record)
    if wants_json:
        return Page(200, "application/json", json.dumps(described).encode())
    status = next((described[k] for k in described if k.endswith("Status") and isinstance(described[k], str)), None)
    head = f'<p class="status">{_e(status)}</p>' if status else ""
    json_href = f"/_emulator/resources/{quote(kind, safe='')}/{quote(name, safe='')}?format=json"
    body = f'{head}{_table(described)}<p><a href="{_e(json_href)}">As JSON</a></p>'
    return _html(200, f"{kind} {name}", body)


def _table(mapping: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{_e(key)}</th><td>{_value(key, value)}</td></tr>" for key, value in mapping.items())
    return f"<table>{rows}</table>"


def _value(key: str, value: Any) -> str:
    if isinstance(value, dict):
        return _table(value) if value else "<em>none</em>"
    if isinstance(value, list):
        if not value:
            return "<em>none</em>"
        if all(isinstance(item, dict) for item in value):
            return "".join(_table(item) for item in value)
        return "<br>".join(_value(key, item) for item in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (key.endswith("Time") or key == "Timestamp"):
        try:
            moment = dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return _e(value)
        return f"{_e(moment.strftime('%Y-%m-%d %H:%M:%S UTC'))}"
    if isinstance(value, str) and value.startswith("s3://"):
        bucket, _, rest = value[len("s3://") :].partition("/")
        if bucket:
            # A prefix is listed as itself, an object in its folder's listing.
            if not rest or rest.endswith("/"):
                folder = rest
            else:
                folder = rest.rsplit("/", 1)[0] + "/" if "/" in rest else ""
            return f'<a href="{_e(s3_page_href(bucket, folder))}"><code>{_e(value)}</code></a>'
    return f"<code>{_e(value)}</code>"
