"""The App step: app validation, entry points, token model, and the AppBundle it hands on."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from steps.answers import Answers, default_answers
from steps.app import AppStep
from steps.artifacts import AppBundle, Extension, ExtensionSet, ReleaseArtifact
from steps.base import StepContext
from steps.demo.server import MirrorServer
from steps.errors import AnswersError, StepError
from steps.events import Event, LogLine, Planned, Result
from tests.support.elf import shared_object
from tests.support.wheelhouse import PI_ARMV7_311, make_wheel, service_wheels


@pytest.fixture
def ctx(answers: Answers, tmp_path: Path) -> StepContext:
    wh = tmp_path / "wheelhouse"
    service_wheels(wh)
    make_wheel(wh, "userdep", tag=PI_ARMV7_311)
    answers.app.wheelhouse = str(wh)
    answers.app.python_packages = ["fastapi", "uvicorn"]
    c = StepContext(answers)
    c.results.put(
        ExtensionSet(
            requested=("openssh.tcz", "python3.11.tcz"),
            packages=tuple(Extension(n, (), (n,)) for n in ("openssl.tcz", "python3.11.tcz")),
        )
    )
    return c


def run(ctx: StepContext) -> tuple[list[Event], AppBundle]:
    events = list(AppStep().run(ctx))
    bundle = ctx.results.get(AppBundle)
    assert bundle is not None
    return events, bundle


def by_path(bundle: AppBundle) -> dict[str, object]:
    return {f.path: f for f in bundle.files}


def env_of(bundle: AppBundle) -> dict[str, str]:
    f = next(f for f in bundle.files if f.path == "opt/firecore/app.env")
    assert f.data is not None
    return {
        k: v.strip("'") for k, v in (line.split("=", 1) for line in f.data.decode().splitlines())
    }


def test_bundled_app_bundle(ctx: StepContext) -> None:
    events, bundle = run(ctx)
    files = by_path(bundle)
    assert "opt/firecore/agent/firecore_app/service.py" in files
    assert "opt/firecore/agent/ruff.toml" not in files  # only the package is shipped
    # no bytecode from the build host's own __pycache__: only what was compiled for the Pi
    cached = [p for p in files if "/__pycache__/" in p]
    assert cached and all(p.endswith(".cpython-311.pyc") for p in cached)
    assert all(
        p.replace("__pycache__/", "").replace(".cpython-311", "")[:-1] in files for p in cached
    )
    boot = next(f for f in bundle.files if f.path == "opt/firecore/boot.sh")
    assert boot.mode == 0o755 and boot.uid == 0 and boot.source is not None
    assert boot.source.read_text().startswith("#!/bin/sh")
    assert {f.path for f in bundle.files if f.is_dir} >= {
        "opt/firecore",
        "opt/firecore/agent",
        "opt/firecore/site-packages",
    }
    assert "opt" not in files  # exists in the base rootfs; remaster keeps its metadata
    assert "opt/firecore/site-packages/fastapi/__init__.py" in files
    assert "opt/firecore/site-packages/zeroconf/__init__.py" in files
    assert all(f.mode in (0o644, 0o755) and f.uid == 0 and f.gid == 0 for f in bundle.files)
    env = env_of(bundle)
    assert env["FIRECORE_APP_MODE"] == "bundled" and env["FIRECORE_PORT"] == "8000"
    assert env["FIRECORE_PYTHON"] == "python3.11" and env["FIRECORE_TOKEN_SHA256"] == ""
    assert env["FIRECORE_HOSTNAME"] == "firecore"
    assert bundle.bootlocal == "/opt/firecore/boot.sh &\n"
    assert bundle.python == "3.11" and bundle.platform == "manylinux2014_armv7l"
    assert f"zeroconf-0.132.0-{PI_ARMV7_311}.whl" in bundle.wheels
    result = next(e for e in events if isinstance(e, Result))
    assert result.data["mode"] == "bundled" and result.data["digest"] == bundle.digest
    assert [p for p in bundle.files] == sorted(bundle.files, key=lambda f: f.path)
    # same inputs, same bundle (the wheels now come from the cache)
    _, again = run(ctx)
    assert again.digest == bundle.digest and again.files == bundle.files


def test_token_only_its_sha256_reaches_the_overlay(ctx: StepContext, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('token = "hunter2-very-secret"\n')
    secrets.chmod(0o600)
    ctx.answers.app.secrets_file = str(secrets)
    events, bundle = run(ctx)
    assert (
        env_of(bundle)["FIRECORE_TOKEN_SHA256"]
        == hashlib.sha256(b"hunter2-very-secret").hexdigest()
    )
    for f in bundle.files:
        content = f.data if f.data is not None else (f.source.read_bytes() if f.source else b"")
        assert b"hunter2-very-secret" not in content, f.path
    assert next(e for e in events if isinstance(e, Result)).data["token"] is True
    secrets.chmod(0o644)
    with pytest.raises(AnswersError, match="chmod 600"):
        run(ctx)


def test_user_asgi_app_with_requirements(ctx: StepContext, tmp_path: Path) -> None:
    app = tmp_path / "myapp"
    (app / "pkg").mkdir(parents=True)
    (app / "main.py").write_text("from fastapi import FastAPI\n\napp = FastAPI()\n")
    (app / "pkg" / "__init__.py").write_text("")
    (app / "requirements.txt").write_text("# deps\nuserdep  # for the sensor\n\n")
    (app / "__pycache__").mkdir()
    (app / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"x")
    (app / "data.txt").write_text("hello\n")
    os.symlink("data.txt", app / "link.txt")  # inside the tree: shipped as the file
    ctx.answers.app.path = str(app)
    ctx.answers.app.env = {"GREETING": "it's me", "FIRECORE_NET_WAIT": "120"}
    events, bundle = run(ctx)
    files = by_path(bundle)
    assert {"opt/firecore/app/main.py", "opt/firecore/app/pkg/__init__.py"} <= set(files)
    # no bytecode from the build host's own __pycache__: only what was compiled for the Pi
    cached = [p for p in files if "/__pycache__/" in p]
    assert cached and all(p.endswith(".cpython-311.pyc") for p in cached)
    assert all(
        p.replace("__pycache__/", "").replace(".cpython-311", "")[:-1] in files for p in cached
    )
    link = next(f for f in bundle.files if f.path == "opt/firecore/app/link.txt")
    assert link.source == (app / "data.txt").resolve()
    assert "opt/firecore/site-packages/userdep/__init__.py" in files
    env = env_of(bundle)
    assert env["FIRECORE_APP_MODE"] == "module" and env["FIRECORE_APP_MODULE"] == "main:app"
    assert env["FIRECORE_NET_WAIT"] == "120"
    app_env = next(f for f in bundle.files if f.path == "opt/firecore/app.env")
    assert app_env.data is not None and b"GREETING='it'\\''s me'\n" in app_env.data
    result = next(e for e in events if isinstance(e, Result))
    assert "userdep" in result.data["requirements"]


def test_run_script_entry_point(ctx: StepContext, tmp_path: Path) -> None:
    app = tmp_path / "runapp"
    app.mkdir()
    (app / "run").write_text("#!/bin/sh\nexec python3 server.py\n")
    (app / "run").chmod(0o755)
    (app / "main.py").write_text("app = object()\n")  # `run` wins
    ctx.answers.app.path = str(app)
    _, bundle = run(ctx)
    assert env_of(bundle)["FIRECORE_APP_MODE"] == "run"
    run_file = next(f for f in bundle.files if f.path == "opt/firecore/app/run")
    assert run_file.mode == 0o755
    (app / "run").chmod(0o644)
    with pytest.raises(AnswersError) as err:
        run(ctx)
    assert err.value.key == "app.path" and "chmod +x" in err.value.fix


BAD_APPS: dict[str, tuple[dict[str, str], dict[str, str], str]] = {
    # name: (files, symlinks, expected text); every error names app.path
    "empty": ({}, {}, "no entry point"),
    "no-app": ({"main.py": "api = 1\n"}, {}, "no entry point"),
    "too-new-syntax": (
        {"main.py": "app = 1\nmatch app:\n    case 1:\n        pass\n"},
        {},
        "the Pi runs Python 3.8",
    ),
    "escaping-symlink": ({"main.py": "app = 1\n"}, {"pw": "/etc/passwd"}, "outside the app"),
    "dir-symlink": ({"main.py": "app = 1\n"}, {"up": ".."}, "symlink to a directory"),
    "pip-option": (
        {"main.py": "app = 1\n", "requirements.txt": "-e .\n"},
        {},
        "pip option '-e'",
    ),
    "bad-req": (
        {"main.py": "app = 1\n", "requirements.txt": "fast api!!\n"},
        {},
        "is not a pip requirement",
    ),
}


@pytest.mark.parametrize("case", list(BAD_APPS))
def test_bad_user_apps_are_refused_with_the_key(
    ctx: StepContext, tmp_path: Path, case: str
) -> None:
    files, links, text = BAD_APPS[case]
    app = tmp_path / "bad"
    app.mkdir()
    for name, content in files.items():
        (app / name).write_text(content)
    for name, target in links.items():
        os.symlink(target, app / name)
    ctx.answers.app.path = str(app)
    ctx.results.put(
        ExtensionSet(requested=("python3.8.tcz",), packages=(Extension("python3.8.tcz", (), ()),))
    )
    with pytest.raises(AnswersError) as err:
        run(ctx)
    assert err.value.key.startswith("app.path")  # requirements errors add file:line
    assert text in str(err.value)


def test_explicit_module_and_missing_inputs(ctx: StepContext, tmp_path: Path) -> None:
    app = tmp_path / "explicit"
    (app / "web").mkdir(parents=True)
    (app / "web" / "server.py").write_text("from x import make\napi = make()\n")
    ctx.answers.app.path = str(app)
    ctx.answers.app.env = {"FIRECORE_APP_MODULE": "web.server:api"}
    _, bundle = run(ctx)
    assert env_of(bundle)["FIRECORE_APP_MODULE"] == "web.server:api"
    ctx.answers.app.env = {"FIRECORE_APP_MODULE": "web.server:nothere"}
    with pytest.raises(AnswersError, match="defines no top-level nothere"):
        run(ctx)
    ctx.answers.app.path = str(tmp_path / "missing")
    with pytest.raises(AnswersError, match="does not exist"):
        run(ctx)
    ctx.answers.app.path = ""
    ctx.results.put(ExtensionSet(requested=("openssh.tcz",), packages=()))
    with pytest.raises(AnswersError) as err:
        run(ctx)
    assert err.value.key == "extensions.names"
    ctx.results.clear()
    with pytest.raises(StepError, match="needs ExtensionSet"):
        run(ctx)


def test_dry_run_plans_and_writes_nothing_outside_the_cache(
    ctx: StepContext, tmp_path: Path
) -> None:
    ctx.dry_run = True
    before = set(tmp_path.iterdir())
    events, _ = run(ctx)
    planned = [e for e in events if isinstance(e, Planned)]
    targets = {e.target for e in planned}
    assert "/opt/firecore/boot.sh" in targets and "/opt/firecore/app.env" in targets
    assert "/opt/firecore/agent/" in targets and "/opt/firecore/site-packages/" in targets
    assert any(e.action.startswith("pip install") for e in planned)
    assert set(tmp_path.iterdir()) - before == {tmp_path / "cache"}


def test_wheels_needing_a_library_the_pi_lacks_name_the_extension(
    mirror_server: MirrorServer, tmp_path: Path
) -> None:
    """DT_NEEDED vs the base rootfs + the closure's .tcz.list files, over the real steps."""
    from steps.extensions import ExtensionsStep
    from steps.release import ReleaseStep

    wh = tmp_path / "wheelhouse"
    service_wheels(wh)
    core = shared_object(["libstdc++.so.6", "libm.so.6", "libc.so.6"])
    make_wheel(
        wh,
        "fastcalc",
        tag=PI_ARMV7_311,
        files={"fastcalc/__init__.py": b"", "fastcalc/_core.cpython-311.so": core},
    )
    a = default_answers()
    a.release.mirrors = [mirror_server.url]
    a.release.version, a.release.arch = "15.0.0", "armhf"
    a.release.boards = ["pi3", "pi4"]
    a.build.cache = str(tmp_path / "cache")
    a.app.wheelhouse = str(wh)
    a.app.python_packages = ["fastcalc"]

    def run_steps(names: list[str]) -> tuple[StepContext, list[Event]]:
        a.extensions.names = names
        ctx = StepContext(a)
        for step in (ReleaseStep(), ExtensionsStep()):
            list(step.run(ctx))
        return ctx, list(AppStep().run(ctx))

    with pytest.raises(AnswersError) as err:
        run_steps(["python3.11.tcz"])
    assert err.value.key == "extensions.names"
    assert "libstdc++.so.6 (needed by fastcalc/_core.cpython-311.so; in gcc_libs.tcz)" in (
        err.value.message
    )
    assert err.value.fix == "add gcc_libs.tcz to extensions.names"
    ctx, events = run_steps(["python3.11.tcz", "gcc_libs.tcz"])
    release = ctx.results.get(ReleaseArtifact)
    assert release is not None and release.glibc == "2.38"  # read from its libc.so.6
    texts = [e.text for e in events if isinstance(e, LogLine)]
    assert any("glibc 2.38 (its libc.so.6)" in t for t in texts)
    assert "every library the wheels link to is on the Pi" in texts


def test_parsed_sources_are_remembered_per_target_python_and_errors_never(
    ctx: StepContext, tmp_path: Path
) -> None:
    """A source that parsed for 3.11 is not parsed again for 3.11, but is for 3.8 (where
    `match` is a syntax error), and a file that does not parse fails on every run."""
    from steps.paths import cache_dir, parsed_sources_file
    from steps.picore.appbundle import ParsedSources, TreeFile, bundled_dir, check_syntax

    src = tmp_path / "main.py"
    src.write_text("app = 1\nmatch app:\n    case 1:\n        pass\n")
    files = [TreeFile("main.py", src, 0o644, False)]
    store = tmp_path / "parsed.json"
    parsed = ParsedSources(store, "3.11")
    check_syntax(files, "3.11", "app.path", parsed)
    parsed.save()
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert digest in ParsedSources(store, "3.11")
    assert digest not in ParsedSources(store, "3.8")
    with pytest.raises(AnswersError, match=r"the Pi runs Python 3\.8"):
        check_syntax(files, "3.8", "app.path", ParsedSources(store, "3.8"))
    src.write_text("def broken(:\n")
    for _ in range(2):
        with pytest.raises(AnswersError, match=r"main\.py:1"):
            check_syntax(files, "3.11", "app.path", ParsedSources(store, "3.11"))
    # The step keeps its list in the build cache; a dry run writes nothing there.
    ctx.dry_run = True
    run(ctx)
    where = parsed_sources_file(cache_dir(ctx.answers, ctx.cache_dir))
    assert not where.exists()
    ctx.dry_run = False
    run(ctx)
    agent = bundled_dir() / "firecore_app" / "service.py"
    assert hashlib.sha256(agent.read_bytes()).hexdigest() in ParsedSources(where, "3.11")
