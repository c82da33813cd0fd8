"""A Kafka-protocol broker on 127.0.0.1: librdkafka's mock cluster, in its own process.

Debian ships no Kafka broker and no allowed registry has Kafka's distribution; PyPI
``confluent-kafka`` bundles librdkafka, whose mock cluster (a client created with
``test.mock.num.brokers``) serves the real Kafka protocol to other processes for as long as that
client lives. :class:`KafkaBroker` keeps such a client open in a child process (so the calling
process holds no librdkafka threads) that prints the broker's address and then waits to be
killed (or for its parent to die).

Quirks of the mock cluster (rucio_ingestd.md): topics are created on first produce, with 4
partitions (``AdminClient.create_topics`` never returns: don't); a consumer group joined and
left several times stops getting partitions, so give each consumer a fresh ``group.id``; a
consumer killed without ``close()`` holds its partitions for ``session.timeout.ms`` (45 s).
The port is chosen by librdkafka (ephemeral), not by us.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Self

from ._proc import ServiceError, clean_env, read_line, spawn, stop_process

START_TIMEOUT = 30.0

_BROKER = r"""
import json, os, sys, time
from confluent_kafka import Producer

parent = int(sys.argv[1])
client = Producer({"test.mock.num.brokers": 1, "bootstrap.servers": "unused:1",
                   "client.id": "drpc-mock-kafka"})
meta = client.list_topics(timeout=20)
addrs = sorted(f"{b.host}:{b.port}" for b in meta.brokers.values())
print(json.dumps({"bootstrap": ",".join(addrs)}), flush=True)
while os.getppid() == parent:  # exit with the process that started us, even if SIGKILLed
    client.poll(0.5)
"""


class KafkaBroker:
    """A mock Kafka cluster with one broker; ``bootstrap`` is its ``host:port``."""

    def __init__(self, *, python: Path | None = None, log: Path | None = None) -> None:
        #: A python with confluent-kafka (default: the calling one).
        self.python = python or Path(sys.executable)
        self.log = log
        self.bootstrap: str = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def port(self) -> int:
        return int(self.bootstrap.split(",")[0].rsplit(":", 1)[1])

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        if self._proc is not None:
            return self
        env = clean_env()
        env.pop("PYTHONNOUSERSITE", None)
        self._proc = spawn([str(self.python), "-c", _BROKER, str(os.getpid())], env=env,
                           log=self.log, pipe_stdout=True)
        try:
            line = read_line(self._proc, START_TIMEOUT, "the Kafka mock broker")
            self.bootstrap = json.loads(line)["bootstrap"]
        except BaseException as exc:
            self.stop()
            hint = ""
            if self.log is not None and self.log.exists():
                hint = "\n" + self.log.read_text(errors="replace")[-2000:]
            if "No module named 'confluent_kafka'" in hint:
                hint += f"\n(install confluent-kafka into {self.python.parent.parent})"
            if isinstance(exc, ServiceError):
                raise ServiceError(f"{exc}{hint}") from exc
            raise
        return self

    def stop(self) -> None:
        """Kill the broker process (group); idempotent."""
        proc, self._proc = self._proc, None
        stop_process(proc, grace=5.0)

    # -- client helpers ------------------------------------------------------------------------
    def producer_config(self) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap}

    def consumer_config(self, group_id: str) -> dict[str, object]:
        """For a subscribing consumer: use a fresh `group_id` per consumer (mock-cluster quirk)."""
        return {"bootstrap.servers": self.bootstrap, "group.id": group_id,
                "auto.offset.reset": "earliest", "enable.auto.commit": True}
