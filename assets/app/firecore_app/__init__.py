"""firecore_app: the service that runs on every netbooted Pi.

It answers ``GET /health`` (the build id), ``/info`` (what the Pi is and runs), ``/`` (a small
status page) and ``/logs`` (tails of the app and boot logs), and a separate process announces the
Pi over mDNS as ``_firecore._tcp.local.``. It is started by ``/opt/firecore/boot.sh`` as user tc.

Configuration comes only from environment variables, which boot.sh loads from
``/opt/firecore/app.env`` (written by the wizard's app step) and then
``/opt/firecore/profile.env`` (the per-device profile, written by the remaster step), so a profile
overrides the defaults. Every path is an environment variable too, so the tests run the same code
on an ordinary Linux host:

============================  ===============================  ====================================
variable                      default                          meaning
============================  ===============================  ====================================
FIRECORE_PORT                 8000                             TCP port of the HTTP service
FIRECORE_BIND                 0.0.0.0                          address it binds to
FIRECORE_TOKEN_SHA256         (empty: no token)                sha256 hex of the bearer token
FIRECORE_APP_MODULE           (empty: bundled app only)        ``module:attr`` of a user ASGI app
FIRECORE_APP_DIR              /opt/firecore/app                the user app's directory (cwd)
FIRECORE_BUILD_FILE           /opt/firecore/build.json         ``{"build_id": ...}`` of the build
FIRECORE_LOG_DIR              /var/log/firecore                app.log, boot.log (RAM)
FIRECORE_LOG_MAX_BYTES        262144                           rotate app.log at this size
FIRECORE_LOG_BACKUPS          2                                rotated files kept
FIRECORE_PROC                 /proc                            where cpuinfo, meminfo … are read
FIRECORE_SYS                  /sys                             where thermal zones are read
FIRECORE_TCE_INSTALLED        /usr/local/tce.installed         loaded extensions
FIRECORE_MDNS_NAME            (hostname-serial)                mDNS instance and host name
FIRECORE_ANNOUNCE_REFRESH     10                               seconds between address checks
FIRECORE_NETBOOT_FILE         /var/run/firecore/netboot.json   netboot state boot.sh read as root
============================  ===============================  ====================================

Only the token's sha256 is on the Pi: the overlay is served over TFTP to anyone on the LAN, so it
must not contain the token itself. This package must stay importable on Python 3.8: no ``X | Y``
annotations, no ``list[str]`` at run time, no ``match``.
"""

__version__ = "1.0.0"
