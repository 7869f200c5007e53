"""Who is labelling: logins from a users file, or a name typed into the app.

The users file is ``$VA_HOME/users.json`` (or ``VA_USERS_FILE``)::

    {"users": {"maria": {"salt": "<hex>", "hash": "<hex>", "iterations": 600000,
                         "algorithm": "pbkdf2_sha256"}}}

Passwords are stored only as PBKDF2-HMAC-SHA256 hashes with a random salt per user.
Manage it with ``python -m va_ui.auth add NAME`` (asks for the password),
``remove NAME``, ``list``, ``open`` and ``close``.

The app's door (:func:`read_door`) has three states, followed by a running app within
about a second (:mod:`va_ui.logins`):

- ``login``: the file lists users; the app asks for a login and every label carries it;
- ``open``: no users file was ever written here (a new home), or ``open`` was chosen
  explicitly: the app asks for a typed name;
- ``closed``: the file lists no user (the last one was removed, or ``close``), the file
  is malformed, or it was deleted after having existed (a marker next to it remembers):
  nobody gets in until someone adds a user or opens the door.
"""
from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from va_core.errors import InputError, VAError
from va_ui.command import exit_status

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
USER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")  # used with fullmatch: no trailing newline
OPEN, LOGIN, CLOSED = "open", "login", "closed"
MIN_PASSWORD = 8


def users_file(settings) -> Path:
    override = os.environ.get("VA_USERS_FILE")
    return Path(override).expanduser() if override else Path(settings.home) / "users.json"


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> dict:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return {"algorithm": ALGORITHM, "iterations": iterations, "salt": salt.hex(), "hash": digest.hex()}


def verify_password(record: dict, password: str) -> bool:
    if record.get("algorithm", ALGORITHM) != ALGORITHM:
        return False
    try:
        salt = bytes.fromhex(record["salt"])
        expected = bytes.fromhex(record["hash"])
        iterations = int(record["iterations"])
    except (KeyError, ValueError, TypeError):
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def load_users(path: Path) -> dict[str, dict]:
    """The users of a users file (none when it does not exist); a malformed file is an error."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise VAError(f"users file {path} is not valid JSON: {exc}") from exc
    return _users_of(path, data)


def _valid_name(name) -> bool:
    return isinstance(name, str) and USER_PATTERN.fullmatch(name) is not None


def seen_marker(path: Path) -> Path:
    """Exists once a users file was written here: its later absence closes the door instead of opening it."""
    return path.with_name(f".{path.name}.seen")


@dataclass(frozen=True)
class Door:
    state: str  # OPEN, LOGIN or CLOSED
    users: dict = field(default_factory=dict, repr=False)
    reason: str = ""

    @property
    def needs_login(self) -> bool:
        return self.state != OPEN

    def check(self, username, password) -> bool:
        """Whether this login may enter; never raises (a bad request is a refusal, not an error)."""
        if self.state != LOGIN or not isinstance(username, str) or not isinstance(password, str):
            return False
        record = self.users.get(username)
        return record is not None and len(password) <= 1024 and verify_password(record, password)


def read_door(path: Path) -> Door:
    """The door as the users file says now (see the module's docstring)."""
    add = "add a user with `python -m va_ui.auth add NAME`"
    try:
        text = path.read_text()
    except FileNotFoundError:
        if seen_marker(path).exists():
            return Door(CLOSED, reason=f"the users file {path} was removed: nobody can log in; {add}, "
                                       "or let anyone type a name with `python -m va_ui.auth open`")
        return Door(OPEN, reason="no users file: the app asks for a typed name")
    except OSError as exc:
        return Door(CLOSED, reason=f"the users file {path} cannot be read ({exc}): nobody can log in")
    try:
        data = json.loads(text)
        users = _users_of(path, data)
    except (ValueError, VAError) as exc:
        return Door(CLOSED, reason=f"{exc}: nobody can log in until it is fixed")
    if users:
        return Door(LOGIN, users, f"{len(users)} user(s) can log in")
    if data.get("open") is True:
        return Door(OPEN, reason="opened with `python -m va_ui.auth open`: the app asks for a typed name")
    return Door(CLOSED, reason=f"no user can log in; {add}, or let anyone type a name with "
                               "`python -m va_ui.auth open`")


def _users_of(path: Path, data) -> dict:
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise VAError(f"users file {path} has no \"users\" object")
    for name, record in users.items():
        if not _valid_name(name) or not isinstance(record, dict) or not {"salt", "hash", "iterations"} <= set(record):
            raise VAError(f"users file {path}: entry {name!r} is malformed")
    return users


def _write(path: Path, users: dict, open_door: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    seen_marker(path).touch()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"users": users, **({"open": True} if open_door else {})}, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def add_user(path: Path, name: str, password: str, iterations: int = ITERATIONS) -> None:
    if not _valid_name(name):
        raise InputError(f"bad user name {name!r}: 1-64 letters, digits, '_', '.', '@' or '-'")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password has at least {MIN_PASSWORD} characters")
    users = load_users(path)
    users[name] = hash_password(password, iterations=iterations)
    _write(path, users)


def remove_user(path: Path, name: str) -> None:
    users = load_users(path)
    if name not in users:
        raise InputError(f"no user {name!r} in {path}")
    del users[name]
    _write(path, users)  # the last one gone: the door is closed, not open (see read_door)


def set_open(path: Path, open_door: bool) -> None:
    """Open the door to typed names, or close it; opening is refused while users can log in."""
    users = load_users(path)
    if open_door and users:
        raise InputError(f"{path} lists {len(users)} user(s): remove them first to let anyone type a name")
    _write(path, users, open_door=open_door)


def main(argv: list[str] | None = None) -> int:
    from va_core.config import Settings

    parser = argparse.ArgumentParser(prog="python -m va_ui.auth", description="manage the labelling app's logins")
    parser.add_argument("--home", default=None, help="the va home (default $VA_HOME)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("add", help="add a user or change a password")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p = sub.add_parser("remove", help="remove a user")
    p.add_argument("name")
    sub.add_parser("list", help="list the users and the state of the door")
    sub.add_parser("open", help="no logins: anyone may type a name (refused while users exist)")
    sub.add_parser("close", help="nobody gets in until a user is added")
    args = parser.parse_args(argv)
    path = users_file(Settings.from_env(home=args.home))

    def run() -> None:
        if args.command == "add":
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = getpass.getpass(f"password for {args.name}: ")
                if getpass.getpass("again: ") != password:
                    raise InputError("the passwords differ")
            add_user(path, args.name, password)
            print(f"{args.name} can log in ({path})")
        elif args.command == "remove":
            remove_user(path, args.name)
            print(f"{args.name} removed ({path})")
        elif args.command in ("open", "close"):
            set_open(path, args.command == "open")
            print(f"the app is {read_door(path).state}: {read_door(path).reason}")
        else:
            door = read_door(path)
            if door.users:
                print("\n".join(sorted(door.users)))
            print(f"the app is {door.state}: {door.reason}", file=sys.stderr)

    return exit_status("", run)


if __name__ == "__main__":
    sys.exit(main())
