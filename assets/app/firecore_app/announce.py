"""``python3 -m firecore_app.announce``: announce this Pi over mDNS/DNS-SD until SIGTERM.

Service type ``_firecore._tcp.local.``; TXT records ``serial``, ``model``, ``build`` (the build
id), ``port``, ``hostname`` and ``path``. The instance and host name is
``<hostname>-<serial>`` (every Pi may share the default hostname, and two Pis answering for one
``firecore.local`` would be an mDNS conflict), so a Pi is reachable as
``firecore-9ffefdef.local``; FIRECORE_MDNS_NAME overrides it.

It runs as its own process, separate from the HTTP service, on purpose: when the app dies (and
boot.sh is backing off before restarting it) the Pi is still announced, so
``firecore-wizard status`` shows it as *unhealthy* instead of silently missing. On SIGTERM it
unregisters (mDNS goodbye), so a Pi that shuts down disappears at once.
"""

import logging
import re
import signal
import socket
import sys
import threading
from typing import Dict, List, Optional

from zeroconf import InterfaceChoice, IPVersion, ServiceInfo, Zeroconf

from firecore_app import sysinfo
from firecore_app.settings import Settings

SERVICE_TYPE = "_firecore._tcp.local."
log = logging.getLogger("firecore_app.announce")


def instance_name(settings: Settings) -> str:
    """The DNS label used for the service instance and the host (``firecore-9ffefdef``)."""
    if settings.mdns_name:
        base = settings.mdns_name
    else:
        host = socket.gethostname().split(".")[0]
        serial = sysinfo.serial(settings)
        base = f"{host}-{serial}" if serial else host
    label = re.sub(r"[^A-Za-z0-9-]+", "-", base).strip("-").lower()
    return (label or "firecore")[:63]


def properties(settings: Settings) -> Dict[str, str]:
    """The TXT records."""
    return {
        "serial": sysinfo.serial(settings) or "",
        "model": (sysinfo.model(settings) or "")[:200],
        "build": sysinfo.build_id(settings),
        "port": str(settings.port),
        "hostname": socket.gethostname(),
        "path": "/health",
    }


def addresses() -> List[str]:
    """Sorted IPv4 addresses to announce (loopback excluded)."""
    return sorted(set(sysinfo.ipv4_addresses().values()))


def service_info(settings: Settings, name: str, addrs: List[str]) -> ServiceInfo:
    """The DNS-SD records for this Pi."""
    return ServiceInfo(
        SERVICE_TYPE,
        f"{name}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton(a) for a in addrs],
        port=settings.port,
        properties=properties(settings),
        server=f"{name}.local.",
    )


def run(settings: Settings, stop: threading.Event) -> None:
    """Announce until ``stop`` is set; re-announce when addresses or the build change."""
    name = instance_name(settings)
    addrs = addresses()
    while not addrs and not stop.is_set():
        log.info("no IPv4 address yet; waiting before announcing")
        stop.wait(settings.announce_refresh)
        addrs = addresses()
    if stop.is_set():
        return
    zc = Zeroconf(interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only)
    info: Optional[ServiceInfo] = None
    try:
        info = service_info(settings, name, addrs)
        zc.register_service(info, allow_name_change=True)
        log.info("announced %s on %s port %d", info.name, ", ".join(addrs), settings.port)
        current = (addrs, info.properties)
        while not stop.wait(settings.announce_refresh):
            addrs = addresses() or addrs
            fresh = service_info(settings, info.name[: -len(SERVICE_TYPE) - 1], addrs)
            if (addrs, fresh.properties) != current:
                zc.update_service(fresh)
                info = fresh
                current = (addrs, fresh.properties)
                log.info("re-announced %s on %s", info.name, ", ".join(addrs))
    finally:
        if info is not None:
            zc.unregister_service(info)
            log.info("unregistered %s", info.name)
        zc.close()


def main() -> None:
    """Announce until SIGTERM or SIGINT."""
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run(Settings.from_env(), stop)


if __name__ == "__main__":
    main()
