"""The bundled Pi app's endpoints, with FastAPI's TestClient, on fake and on missing Pi files."""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from firecore_app import auth, logs, service
from firecore_app.settings import Settings

from tests.support.pifiles import pi_files

TOKEN = "s3cret-token"


def client(env: dict[str, str], token: str | None = None) -> TestClient:
    if token is not None:
        env = {**env, "FIRECORE_TOKEN_SHA256": hashlib.sha256(token.encode()).hexdigest()}
    return TestClient(service.create_app(Settings.from_env(env)))


def test_health_reports_the_build_id_without_a_token(tmp_path: Path) -> None:
    env = pi_files(tmp_path)
    for c in (client(env), client(env, TOKEN)):
        r = c.get("/health")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ok" and body["build_id"] == "b1d0c0de"
        assert body["serial"] == "abcdef12"


def test_info_on_a_pi(tmp_path: Path) -> None:
    info = client(pi_files(tmp_path)).get("/info").json()
    assert info["serial"] == "abcdef12" and info["serial_full"] == "00000000abcdef12"
    assert info["model"] == "Raspberry Pi 3 Model B Rev 1.2"
    assert info["kernel"] == "6.6.47-piCore-v7"
    assert info["uptime"] == 3723.45
    assert info["memory"] == {
        "total": 948304 * 1024,
        "free": 700000 * 1024,
        "available": 800000 * 1024,
    }
    assert info["extensions"] == ["openssh", "openssl", "python3.11"]
    assert info["addresses"]["ipv6"] == {"eth0": ["fe80::1"]}
    assert info["temperature"] == 48.3 and info["load"] == [0.1, 0.2, 0.3]
    assert info["build_id"] == "b1d0c0de" and info["build"]["version"] == "15.0.0"


def test_info_on_a_host_without_pi_files_is_graceful(tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    env = {
        "FIRECORE_PROC": str(empty),
        "FIRECORE_SYS": str(empty),
        "FIRECORE_TCE_INSTALLED": str(empty / "tce"),
        "FIRECORE_BUILD_FILE": str(empty / "build.json"),
        "FIRECORE_LOG_DIR": str(tmp_path / "log"),
    }
    c = client(env)
    r = c.get("/info")
    assert r.status_code == 200
    info = r.json()
    assert info["serial"] is None and info["model"] is None and info["uptime"] is None
    assert info["memory"] == {"total": None, "free": None, "available": None}
    assert info["extensions"] == [] and info["build_id"] == "unknown" and info["build"] == {}
    assert info["hostname"]  # from the socket module, always there
    assert c.get("/health").json()["build_id"] == "unknown"
    assert c.get("/").status_code == 200 and c.get("/logs").status_code == 200


@pytest.mark.parametrize("path", ["/info", "/logs", "/", "/firecore"])
def test_everything_but_health_needs_the_token(tmp_path: Path, path: str) -> None:
    c = client(pi_files(tmp_path), TOKEN)
    missing = c.get(path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert c.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert c.get(path, params={"token": TOKEN}).status_code == 200  # for a browser
    assert c.get(path, params={"token": TOKEN + "x"}).status_code == 401


def test_token_check_compares_digests() -> None:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    assert auth.allowed(digest, TOKEN)
    assert not auth.allowed(digest, digest)  # the digest itself is not the token
    assert not auth.allowed(digest, None) and auth.allowed("", None)
    assert auth.bearer("Bearer  abc ") == "abc" and auth.bearer("bearer x") == "x"
    assert auth.bearer("Bearer") is None and auth.bearer(None) is None


def test_bad_token_digest_setting_is_refused() -> None:
    with pytest.raises(SystemExit, match="FIRECORE_TOKEN_SHA256"):
        Settings.from_env({"FIRECORE_TOKEN_SHA256": TOKEN})
    with pytest.raises(SystemExit, match="FIRECORE_PORT"):
        Settings.from_env({"FIRECORE_PORT": "eighty"})


def test_logs_returns_the_tail_of_each_log(tmp_path: Path) -> None:
    env = pi_files(tmp_path)
    log_dir = Path(env["FIRECORE_LOG_DIR"])
    log_dir.mkdir()
    (log_dir / "boot.log").write_text("".join(f"boot line {i}\n" for i in range(5000)))
    (log_dir / "app.log").write_text("app started\n")
    c = client(env)
    boot = c.get("/logs", params={"name": "boot", "lines": 3}).text.splitlines()
    assert boot == [
        f"==> {log_dir / 'boot.log'} <==",
        *(f"boot line {i}" for i in (4997, 4998, 4999)),
    ]
    everything = c.get("/logs").text
    assert "app started" in everything and "boot line 4999" in everything
    assert "boot line 4799" not in everything  # 200 lines by default
    assert f"==> {log_dir / 'app.out'} <==\n(empty)" in everything
    assert c.get("/logs", params={"name": "../etc/passwd"}).status_code == 422
    assert c.get("/logs", params={"lines": 0}).status_code == 422


def test_status_page_escapes_what_it_shows(tmp_path: Path) -> None:
    env = pi_files(tmp_path)
    Path(env["FIRECORE_PROC"], "device-tree", "model").write_bytes(b"<script>x</script>\x00")
    page = client(env).get("/").text
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>" not in page
    assert "b1d0c0de" in page and "abcdef12" in page and "01:02:03" in page


def test_tail_reads_backwards_across_blocks(tmp_path: Path) -> None:
    f = tmp_path / "big.log"
    f.write_text("".join(f"{i:06d} " + "x" * 100 + "\n" for i in range(2000)))
    got = logs.tail(str(f), 150, block=512)
    assert len(got) == 150 and got[0].startswith("001850") and got[-1].startswith("001999")
    assert logs.tail(str(tmp_path / "none.log"), 5) == []


def test_app_log_rotates_and_redacts_tokens(tmp_path: Path) -> None:
    env = {"FIRECORE_LOG_DIR": str(tmp_path / "log"), "FIRECORE_LOG_MAX_BYTES": "2000"}
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.setup(Settings.from_env(env))
        access = logging.getLogger("uvicorn.access")
        for i in range(100):
            access.info(
                '%s - "%s %s HTTP/1.1" %d', "10.0.0.9", "GET", f"/info?token={TOKEN}&n={i}", 200
            )
        for h in root.handlers:
            h.flush()
    finally:
        for h in root.handlers:
            h.close()
        root.handlers[:], level = saved
        root.setLevel(level)
    files = sorted(p.name for p in (tmp_path / "log").iterdir())
    assert files == ["app.log", "app.log.1", "app.log.2"]  # FIRECORE_LOG_BACKUPS=2 by default
    text = "".join((tmp_path / "log" / n).read_text() for n in files)
    assert TOKEN not in text and "token=***&n=99" in text
    assert all((tmp_path / "log" / n).stat().st_size <= 2000 for n in files)


def test_a_user_app_gets_every_path_but_the_reserved_ones(tmp_path: Path) -> None:
    app_dir = tmp_path / "userapp"
    app_dir.mkdir()
    (app_dir / "usermain.py").write_text(
        "from contextlib import asynccontextmanager\n"
        "from fastapi import FastAPI\n"
        "STARTED = []\n"
        "@asynccontextmanager\n"
        "async def lifespan(app):\n"
        "    STARTED.append(True)\n"
        "    yield\n"
        "app = FastAPI(lifespan=lifespan)\n"
        "@app.get('/')\n"
        "def root():\n"
        "    return {'hello': 'from the user app'}\n"
        "@app.get('/health')\n"
        "def shadowed():\n"
        "    return {'status': 'user'}\n"
    )
    env = {
        **pi_files(tmp_path),
        "FIRECORE_APP_MODULE": "usermain:app",
        "FIRECORE_APP_DIR": str(app_dir),
        "FIRECORE_TOKEN_SHA256": hashlib.sha256(TOKEN.encode()).hexdigest(),
    }
    asgi = service.asgi(Settings.from_env(env))
    import usermain  # type: ignore[import-not-found]

    with TestClient(asgi) as c:  # the context manager runs the lifespan
        assert usermain.STARTED == [True]
        assert c.get("/").json() == {"hello": "from the user app"}  # no token: the user's page
        assert c.get("/health").json()["build_id"] == "b1d0c0de"  # reserved: firecore's
        assert c.get("/info").status_code == 401
        assert c.get("/firecore", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get("/nope").status_code == 404
