"""Session fixtures: a va home with approved classifiers and a real model server on it."""
from __future__ import annotations

import pytest

from .homes import MAX_ROWS, ServingHome, make_home


@pytest.fixture(scope="session", autouse=True)
def own_bentoml_home():
    """Each va home uses its own BentoML store ($VA_HOME/bentoml), never the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("BENTOML_HOME", raising=False)
        mp.setenv("BENTOML_DO_NOT_TRACK", "true")
        yield


@pytest.fixture(scope="session")
def serving_home(tmp_path_factory) -> ServingHome:
    return make_home(tmp_path_factory.mktemp("serving") / "home")


@pytest.fixture(scope="session")
def server(serving_home):
    """`va serve` on a free 127.0.0.1 port, reloading every 0.2 s, at most 64 rows per request."""
    from va_serving.client import ServerProcess

    env = {"VA_SERVING_RELOAD_S": "0.2", "VA_SERVING_MAX_ROWS": str(MAX_ROWS),
           "BENTOML_HOME": str(serving_home.settings.home / "bentoml")}
    with ServerProcess(serving_home.settings, extra_env=env) as proc:
        yield proc


@pytest.fixture(scope="session")
def client(server):
    return server.client()
