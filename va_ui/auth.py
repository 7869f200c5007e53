"""Who is labelling: logins from a users file, or a name typed into the app.

The users file is ``$VA_HOME/users.json`` (or ``VA_USERS_FILE``)::

    {"users": {"maria": {"salt": "<hex>", "hash": "<hex>", "iterations": 600000,
                         "algorithm": "pbkdf2_sha256"}}}

Passwords are stored only as PBKDF2-HMAC-SHA256 hashes with a random salt per user.
Manage it with ``python -m va_ui.auth add NAME`` (asks for the password) and
``python -m va_ui.auth remove NAME``. When the file exists the app asks for a login
and every label carries the login name; without it the app asks for a name instead.
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
from pathlib import Path

from va_core.errors import InputError, VAError
from va_ui.command import exit_status

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
USER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
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
    """The users of a users file; a malformed file is an error, never an open door."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise VAError(f"users file {path} is not valid JSON: {exc}") from exc
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict) or not users:
        raise VAError(f"users file {path} has no users; add one with `python -m va_ui.auth add NAME`")
    for name, record in users.items():
        if not USER_PATTERN.match(name) or not isinstance(record, dict) or not {"salt", "hash", "iterations"} <= set(record):
            raise VAError(f"users file {path}: entry {name!r} is malformed")
    return users


def authenticator(settings):
    """A ``(username, password) -> bool`` for Gradio's login, or None when no users file exists."""
    path = users_file(settings)
    if not path.exists():
        return None
    load_users(path)  # fail at start, not at the first login

    def check(username: str, password: str) -> bool:
        # Re-read on each login so added or removed users take effect without a restart.
        record = load_users(path).get(username)
        return record is not None and verify_password(record, password)

    return check


def _write(path: Path, users: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"users": users}, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def add_user(path: Path, name: str, password: str, iterations: int = ITERATIONS) -> None:
    if not USER_PATTERN.match(name or ""):
        raise InputError(f"bad user name {name!r}: 1-64 letters, digits, '_', '.', '@' or '-'")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password has at least {MIN_PASSWORD} characters")
    users = load_users(path) if path.exists() else {}
    users[name] = hash_password(password, iterations=iterations)
    _write(path, users)


def remove_user(path: Path, name: str) -> None:
    users = load_users(path) if path.exists() else {}
    if name not in users:
        raise InputError(f"no user {name!r} in {path}")
    del users[name]
    if users:
        _write(path, users)
    else:
        path.unlink()  # no users left: the app asks for a name again


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
    sub.add_parser("list", help="list the users")
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
        else:
            print("\n".join(sorted(load_users(path))) if path.exists() else f"no users file at {path}")

    return exit_status("", run)


if __name__ == "__main__":
    sys.exit(main())
