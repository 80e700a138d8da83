#!/usr/bin/env python3
"""The moto server (DynamoDB and Secrets Manager on one loopback port), one request at a time.

moto evaluates a conditional write and applies it in separate steps, so two overlapping
requests can both pass the same condition; DynamoDB never lets them. Warmline's duplicate
handling rests on those conditions, so the emulator runs requests one at a time, as DynamoDB's
per-item serialisation would order them. Connections are still served on threads, so a slow
client does not block the others.

    python scripts/emulator.py PORT
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def serialised(app):
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            # The body is produced inside the lock too: moto may build it lazily.
            return list(app(environ, start_response))

    return one_at_a_time


def main() -> None:
    port = int(sys.argv[1])
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
