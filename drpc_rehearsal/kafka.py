"""A Kafka-protocol broker on 127.0.0.1: librdkafka's mock cluster, in its own process.

Debian ships no Kafka broker and no allowed registry has Kafka's distribution; PyPI
``confluent-kafka`` bundles librdkafka, whose mock cluster (a client created with
``test.mock.num.brokers``) serves the real Kafka protocol to other processes for as long as that
client lives. :class:`KafkaBroker` keeps such a client open in a child process (so the calling
process holds no librdkafka threads; :mod:`.kafka_broker`) that prints the broker's address and
then waits to be killed (or for its parent to die).

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

from ._proc import clean_env, read_line, spawn, stop_process
from .errors import ServiceError, missing_module

__all__ = ["START_TIMEOUT", "KafkaBroker"]

START_TIMEOUT = 30.0


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
        """Start the broker process; MissingDependencyError if its python has no
        confluent-kafka, ServiceError if it does not answer."""
        if self._proc is not None:
            return self
        env = clean_env()
        env.pop("PYTHONNOUSERSITE", None)  # a confluent-kafka installed with --user is fine
        script = Path(__file__).resolve().parent / "kafka_broker.py"
        self._proc = spawn([str(self.python), "-P", str(script), str(os.getpid())], env=env,
                           log=self.log, pipe_stdout=True)
        try:
            answer = json.loads(read_line(self._proc, START_TIMEOUT, "the Kafka mock broker"))
        except ServiceError as exc:
            self.stop()
            raise ServiceError(f"{exc}{self._log_tail()}") from exc
        except BaseException:
            self.stop()
            raise
        if "missing" in answer:
            self.stop()
            raise missing_module(str(answer["missing"]), str(self.python))
        self.bootstrap = str(answer["bootstrap"])
        return self

    def _log_tail(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n" + self.log.read_text(errors="replace")[-2000:]

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
