"""Logins: a users file of PBKDF2 hashes; no file, no login (the app asks for a name)."""
from __future__ import annotations

import io
import json
import stat

import pytest

from va_core.errors import InputError, VAError
from va_ui import auth


def test_passwords_are_stored_only_as_salted_hashes(tmp_path):
    path = tmp_path / "users.json"
    auth.add_user(path, "maria", "correct horse", iterations=1000)
    auth.add_user(path, "lee", "correct horse", iterations=1000)
    text = path.read_text()
    assert "correct horse" not in text
    users = json.loads(text)["users"]
    assert users["maria"]["salt"] != users["lee"]["salt"] and users["maria"]["hash"] != users["lee"]["hash"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.verify_password(users["maria"], "correct horse")
    assert not auth.verify_password(users["maria"], "correct horsE")
    assert not auth.verify_password({**users["maria"], "algorithm": "md5"}, "correct horse")


def test_the_door_follows_the_users_file(settings):
    path = auth.users_file(settings)
    assert auth.read_door(path).state == auth.OPEN  # a new home: the app asks for a typed name
    auth.add_user(path, "maria", "s3cret-pass", iterations=1000)
    door = auth.read_door(path)
    assert door.state == auth.LOGIN and door.check("maria", "s3cret-pass")
    assert not door.check("maria", "wrong-pass") and not door.check("nobody", "s3cret-pass")
    assert not door.check("maria", None) and not door.check(["maria"], "s3cret-pass")
    auth.add_user(path, "lee", "another-pass", iterations=1000)
    assert auth.read_door(path).check("lee", "another-pass")
    auth.remove_user(path, "lee")
    assert not auth.read_door(path).check("lee", "another-pass")
    auth.remove_user(path, "maria")  # the last one: closed, not open
    door = auth.read_door(path)
    assert door.state == auth.CLOSED and "python -m va_ui.auth add" in door.reason and path.exists()
    path.unlink()  # a users file removed by hand after having existed: still closed
    assert auth.read_door(path).state == auth.CLOSED
    auth.set_open(path, True)
    assert auth.read_door(path).state == auth.OPEN
    auth.add_user(path, "maria", "s3cret-pass", iterations=1000)
    assert auth.read_door(path).state == auth.LOGIN
    with pytest.raises(InputError, match="remove them first"):
        auth.set_open(path, True)
    auth.set_open(path, False)  # close: the users stay, the login stays
    assert auth.read_door(path).state == auth.LOGIN


def test_users_file_location_can_be_set(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("VA_USERS_FILE", str(tmp_path / "elsewhere.json"))
    assert auth.users_file(settings) == tmp_path / "elsewhere.json"


@pytest.mark.parametrize("content", ["{not json", '[]', '{"users": {"bad name!": {}}}',
                                     '{"users": {"eve\\n": {"salt": "00", "hash": "00", "iterations": 1}}}',
                                     '{"users": {"maria": {"salt": "00"}}}'])
def test_a_broken_users_file_closes_the_door(settings, content):
    path = auth.users_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    door = auth.read_door(path)
    assert door.state == auth.CLOSED and "nobody can log in" in door.reason
    assert not door.check("maria", "anything-at-all")
    with pytest.raises(VAError, match="users file"):
        auth.load_users(path)


@pytest.mark.parametrize("name,password", [("", "long enough"), ("a b", "long enough"), ("maria", "short"),
                                           ("eve\n", "long enough"), ("x" * 65, "long enough")])
def test_bad_user_names_and_short_passwords_are_refused(tmp_path, name, password):
    with pytest.raises(InputError):
        auth.add_user(tmp_path / "users.json", name, password, iterations=1000)
    assert not (tmp_path / "users.json").exists()


def test_command_line(settings, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert auth.main(["add", "maria", "--password-stdin"]) == 0
    assert auth.main(["list"]) == 0
    listed = capsys.readouterr()
    assert listed.out.strip().splitlines()[-1] == "maria" and "the app is login" in listed.err
    assert auth.read_door(auth.users_file(settings)).check("maria", "a-long-password")
    assert auth.main(["remove", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err


def test_a_users_file_written_by_hand_and_then_removed_leaves_the_app_closed(tmp_path):
    from va_ui.logins import Logins

    path = tmp_path / "users.json"
    record = auth.hash_password("a-long-password", iterations=1000)
    path.write_text(json.dumps({"users": {"maria": record}}))  # not through `python -m va_ui.auth`
    logins = Logins(path, session_s=60)
    assert logins.door().state == auth.LOGIN and logins.check("maria", "a-long-password")
    path.unlink()
    assert logins.door().state == auth.CLOSED and not logins.check("maria", "a-long-password")
    assert auth.read_door(path).state == auth.CLOSED  # remembered by the marker: a restart stays closed too
