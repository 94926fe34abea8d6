"""Publish one message to JetStream with nats-py: a non-Rust publisher of callfleet jobs.

Usage: publish.py <nats-url> <subject> <json-payload> [msg-id]
Prints the JetStream ack as JSON.
"""
import asyncio
import json
import sys

import nats


async def main() -> None:
    url, subject, payload = sys.argv[1], sys.argv[2], sys.argv[3]
    headers = {"Nats-Msg-Id": sys.argv[4]} if len(sys.argv) > 4 else None
    nc = await nats.connect(url)
    js = nc.jetstream()
    ack = await js.publish(subject, payload.encode(), headers=headers)
    print(json.dumps({"stream": ack.stream, "seq": ack.seq, "duplicate": bool(ack.duplicate)}))
    await nc.close()


asyncio.run(main())
