"""A real SMTP server for the integration tests: aiosmtpd on 127.0.0.1:PORT,
writing each message it receives to DIR as N.eml (raw) and N.json (the
envelope, the subject and the decoded text and HTML parts).

Usage: python3 tests/smtp_sink.py PORT DIR  (prints `ready` once listening;
stops when its standard input closes)."""

import email
import email.policy
import itertools
import json
import os
import sys
import time

from aiosmtpd.controller import Controller

counter = itertools.count(1)


class Store:
    def __init__(self, folder):
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):
        n = next(counter)
        raw = envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            kind = part.get_content_type()
            if kind in ("text/plain", "text/html") and kind not in parts:
                parts[kind] = part.get_content()
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(message["subject"]),
            "message_id": str(message["message-id"]),
            "content_type": message.get_content_type(),
            "text": parts.get("text/plain"),
            "html": parts.get("text/html"),
        }
        stem = os.path.join(self.folder, f"{time.time_ns()}-{n}")
        with open(stem + ".eml", "wb") as f:
            f.write(raw)
        with open(stem + ".json.tmp", "w") as f:
            json.dump(record, f)
        os.rename(stem + ".json.tmp", stem + ".json")
        return "250 Message accepted for delivery"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    controller = Controller(Store(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
