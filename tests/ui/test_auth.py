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


def test_authenticator_follows_the_users_file(settings):
    assert auth.authenticator(settings) is None  # no file: the app asks for a name
    path = auth.users_file(settings)
    auth.add_user(path, "maria", "s3cret-pass", iterations=1000)
    check = auth.authenticator(settings)
    assert check("maria", "s3cret-pass") and not check("maria", "wrong-pass") and not check("nobody", "s3cret-pass")
    auth.add_user(path, "lee", "another-pass", iterations=1000)
    assert check("lee", "another-pass")  # added while running: no restart needed
    auth.remove_user(path, "lee")
    assert not check("lee", "another-pass")
    auth.remove_user(path, "maria")
    assert not path.exists()


def test_users_file_location_can_be_set(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("VA_USERS_FILE", str(tmp_path / "elsewhere.json"))
    assert auth.users_file(settings) == tmp_path / "elsewhere.json"


@pytest.mark.parametrize("content", ["{not json", '{"users": {}}', '{"users": {"bad name!": {}}}',
                                     '{"users": {"maria": {"salt": "00"}}}'])
def test_a_broken_users_file_is_an_error_not_an_open_door(settings, content):
    auth.users_file(settings).parent.mkdir(parents=True, exist_ok=True)
    auth.users_file(settings).write_text(content)
    with pytest.raises(VAError, match="users file"):
        auth.authenticator(settings)


@pytest.mark.parametrize("name,password", [("", "long enough"), ("a b", "long enough"), ("maria", "short")])
def test_bad_user_names_and_short_passwords_are_refused(tmp_path, name, password):
    with pytest.raises(InputError):
        auth.add_user(tmp_path / "users.json", name, password, iterations=1000)
    assert not (tmp_path / "users.json").exists()


def test_command_line(settings, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert auth.main(["add", "maria", "--password-stdin"]) == 0
    assert auth.main(["list"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "maria"
    assert auth.authenticator(settings)("maria", "a-long-password")
    assert auth.main(["remove", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err
