"""``python3 -m firecore_app``: serve the firecore service (and the user's app) with uvicorn.

boot.sh starts this as user tc with PYTHONPATH pointing at the overlay's site-packages, restarts
it if it exits, and sends SIGTERM to stop it (uvicorn then shuts down gracefully).
"""

import logging

import uvicorn

from firecore_app import logs, service
from firecore_app.settings import Settings


def main() -> None:
    """Read the settings, set up the rotating log, serve until SIGTERM."""
    settings = Settings.from_env()
    logs.setup(settings)
    log = logging.getLogger("firecore_app")
    log.info("starting on %s:%d", settings.bind, settings.port)
    app = service.asgi(settings)
    uvicorn.run(
        app,
        host=settings.bind,
        port=settings.port,
        log_config=None,
        access_log=True,
        server_header=False,
    )
    log.info("stopped")


if __name__ == "__main__":
    main()
