"""Secrets never go into what the LAN can fetch (issue 10, "Secrets and the LAN").

The overlay is served over TFTP to anyone on the LAN: a secrets file, a .env or a private key
in app.path is left out with a warning; the app.env it does carry has only the token's sha256
and the status public key.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from steps.answers import Answers
from steps.app import AppStep
from steps.artifacts import AppBundle, Extension, ExtensionSet
from steps.base import StepContext
from steps.events import LogLine
from tests.support.wheelhouse import service_wheels

TOKEN = "do-not-serve-me-0123"


@pytest.fixture
def ctx(answers: Answers, tmp_path: Path) -> StepContext:
    wh = tmp_path / "wheelhouse"
    service_wheels(wh)
    answers.app.wheelhouse = str(wh)
    answers.app.python_packages = ["fastapi", "uvicorn"]
    app = tmp_path / "myapp"
    (app / "certs").mkdir(parents=True)
    (app / "main.py").write_text("app = None\n")
    (app / ".env").write_text("DB_PASSWORD=hunter2\n")
    (app / "certs" / "server.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (app / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (app / "id_ed25519.pub").write_text("ssh-ed25519 AAAA me\n")
    (app / "app.secrets.toml").write_text(f'token = "{TOKEN}"\n')
    os.chmod(app / "app.secrets.toml", 0o600)
    (app / "mine.toml").symlink_to("app.secrets.toml")  # the named file, by another name
    answers.app.path = str(app)
    answers.app.secrets_file = str(app / "app.secrets.toml")
    c = StepContext(answers)
    c.results.put(
        ExtensionSet(
            requested=("python3.11.tcz",),
            packages=(Extension("python3.11.tcz", (), ("python3.11.tcz",)),),
        )
    )
    return c


def test_secret_looking_files_in_app_path_are_left_out_with_a_warning(ctx: StepContext) -> None:
    events = list(AppStep().run(ctx))
    bundle = ctx.results.get(AppBundle)
    assert bundle is not None
    paths = {f.path.removeprefix("opt/firecore/app/") for f in bundle.files}
    assert "main.py" in paths and "id_ed25519.pub" in paths
    for secret in (".env", "certs/server.pem", "id_ed25519", "app.secrets.toml", "mine.toml"):
        assert secret not in paths, secret
    warned = " ".join(e.text for e in events if isinstance(e, LogLine) and e.stream == "warning")
    for secret in (".env", "server.pem", "id_ed25519", "app.secrets.toml"):
        assert secret in warned
    shipped = b"".join(
        f.data if f.data is not None else f.source.read_bytes()  # type: ignore[union-attr]
        for f in bundle.files
        if not f.is_dir
    )
    assert TOKEN.encode() not in shipped and b"hunter2" not in shipped
    env = next(f for f in bundle.files if f.path == "opt/firecore/app.env")
    assert env.data is not None and b"FIRECORE_TOKEN_PUBKEY=" in env.data


def test_mirror_credentials_reach_no_log_cache_name_or_manifest(
    mirror_server: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: object
) -> None:
    """A whole build (release → remaster) from a mirror URL with a user and a password."""
    from steps import plan
    from steps.answers import default_answers
    from steps.answers_toml import dump_answers
    from steps.demo.wheels import demo_wheelhouse
    from wizard.cli import main

    monkeypatch.setattr(plan, "PLAN", plan.PLAN[:4])  # no network or deploy here
    url = mirror_server.url  # type: ignore[attr-defined]
    answers = default_answers()
    answers.release.mirrors = [url.replace("http://", "http://fc-user:s3cr3t-pw@")]
    answers.release.boards = ["pi3"]
    answers.extensions.names = ["openssh.tcz", "python3.11.tcz"]
    answers.app.wheelhouse = str(demo_wheelhouse(tmp_path / "wheels"))
    answers.build.cache = str(tmp_path / "cache")
    answers.build.output = str(tmp_path / "out")
    (tmp_path / "a.toml").write_text(dump_answers(answers))
    code = main(["--answers", str(tmp_path / "a.toml"), "--json"])
    out, err = capsys.readouterr()  # type: ignore[attr-defined]
    assert code == 0, err
    for secret in ("s3cr3t-pw", "fc-user"):
        assert secret not in out + err
        for p in [*(tmp_path / "out").rglob("*"), *(tmp_path / "cache").rglob("*")]:
            assert secret not in str(p)
            if p.is_file() and p.suffix in (".json", ".txt", ".env", ""):
                assert secret.encode() not in p.read_bytes(), p
    manifest = (tmp_path / "out" / "manifest.json").read_text()
    assert url in manifest  # the mirror is recorded, without its password
