"""Hermes, Rubin's Kafka variant, as one step: Rucio's messages -> ctrl_ingestd's topics.

Rucio 41.5's Hermes sends to ActiveMQ, e-mail, Elastic and InfluxDB; Rubin runs a Kafka variant
whose filter keeps ``transfer-done`` messages, adds the file's ``rubin_butler`` and
``rubin_sidecar`` DID metadata (what rucio-register attached) to the payload, drops files
without ``rubin_butler``, and produces the JSON message to the topic of the destination RSE and
scope. :func:`hermes_step` does that once for every message waiting in Rucio's ``messages``
table:

1. a .venv-rucio process reads the table (``rucio.core.message.retrieve_messages``), looks up
   the metadata (``Client().get_metadata(scope, name, plugin="ALL")``) and prints the events;
2. this process produces them (confluent-kafka) to ``ingestd_topic(dst-rse, scope)`` and waits
   for every delivery report;
3. only then the .venv-rucio process deletes the batch (``delete_messages``, which archives it
   to ``messages_history``), as Hermes does after a successful send; on a failed delivery the
   messages stay for the next step.

The message is the shape ctrl_ingestd reads (its tests' ``message.json``): ``id``,
``created_at``, ``event_type``, ``services`` (``kafka``) and ``payload`` (Rucio's
``transfer-done`` payload: ``scope``, ``name``, ``dataset``, ``datasetScope``, ``src-rse``,
``dst-rse``, ``dst-url``, ``file-size``, ``checksum-adler``, ... plus ``rubin_butler`` and
``rubin_sidecar``). Other events (``transfer-queued``, ``transfer-submitted``, ...) are consumed
and dropped, like a Hermes whose only service is Kafka.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from compiler.naming import ingestd_topic
from ._proc import ServiceError, read_line, stop_process
from .kafka import KafkaBroker
from .rucio import RucioService, RucioServiceError

STEP_TIMEOUT = 120.0
EVENT_TYPE = "transfer-done"

_HERMES = r"""
import json, sys
from rucio.client import Client
from rucio.common.exception import DataIdentifierNotFound
from rucio.core.message import delete_messages, retrieve_messages

spec = json.loads(sys.argv[1])
client = Client()
cache = {}


def metadata(scope, name):
    key = (scope, name)
    if key not in cache:
        try:
            cache[key] = client.get_metadata(scope, name, plugin="ALL")
        except DataIdentifierNotFound:
            cache[key] = {}
    return cache[key]


def out(obj):
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


while True:
    batch = retrieve_messages(bulk=spec["bulk"])
    events, dropped, other = [], [], 0
    for msg in batch:
        if msg["event_type"] != spec["event_type"]:
            other += 1
            continue
        payload = dict(msg["payload"])
        meta = metadata(payload["scope"], payload["name"])
        if not meta.get("rubin_butler"):
            dropped.append(f"{payload['scope']}:{payload['name']}")
            continue
        payload["rubin_butler"] = meta["rubin_butler"]
        payload["rubin_sidecar"] = meta.get("rubin_sidecar")
        events.append({"id": msg["id"], "created_at": str(msg["created_at"]),
                       "event_type": msg["event_type"], "services": "kafka",
                       "payload": payload})
    out({"events": events, "dropped": dropped, "other": other, "n": len(batch)})
    answer = sys.stdin.readline().strip()
    if answer != "commit":
        sys.exit(3)
    delete_messages([{"id": m["id"], "created_at": m["created_at"],
                      "event_type": m["event_type"], "services": m["services"],
                      "payload": json.dumps(m["payload"])} for m in batch])
    if len(batch) < spec["bulk"]:
        break
out({"done": True})
"""


class HermesResult(dict[str, int]):
    """Events produced per topic (a dict), with what else the step saw."""

    def __init__(self) -> None:
        super().__init__()
        #: every produced message, in order
        self.events: list[dict[str, Any]] = []
        #: DIDs of transfer-done events dropped because the file has no rubin_butler metadata
        self.dropped: list[str] = []
        #: messages of other event types consumed and dropped
        self.other: int = 0
        self.seconds: float = 0.0


def _produce(broker: KafkaBroker, events: list[dict[str, Any]], result: HermesResult,
             timeout: float) -> None:
    from confluent_kafka import Producer  # optional dependency: only the rehearsal needs it

    if not events:
        return
    errors: list[str] = []

    def delivered(err: object, msg: Any) -> None:
        if err is not None:
            errors.append(f"{msg.topic()}: {err}")

    producer = Producer({**broker.producer_config(), "client.id": "drpc-hermes",
                         "enable.idempotence": False, "linger.ms": 5})
    topics = []
    for event in events:
        payload = event["payload"]
        topic = ingestd_topic(payload["dst-rse"], payload["scope"])
        producer.produce(topic, value=json.dumps(event).encode(),
                         key=str(payload["name"]).encode(), on_delivery=delivered)
        producer.poll(0)
        topics.append(topic)
    left = producer.flush(timeout)
    if left or errors:
        raise ServiceError(f"hermes: {left} message(s) undelivered, errors: {errors[:5]}")
    for topic, event in zip(topics, events, strict=True):
        result[topic] = result.get(topic, 0) + 1
        result.events.append(event)


def hermes_step(service: RucioService, broker: KafkaBroker, *, bulk: int = 1000,
                timeout: float = STEP_TIMEOUT) -> HermesResult:
    """Move every waiting Rucio message through the Rubin Hermes filter into Kafka; returns
    the number of events produced per topic (``<dst RSE>-<scope>``, see ``ingestd_topic``)."""
    start = time.monotonic()
    result = HermesResult()
    spec = json.dumps({"bulk": bulk, "event_type": EVENT_TYPE})
    proc = subprocess.Popen(
        [str(service.python), "-c", _HERMES, spec], env=service.server_env(),
        cwd=service.workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )
    assert proc.stdin is not None
    try:
        while True:
            try:
                msg = json.loads(read_line(proc, timeout, "hermes (reading Rucio's messages)"))
            except ServiceError as exc:
                stop_process(proc, grace=2.0)
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RucioServiceError(f"{exc}\n--- stderr ---\n{err[-4000:]}") from exc
            if msg.get("done"):
                break
            result.dropped.extend(msg["dropped"])
            result.other += msg["other"]
            try:
                _produce(broker, msg["events"], result, timeout)
            except BaseException:
                proc.stdin.write(b"abort\n")
                proc.stdin.flush()
                raise
            proc.stdin.write(b"commit\n")
            proc.stdin.flush()
        proc.stdin.close()
        if proc.wait(timeout=timeout) != 0:
            raise RucioServiceError(f"hermes: exit code {proc.returncode}")
    finally:
        stop_process(proc, grace=5.0)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
    result.seconds = time.monotonic() - start
    return result
