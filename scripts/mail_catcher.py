"""An SMTP server that delivers nowhere: every message is kept as an ``.eml`` file and announced.

``make prod-local`` runs it on 127.0.0.1:1025 (aiosmtpd, from PyPI) in place of the Mailpit
container of docker-compose.yml. Open the files with any mail client, or read them as text.

    python scripts/mail_catcher.py --port 1025 --folder var/prod-local/mail
"""

from __future__ import annotations

import argparse
import email
import email.policy
import itertools
import signal
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class SaveToFolder:
    """aiosmtpd handler: writes each message to ``<folder>/<time>-<n>.eml`` and prints who got what."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counter = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd calls it by this name
        content = envelope.original_content or envelope.content
        raw = content if isinstance(content, bytes) else content.encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        path = self.folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self.counter):04d}.eml"
        path.write_bytes(raw)
        print(f"mail to {', '.join(envelope.rcpt_tos)}: {message['subject']!s} -> {path}", flush=True)
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--folder", type=Path, required=True)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)

    controller = Controller(SaveToFolder(args.folder), hostname=args.host, port=args.port)
    controller.start()
    print(f"SMTP catcher on {args.host}:{args.port}, messages in {args.folder}/", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
