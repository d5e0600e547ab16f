"""The emulator's read-only pages for a browser (issue 14): an S3 index with PNGs inline, objects served
safely, SageMaker resources as HTML (JSON at ?format=json); hostile bucket/key names escaped; GET only;
loopback clients only."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from include.sagemaker_emulator import pages

BUCKET = "pages-tests"
PNG = pages.PNG_SIGNATURE + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
FOLDER = "reports/<img src=x onerror=alert(1)>\"q\" & 'single'/"
HOSTILE = FOLDER + "evil<script>.png"


def get(url: str, method: str = "GET", accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


@pytest.fixture(scope="module")
def bucket(emulator) -> str:
    from tests.conftest import client

    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="reports/run-1/decision.png", Body=PNG)
    s3.put_object(Bucket=BUCKET, Key="reports/run-1/report.json", Body=b'{"winner": "challenger"}')
    s3.put_object(Bucket=BUCKET, Key="reports/run-1/fake.png", Body=b"<html><script>alert(1)</script></html>")
    s3.put_object(Bucket=BUCKET, Key="reports/run-1/page.html", Body=b"<script>alert(1)</script>")
    s3.put_object(Bucket=BUCKET, Key="models/model.tar.gz", Body=b"\x1f\x8b\x08\x00\xff\xfe")
    s3.put_object(Bucket=BUCKET, Key=HOSTILE, Body=PNG)
    return BUCKET


def test_bucket_index_and_listing_show_folders_objects_and_pngs_inline(emulator, bucket) -> None:
    status, headers, body = get(f"{emulator.url}/_emulator/s3/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert f'href="/_emulator/s3/{BUCKET}/"' in body.decode()

    status, headers, body = get(f"{emulator.url}/_emulator/s3/{BUCKET}/reports/run-1/")
    text = body.decode()
    assert status == 200 and "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert '<img src="/_emulator/s3-object/pages-tests/reports/run-1/decision.png"' in text
    assert "report.json" in text and "model.tar.gz" not in text  # only what is under the prefix

    status, _, body = get(f"{emulator.url}/_emulator/s3/{BUCKET}/")
    assert status == 200 and "models/" in body.decode() and "reports/" in body.decode()


def test_hostile_keys_are_escaped_everywhere(emulator, bucket) -> None:
    _, _, body = get(f"{emulator.url}/_emulator/s3/{BUCKET}/reports/")
    text = body.decode()
    assert (
        "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;&quot;q&quot; &amp; &#x27;single&#x27;/" in text
    )
    # Its link is quoted, and it really lists the folder.
    href = f"/_emulator/s3/{BUCKET}/" + urllib.parse.quote(FOLDER, safe="/")
    assert f'href="{href}"' in text
    _, _, inner = get(f"{emulator.url}{href}")
    assert "evil&lt;script&gt;.png" in inner.decode() and "<script>" not in inner.decode()
    status, headers, data = get(f"{emulator.url}/_emulator/s3-object/{BUCKET}/" + urllib.parse.quote(HOSTILE, safe="/"))
    assert status == 200 and headers["content-type"] == "image/png" and data == PNG


@pytest.mark.parametrize(
    ("key", "content_type"),
    [
        ("reports/run-1/decision.png", "image/png"),
        ("reports/run-1/report.json", "text/plain; charset=utf-8"),
        ("reports/run-1/fake.png", "text/plain; charset=utf-8"),  # not a PNG by its bytes: shown as text
        ("reports/run-1/page.html", "text/plain; charset=utf-8"),  # never served as HTML
        ("models/model.tar.gz", "application/octet-stream"),
    ],
)
def test_objects_are_served_as_images_text_or_downloads_never_as_html(emulator, bucket, key, content_type) -> None:
    status, headers, _ = get(f"{emulator.url}/_emulator/s3-object/{BUCKET}/{key}")
    assert status == 200 and headers["content-type"] == content_type
    if content_type == "application/octet-stream":
        assert headers["content-disposition"].startswith("attachment;")


def test_missing_things_are_404_and_writes_are_405(emulator, bucket) -> None:
    assert get(f"{emulator.url}/_emulator/s3/no-such-bucket/")[0] == 404
    assert get(f"{emulator.url}/_emulator/s3-object/{BUCKET}/nope.png")[0] == 404
    for method in ("POST", "PUT", "DELETE"):
        status, headers, _ = get(f"{emulator.url}/_emulator/s3/{BUCKET}/", method=method)
        assert status == 405 and headers["allow"] == "GET, HEAD"


def test_resource_page_is_html_for_a_browser_and_json_on_request(emulator, sm, s3) -> None:
    from tests.emulator.helpers import training_request, unique, upload_housing_channels, wait_for_job

    name = unique("pages-job")
    channels = upload_housing_channels(s3, BUCKET + "-jobs", f"data/{name}", houses=200)
    sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}-jobs/output/"))
    wait_for_job(sm, name)
    url = f"{emulator.url}/_emulator/resources/training-job/{name}"

    status, headers, body = get(url, accept="text/html,application/xhtml+xml,*/*;q=0.8")  # as a browser asks
    text = body.decode()
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert f"<h1>training-job {name}</h1>" in text and '<p class="status">Completed</p>' in text
    assert " UTC</td>" in text  # times as dates, not epoch numbers
    assert f'href="/_emulator/s3/{BUCKET}-jobs/output/{name}/output/"' in text  # the artifact's folder
    assert f'href="/_emulator/resources/training-job/{name}?format=json"' in text

    for variant in (f"{url}?format=json", url):  # explicitly, or to a client that does not ask for HTML
        status, headers, body = get(variant)
        assert status == 200 and headers["content-type"] == "application/json"
        assert json.loads(body)["TrainingJobName"] == name
    assert get(f"{emulator.url}/_emulator/resources/training-job/none-such", accept="text/html")[0] == 404


def _scope(path: str, client: tuple[str, int] = ("127.0.0.1", 50000), method: str = "GET") -> dict[str, Any]:
    return {"path": path, "method": method, "client": client, "query_string": b"", "headers": []}


class _FakeEmulator:
    class moto:
        @staticmethod
        def s3_bucket_names() -> list[str]:
            return ["b"]


def test_only_loopback_clients_are_served() -> None:
    assert pages.render(_FakeEmulator(), _scope("/_emulator/s3/")).status == 200
    for client in (("10.0.0.5", 1234), ("192.168.1.2", 80), None):
        page = pages.render(_FakeEmulator(), _scope("/_emulator/s3/", client=client))
        assert page.status == 403
    assert pages.render(_FakeEmulator(), _scope("/_emulator/health")) is None
