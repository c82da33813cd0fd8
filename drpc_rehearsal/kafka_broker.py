"""The Kafka mock broker's own process (see :class:`drpc_rehearsal.kafka.KafkaBroker`)::

    python -P .../drpc_rehearsal/kafka_broker.py PARENT_PID

Opens a confluent-kafka client with librdkafka's mock cluster (one broker), prints
``{"bootstrap": "host:port"}`` on one line, then serves until killed or until process PARENT_PID
is no longer its parent (so it dies with the process that started it, even a SIGKILLed one).
Prints ``{"missing": "confluent_kafka"}`` and exits 3 when confluent-kafka is not installed.

Run as a file (``-P``: its folder stays off sys.path), it imports only the standard library
and confluent-kafka, not drpc: any python with confluent-kafka can run it.
"""

from __future__ import annotations

import json
import os
import sys

__all__ = ["main"]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        sys.stderr.write(f"usage: {argv[0]} PARENT_PID\n")
        return 2
    parent = int(argv[1])
    try:
        from confluent_kafka import Producer
    except ImportError:
        print(json.dumps({"missing": "confluent_kafka"}), flush=True)
        return 3
    client = Producer({"test.mock.num.brokers": 1, "bootstrap.servers": "unused:1",
                       "client.id": "drpc-mock-kafka"})
    meta = client.list_topics(timeout=20)
    addrs = sorted(f"{b.host}:{b.port}" for b in meta.brokers.values())
    print(json.dumps({"bootstrap": ",".join(addrs)}), flush=True)
    while os.getppid() == parent:
        client.poll(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
