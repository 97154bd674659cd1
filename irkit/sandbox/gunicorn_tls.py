"""gunicorn configuration for the practice HTTPS listener (`-c python:irkit.sandbox.gunicorn_tls`).

One listener serves both practice names, choosing the certificate by SNI as a real front end does;
a client that sends no name gets the site's certificate.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from irkit.sandbox import certs


def ssl_context(
    conf: Any, default_ssl_context_factory: Callable[[], ssl.SSLContext]
) -> ssl.SSLContext:
    folder = Path(os.environ["IRKIT_SANDBOX_TLS_DIR"])
    contexts = {}
    for name in certs.NAMES:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        pair = certs.files(folder, name)
        context.load_cert_chain(pair.cert, pair.key)
        contexts[name] = context
    default = contexts[certs.SITE]

    def choose(sock: Any, server_name: str | None, _: ssl.SSLContext) -> None:
        if server_name in contexts:
            sock.context = contexts[server_name]

    default.sni_callback = choose
    return default
