"""The sample projects' own checks (rehearsal/images/samples.py), on top of any app's.

What a team would check by hand after its first deploy, through nginx: the home page renders
from the database with its stylesheet (served by nginx from the static volume), an item written
through a view is read back and its Celery task done by the worker, and an upload is served back
from the media volume.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import TYPE_CHECKING, Callable, Optional

from components.settings import PROJECT_ROOT
from rehearsal.checks.smoke import SAMPLE_MARKER, TASK_DEADLINE, app_setting, require

if TYPE_CHECKING:
    from rehearsal.checks.smoke import Smoke


def items_path(smoke: Smoke) -> str:
    marker = (PROJECT_ROOT / app_setting(smoke.plan, "appContext")).resolve() / SAMPLE_MARKER
    return str(json.loads(marker.read_text())["items"])


def sample_checks(smoke: Smoke) -> list[tuple[str, Callable[[], str], Optional[str]]]:
    items = items_path(smoke)

    def page() -> str:
        response = smoke.get("/")
        require(response.status_code == 200, f"GET / -> {response.status_code}: {response.text[:200]}")
        found = re.search(r'<link rel="stylesheet" href="([^"]+)"', response.text)
        require(found, "GET / has no stylesheet link")
        css = smoke.get(found.group(1))  # type: ignore[union-attr]
        require(css.status_code == 200, f"GET {found.group(1)} -> {css.status_code}")  # type: ignore[union-attr]
        return f"GET / 200 (from the database), its stylesheet {found.group(1)} 200 from nginx"  # type: ignore[union-attr]

    def write() -> str:
        text = f"rehearsal {secrets.token_hex(4)}"
        response = smoke.http.post(smoke.base + items, data={"text": text}, timeout=10)
        require(response.status_code == 201, f"POST {items} -> {response.status_code}: {response.text[:200]}")
        item = int(response.json()["id"])
        started = time.monotonic()
        while True:
            detail = smoke.get(f"{items}{item}/")
            require(detail.status_code == 200, f"GET {items}{item}/ -> {detail.status_code}")
            body = detail.json()
            require(body["text"] == text, f"{items}{item}/ reads back {body['text']!r}, not {text!r}")
            if body.get("processed_by"):
                break
            require(
                time.monotonic() - started < TASK_DEADLINE, f"item {item}: Celery task not done in {TASK_DEADLINE:.0f}s"
            )
            time.sleep(0.25)
        return (
            f"POST {items} 201 id {item}, read back; Celery task done by {body['processed_by']} "
            f"in {time.monotonic() - started:.1f}s"
        )

    def upload() -> str:
        content = f"rehearsal upload {secrets.token_hex(8)}\n".encode()
        name = f"rehearsal-{secrets.token_hex(4)}.txt"
        response = smoke.http.post(
            smoke.base + f"{items}upload/", files={"file": (name, content, "text/plain")}, timeout=10
        )
        require(response.status_code == 201, f"POST {items}upload/ -> {response.status_code}: {response.text[:200]}")
        url = response.json()["url"]
        served = smoke.get(url)
        require(
            served.status_code == 200 and served.content == content,
            f"GET {url} -> {served.status_code}, {len(served.content)} bytes (uploaded {len(content)})",
        )
        return f"POST {items}upload/ 201, GET {url} returns the same {len(content)} bytes"

    return [("page", page, "web"), ("write", write, "celery-worker"), ("upload", upload, "web")]
