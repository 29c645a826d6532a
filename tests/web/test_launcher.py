"""`voxtell-web --sessions 1`: a visit gets its own app process (redirect), a second visit while
it is in use gets the busy page (503), and closing the first page frees the place."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from browser import STEP_S, open_page, web_server

IDLE_TIMEOUT_S = 3


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def visit(url: str):
    """(status, Location or body) of one GET, redirects not followed."""
    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=STEP_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as answer:
        return answer.code, answer.headers.get("Location") or answer.read().decode()


@pytest.fixture(scope="module")
def launcher_url(tmp_path_factory):
    log = tmp_path_factory.mktemp("launcher") / "launcher.log"
    with web_server("-m", "demo", "--device", "cpu", "--sessions", "1", "--idle-timeout", str(IDLE_TIMEOUT_S),
                    log=log) as url:
        yield url


def test_one_session_per_user_and_a_busy_page_beyond_the_limit(launcher_url):
    with open_page(launcher_url) as first:  # Chromium follows the redirect to its own process
        assert first.driver.current_url != launcher_url
        assert first.one(".voxtell-run")
        status, body = visit(launcher_url)
        assert status == 503 and "All 1 sessions of this VoxTell web app are in use" in body
        first.wait_for(lambda: first.driver.title == "VoxTell", "the app's title")  # the first page still works
    # Closed: its process stops after the idle timeout and the place is free again.
    deadline = time.monotonic() + STEP_S
    while (answer := visit(launcher_url))[0] == 503 and time.monotonic() < deadline:
        time.sleep(1)
    status, location = answer
    assert status == 302 and location.startswith("http://127.0.0.1:")
