"""The app bundle for the Pi: what goes under ``/opt/firecore`` and how boot.sh starts it.

The library half of the App step (``steps.app``): scanning and checking the app directory, finding
its entry point, the ``app.env`` settings and the digest of a bundle. The remaster step uses the
digest; the App step orchestrates the rest.

Layout on the Pi (all root-owned, readable by user tc)::

    /opt/firecore/agent/firecore_app/   the bundled service (always: /health, /info, mDNS)
    /opt/firecore/app/                  the user's app directory (only with app.path)
    /opt/firecore/site-packages/        the wheels, installed for the Pi
    /opt/firecore/boot.sh               started from bootlocal.sh; supervises the app
    /opt/firecore/app.env               settings (sh-quoted KEY='value' lines)

The user-app convention (``app.path``), first match wins:

1. ``FIRECORE_APP_MODULE`` in ``app.env`` names ``module:attr`` explicitly;
2. an executable ``run`` file: started as is (cwd = the app dir); it must serve ``GET /health``
   on ``$FIRECORE_PORT`` (status polls it);
3. ``main.py``, else ``app.py``, defining a module-level ``app`` (an ASGI app such as
   ``FastAPI()``): served by firecore_app with uvicorn, which keeps /health, /info, /logs and
   /firecore for itself and hands every other path (and the lifespan) to the user's app.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import hashlib
import importlib.util
import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from steps.answers import Answers, load_secrets, resolve_path
from steps.artifacts import OverlayFile
from steps.errors import AnswersError
from steps.fsutil import load_cache_json, save_cache_json
from steps.paths import asset
from steps.picore.wheels import check_requirement

PREFIX = "opt/firecore"
BOOT_SCRIPT = f"{PREFIX}/boot.sh"
APP_ENV = f"{PREFIX}/app.env"
BOOTLOCAL_LINE = "/opt/firecore/boot.sh &"
#: what the bundled service needs on the Pi (the announcer needs zeroconf in every mode)
SERVICE_REQUIREMENTS = ("fastapi", "uvicorn")
ANNOUNCE_REQUIREMENTS = ("zeroconf",)
#: never shipped from an app directory (build caches, VCS, virtualenvs)
EXCLUDE_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".mypy_cache", ".pytest_cache",
     ".ruff_cache", ".tox", ".idea", ".vscode"}
)  # fmt: skip
EXCLUDE_SUFFIXES = (".pyc", ".pyo")
#: File names that hold secrets by convention. The overlay is served over TFTP to anyone on the
#: LAN, so such a file in app.path is left out (with a warning), as is the file app.secrets_file
#: names; settings reach the Pi through app.env instead. ``*.pub`` keys are public and shipped.
SECRET_PATTERNS = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.kdbx",
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_*_sk", "id_ecdsa_sk", "id_ed25519_sk",
    ".netrc", ".pgpass", ".git-credentials", ".htpasswd", "credentials", "credentials.*",
    "*.secrets.toml", "secrets.toml", "secrets.json", "secrets.yaml", "secrets.yml",
)  # fmt: skip
_MODULE = (
    r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_]"
    r"[A-Za-z0-9_]*)*)?"
)

Mode = Literal["bundled", "module", "run"]


@dataclass(frozen=True)
class EntryPoint:
    """How boot.sh starts the app."""

    mode: Mode
    module: str = ""
    """``module:attr`` for mode "module"."""
    file: str = ""
    """The file that provides it (relative to the app dir), for messages."""


@dataclass(frozen=True)
class TreeFile:
    """One file or directory of an app tree, relative to its root."""

    rel: str
    source: Path
    mode: int
    is_dir: bool


def bundled_dir() -> Path:
    """The bundled app (the firecore_app package) in assets/app."""
    return asset("app")


def scan_tree(root: Path, key: str) -> list[TreeFile]:
    """Every file and directory below ``root`` to ship, sorted, with shippable modes.

    Symlinks to files inside the tree are shipped as the file they point to; a symlink that
    leaves the tree, an absolute one, one to a directory, or a special file is an error naming
    ``key`` (the answers key the tree came from).
    """
    out: list[TreeFile] = []
    real_root = Path(os.path.realpath(root))
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDE_DIRS)
        for d in list(dirnames):
            path = here / d
            if path.is_symlink():
                raise AnswersError(
                    key,
                    f"{path} is a symlink to a directory",
                    fix="replace it with a real directory (only file symlinks inside the app "
                    "are followed)",
                )
            out.append(TreeFile(path.relative_to(root).as_posix(), path, 0o755, True))
        for name in sorted(filenames):
            if name.endswith(EXCLUDE_SUFFIXES):
                continue
            path = here / name
            rel = path.relative_to(root).as_posix()
            source = _checked_file(path, root, real_root, key)
            perm = stat.S_IMODE(source.stat().st_mode)
            out.append(TreeFile(rel, source, 0o755 if perm & 0o111 else 0o644, False))
    return sorted(out, key=lambda f: f.rel)


def split_secrets(files: list[TreeFile], answers: Answers) -> tuple[list[TreeFile], list[TreeFile]]:
    """(files to ship, secret-looking files left out): ``SECRET_PATTERNS`` by name, and the
    file ``app.secrets_file`` names (also when reached through a symlink)."""
    named: set[Path] = set()
    if answers.app.secrets_file:
        named.add(Path(os.path.realpath(resolve_path(answers.app.secrets_file))))
    keep: list[TreeFile] = []
    secret: list[TreeFile] = []
    for f in files:
        name = f.rel.rsplit("/", 1)[-1]
        hit = (
            not f.is_dir
            and not name.endswith(".pub")
            and (
                any(fnmatch.fnmatchcase(name, pat) for pat in SECRET_PATTERNS)
                or Path(os.path.realpath(f.source)) in named
            )
        )
        (secret if hit else keep).append(f)
    return keep, secret


def _checked_file(path: Path, root: Path, real_root: Path, key: str) -> Path:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        link = os.readlink(path)
        real = Path(os.path.realpath(path))
        if os.path.isabs(link) or not (real == real_root or real_root in real.parents):
            raise AnswersError(
                key,
                f"{path} is a symlink to {link}, outside the app directory {root}",
                fix="replace the symlink by a copy of the file, or move its target into the app",
            )
        if not real.is_file():
            raise AnswersError(
                key, f"{path} points to {link}, which is not a file", fix="fix or remove it"
            )
        return real
    if not stat.S_ISREG(st.st_mode):
        raise AnswersError(
            key,
            f"{path} is not a regular file (a socket, FIFO or device)",
            fix="remove it from the app directory",
        )
    return path


class ParsedSources:
    """sha256 of the sources that parsed for one target Python, kept in the cache.

    Parsing is the app step's largest cost on a rerun, and the same bytes parse the same way
    with the same parser: a source listed here for this (checking Python, target Python) pair
    is not parsed again. Only successes are kept, so an error is reported on every run. The
    list is capped (oldest dropped); losing it only costs a parse.
    """

    LIMIT = 4096

    def __init__(self, store: Path, python: str) -> None:
        self.store = store
        self.pair = f"{sys.version_info[0]}.{sys.version_info[1]}>{python}"
        data = load_cache_json(store)
        self._data = {
            k: [d for d in v if isinstance(d, str)] for k, v in data.items() if isinstance(v, list)
        }
        self._ok = set(self._data.get(self.pair, []))
        self._new: list[str] = []

    def __contains__(self, digest: str) -> bool:
        return digest in self._ok

    def add(self, digest: str) -> None:
        """Remember that the source with this sha256 parsed."""
        if digest not in self._ok:
            self._ok.add(digest)
            self._new.append(digest)

    def save(self) -> None:
        """Write the store if a source was added."""
        if not self._new:
            return
        self._data[self.pair] = [*self._data.get(self.pair, []), *self._new][-self.LIMIT :]
        save_cache_json(self.store, self._data)
        self._new = []


def check_syntax(
    files: list[TreeFile], python: str, key: str, parsed: ParsedSources | None = None
) -> None:
    """Parse every .py file for the Pi's Python: a SyntaxError names the file and line.

    ``parsed`` skips the sources that parsed before for this Python (and learns the new ones).
    """
    minor = int(python.split(".")[1])
    for f in files:
        if f.is_dir or not f.rel.endswith(".py"):
            continue
        data = f.source.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if parsed is not None and digest in parsed:
            continue
        try:
            ast.parse(data, str(f.source), feature_version=(3, minor))
        except SyntaxError as exc:
            raise AnswersError(
                key,
                f"{f.source}:{exc.lineno}: {exc.msg} (the Pi runs Python {python})",
                fix=f"make the file valid Python {python}, or add a newer pythonX.Y extension",
            ) from None
        if parsed is not None:
            parsed.add(digest)


def _defines_app(source: Path, attr: str) -> bool:
    """Whether a module binds ``attr`` at top level (assignment, import, def)."""
    try:
        tree = ast.parse(source.read_bytes(), str(source))
    except SyntaxError:
        return False
    body = list(tree.body)
    for node in list(body):
        if isinstance(node, ast.If | ast.Try | ast.With):
            for part in ("body", "orelse", "finalbody"):
                body.extend(getattr(node, part, []) or [])
            for handler in getattr(node, "handlers", []) or []:
                body.extend(handler.body)
    for node in body:
        if isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.asname or a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [node.name]
        else:
            continue
        if attr in names:
            return True
    return False


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def find_entry(root: Path, env: Mapping[str, str]) -> EntryPoint:
    """The user app's entry point (see the module docstring for the convention).

    Raises:
        AnswersError: naming ``app.path`` (or ``app.env`` for a bad FIRECORE_APP_MODULE).
    """
    explicit = env.get("FIRECORE_APP_MODULE", "").strip()
    if explicit:
        if not re.fullmatch(_MODULE, explicit):
            raise AnswersError(
                "app.env.FIRECORE_APP_MODULE",
                f"{explicit!r} is not module:attribute",
                fix="write it like main:app or mypkg.web:api",
            )
        module, _, attr = explicit.partition(":")
        found = _module_file(root, module)
        if found is None:
            raise AnswersError(
                "app.env.FIRECORE_APP_MODULE",
                f"module {module} is not in {root}",
                fix=f"add {module.replace('.', '/')}.py to the app or fix the name",
            )
        if not _defines_app(found, (attr or "app").split(".")[0]):
            raise AnswersError(
                "app.env.FIRECORE_APP_MODULE",
                f"{found} defines no top-level {attr or 'app'}",
                fix="point FIRECORE_APP_MODULE at the ASGI app object",
            )
        return EntryPoint("module", f"{module}:{attr or 'app'}", str(found.relative_to(root)))
    run = root / "run"
    if run.exists():
        if not run.is_file():
            raise AnswersError("app.path", f"{run} is not a file", fix="make `run` a script")
        if not os.access(run, os.X_OK):
            raise AnswersError("app.path", f"{run} is not executable", fix=f"run `chmod +x {run}`")
        return EntryPoint("run", file="run")
    for name in ("main", "app"):
        candidate = root / f"{name}.py"
        if candidate.is_file() and _defines_app(candidate, "app"):
            return EntryPoint("module", f"{name}:app", candidate.name)
    raise AnswersError(
        "app.path",
        f"{root} has no entry point firecore can start",
        fix="add main.py with a module-level `app` (an ASGI app such as FastAPI()), or an "
        "executable `run` script that serves GET /health on $FIRECORE_PORT; or set "
        "FIRECORE_APP_MODULE in app.env",
    )


def read_requirements(path: Path, key: str) -> list[str]:
    """Plain requirement lines of a requirements.txt (comments and blanks dropped)."""
    out: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        where = f"{key} ({path}:{number})"
        if line.startswith("-"):
            raise AnswersError(
                where,
                f"pip option {line.split()[0]!r} is not supported here",
                fix="list plain requirements only; put local wheels in app.wheelhouse",
            )
        out.append(check_requirement(line, where))
    return out


def sh_quote(value: str) -> str:
    """A value as one single-quoted POSIX sh word."""
    return "'" + value.replace("'", "'\\''") + "'"


def render_env(env: Mapping[str, str]) -> bytes:
    """``KEY='value'`` lines, in the given order: app.env and profile.env, which boot.sh
    sources (``set -a; . app.env``)."""
    return "".join(f"{k}={sh_quote(v)}\n" for k, v in env.items()).encode()


def app_env(
    answers: Answers, entry: EntryPoint, python: str, token_sha256: str, token_pubkey: str = ""
) -> dict[str, str]:
    """The settings boot.sh and the app read; the user's app.env entries come last and win."""
    env = {
        "FIRECORE_PORT": str(answers.app.port),
        "FIRECORE_BIND": answers.app.bind,
        "FIRECORE_HOSTNAME": answers.app.hostname,
        "FIRECORE_PYTHON": f"python{python}",
        "FIRECORE_APP_MODE": entry.mode,
        "FIRECORE_APP_MODULE": entry.module,
        "FIRECORE_TOKEN_SHA256": token_sha256,
        "FIRECORE_TOKEN_PUBKEY": token_pubkey,
    }
    for key, value in answers.app.env.items():
        env[key] = value
    env["FIRECORE_APP_MODE"] = entry.mode
    env["FIRECORE_APP_MODULE"] = entry.module
    return env


def token_sha256(answers: Answers) -> str:
    """sha256 hex of the token in app.secrets_file ("" when there is no token)."""
    if not answers.app.secrets_file:
        return ""
    token = load_secrets(resolve_path(answers.app.secrets_file)).token
    return hashlib.sha256(token.encode()).hexdigest() if token else ""


def token_pubkey(answers: Answers) -> str:
    """The public key ``status`` signs its requests for (hex; "" when there is no token).

    Public on purpose: the Pi verifies signed requests with it and it may be served to the
    whole LAN (the token and the private key derived from it never leave this machine).
    """
    if not answers.app.secrets_file:
        return ""
    token = load_secrets(resolve_path(answers.app.secrets_file)).token
    if not token:
        return ""
    auth = sigauth()
    return str(auth.public_key(auth.seed_of(token)).hex())


@functools.cache
def sigauth() -> Any:
    """The Pi app's ``firecore_app.sigauth`` (Ed25519, plain Python), loaded from the assets:
    one implementation signs here and verifies on the Pi."""
    path = asset("app", "firecore_app", "sigauth.py")
    spec = importlib.util.spec_from_file_location("firecore_sigauth", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the asset is part of the install
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bundle_digest(files: tuple[OverlayFile, ...]) -> str:
    """sha256 over every file's path, mode, owner and bytes."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda x: x.path):
        h.update(f"{f.path}\0{f.mode:o}\0{f.uid}:{f.gid}\0{int(f.is_dir)}\0".encode())
        if f.data is not None:
            h.update(hashlib.sha256(f.data).digest())
        elif f.source is not None:
            h.update(hashlib.sha256(f.source.read_bytes()).digest())
    return h.hexdigest()


def bundle_dirs(prefix: str) -> list[OverlayFile]:
    parts = prefix.split("/")
    return [
        OverlayFile("/".join(parts[: i + 1]), 0o755, is_dir=True)
        for i in range(1, len(parts))  # not "opt" itself: it is in the base rootfs
    ]


def tree_files(prefix: str, files: list[TreeFile]) -> list[OverlayFile]:
    return [
        OverlayFile(f"{prefix}/{f.rel}", f.mode, is_dir=True)
        if f.is_dir
        else OverlayFile(f"{prefix}/{f.rel}", f.mode, source=f.source)
        for f in files
    ]
