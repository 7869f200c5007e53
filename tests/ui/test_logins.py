"""The login of a running app follows the users file: first user, removed users, the last one, expiry."""
from __future__ import annotations

import shutil
import time

import httpx

from va_ui import auth

SESSION_S = 12.0
WAIT_S = 10.0  # the app follows the file within about a second; generous for a loaded machine


def _until(what: str, predicate):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"the running app did not follow: {what}")


class Browserless:
    """One visitor's cookies against the app, as Gradio's frontend uses its routes."""

    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, timeout=20)

    def login(self, name: str, password: str) -> int:
        return self.http.post("/login", data={"username": name, "password": password}).status_code

    def admitted(self) -> bool:
        status = self.http.get("/gradio_api/login_check").status_code
        assert status in (200, 401), status
        return status == 200

    def join(self) -> int:
        """An event sent to the queue (what writes labels), with a made-up body."""
        return self.http.post("/gradio_api/queue/join", json={"fn_index": 0, "data": [], "session_hash": "x"}).status_code


def test_logins_follow_the_users_file_while_the_app_runs(_ingested_home_template, tmp_path, app_server):
    home = tmp_path / "va-home"
    shutil.copytree(_ingested_home_template, home)
    path = home / "users.json"
    server = app_server(home, tmp_path / "ui.log", {"VA_UI_SESSION_HOURS": str(SESSION_S / 3600)})
    try:
        stranger = Browserless(server.url)
        assert stranger.admitted() and stranger.join() != 401  # a new home: open, a typed name

        # the first user closes the open app to everyone without a login
        auth.add_user(path, "maria", "maria-password", iterations=1000)
        _until("the first user", lambda: not stranger.admitted())
        assert stranger.join() == 401 and stranger.http.get("/config").status_code == 401
        maria = Browserless(server.url)
        assert maria.login("maria", "wrong-password") == 400
        assert maria.login("maria", "maria-password") == 200 and maria.admitted()
        maria_since = time.monotonic()

        # a removed user's session ends; the others stay
        auth.add_user(path, "lee", "lee-password", iterations=1000)
        lee = Browserless(server.url)
        _until("the second user", lambda: lee.login("lee", "lee-password") == 200)
        assert lee.admitted()
        auth.remove_user(path, "lee")
        _until("lee's removal", lambda: not lee.admitted())
        assert lee.join() == 401 and lee.login("lee", "lee-password") == 400
        assert maria.admitted() and time.monotonic() - maria_since < SESSION_S

        # sessions expire: maria logs in again
        _until_expired = time.monotonic() + SESSION_S + WAIT_S
        while maria.admitted():
            assert time.monotonic() < _until_expired, "maria's session did not expire"
            time.sleep(0.5)
        assert time.monotonic() - maria_since >= SESSION_S - 1
        assert maria.login("maria", "maria-password") == 200 and maria.admitted()

        # the last user removed: closed to everyone, /login refuses without a 500
        auth.remove_user(path, "maria")
        _until("the last user's removal", lambda: not maria.admitted())
        assert maria.login("maria", "maria-password") == 400
        for name, password in (("", ""), ("x" * 5000, "y" * 5000), ("eve\n", "eve-password")):
            assert 400 <= maria.login(name, password) < 500
        for bad in ({"data": {"username": "maria"}}, {"content": b"\xff\x00", "headers": {"content-type": "x"}},
                    {"json": {"username": "maria", "password": "maria-password"}}):
            assert 400 <= stranger.http.post("/login", **bad).status_code < 500
        assert not stranger.admitted() and stranger.join() == 401
        page = stranger.http.get("/")
        assert page.status_code == 200 and "auth_required" in page.text and "closed" in page.text

        # the file deleted by hand: still closed; opened on purpose: a typed name again
        path.unlink()
        time.sleep(2)
        assert not stranger.admitted()
        auth.set_open(path, True)
        _until("opening", stranger.admitted)
        assert stranger.join() != 401
        log = (tmp_path / "ui.log").read_text()
        assert "logins closed" in log and "logins open" in log and "login check failed" not in log
    finally:
        server.stop()
