"""Entry point of the web server child process (started by the supervisor, or directly for development).

Reads the settings (``$VOXDESK_CONFIG`` and ``VOXDESK_*``), builds the container and serves with uvicorn.
"""

from __future__ import annotations

import uvicorn

from core.logging import configure_logging
from voxdesk.container import build_container
from voxdesk.server.app import create_app
from voxdesk.settings import load_settings


def main() -> None:
    """Serve until SIGTERM."""
    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.json_logs, settings.logging.mask_pii)
    container = build_container(settings)
    app = create_app(container)
    try:
        uvicorn.run(
            app,
            host=settings.server.host,
            port=settings.server.port,
            log_config=None,
            access_log=False,
            proxy_headers=bool(settings.server.trusted_proxies),
            forwarded_allow_ips=",".join(settings.server.trusted_proxies) or None,
        )
    finally:
        container.close()


if __name__ == "__main__":
    main()
