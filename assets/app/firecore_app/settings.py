"""Settings from the environment (see the package docstring for every variable).

Read once at start-up into a frozen object so the endpoints and the tests see one consistent
view; ``Settings.from_env(env)`` takes any mapping, which is how the tests point it at a fake
``/proc``.
"""

import os
from typing import Mapping, NamedTuple, Optional


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"firecore_app: {key}={raw!r} is not a whole number") from None


class Settings(NamedTuple):
    """Everything the service reads from its environment."""

    port: int
    bind: str
    token_sha256: str
    token_pubkey: str
    app_module: str
    app_dir: str
    build_file: str
    log_dir: str
    log_max_bytes: int
    log_backups: int
    proc: str
    sys: str
    tce_installed: str
    mdns_name: str
    announce_refresh: float
    netboot_file: str

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        """Settings from ``env`` (default: ``os.environ``), with the Pi's paths as defaults."""
        e = os.environ if env is None else env
        token = e.get("FIRECORE_TOKEN_SHA256", "").strip().lower()
        if token and (len(token) != 64 or any(c not in "0123456789abcdef" for c in token)):
            raise SystemExit("firecore_app: FIRECORE_TOKEN_SHA256 is not a sha256 hex digest")
        pubkey = e.get("FIRECORE_TOKEN_PUBKEY", "").strip().lower()
        if pubkey and (len(pubkey) != 64 or any(c not in "0123456789abcdef" for c in pubkey)):
            raise SystemExit("firecore_app: FIRECORE_TOKEN_PUBKEY is not 32 bytes of hex")
        return cls(
            port=_int(e, "FIRECORE_PORT", 8000),
            bind=e.get("FIRECORE_BIND", "") or "0.0.0.0",
            token_sha256=token,
            token_pubkey=pubkey,
            app_module=e.get("FIRECORE_APP_MODULE", "").strip(),
            app_dir=e.get("FIRECORE_APP_DIR", "") or "/opt/firecore/app",
            build_file=e.get("FIRECORE_BUILD_FILE", "") or "/opt/firecore/build.json",
            log_dir=e.get("FIRECORE_LOG_DIR", "") or "/var/log/firecore",
            log_max_bytes=_int(e, "FIRECORE_LOG_MAX_BYTES", 256 * 1024),
            log_backups=_int(e, "FIRECORE_LOG_BACKUPS", 2),
            proc=e.get("FIRECORE_PROC", "") or "/proc",
            sys=e.get("FIRECORE_SYS", "") or "/sys",
            tce_installed=e.get("FIRECORE_TCE_INSTALLED", "") or "/usr/local/tce.installed",
            mdns_name=e.get("FIRECORE_MDNS_NAME", "").strip(),
            announce_refresh=float(_int(e, "FIRECORE_ANNOUNCE_REFRESH", 10)),
            netboot_file=e.get("FIRECORE_NETBOOT_FILE", "") or "/var/run/firecore/netboot.json",
        )
