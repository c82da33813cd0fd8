"""Hermes, Rubin's Kafka variant, as one step: Rucio's messages -> ctrl_ingestd's topics.

Rucio 41.5's Hermes sends to ActiveMQ, e-mail, Elastic and InfluxDB; Rubin runs a Kafka variant
whose filter keeps ``transfer-done`` messages, adds the file's ``rubin_butler`` and
``rubin_sidecar`` DID metadata (what rucio-register attached) to the payload, drops files
without ``rubin_butler``, and produces the JSON message to the topic of the destination RSE and
scope. :func:`hermes_step` does that once for every message waiting in Rucio's ``messages``
table:

1. a .venv-rucio process (:mod:`.rucio_side.messages`) reads the table
   (``rucio.core.message.retrieve_messages``), looks up the metadata
   (``Client().get_metadata(scope, name, plugin="ALL")``) and prints the events;
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
from pathlib import Path
from typing import Any

from compiler.naming import ingestd_topic

from ._proc import read_line, stop_process
from .errors import ServiceError, missing_module
from .kafka import KafkaBroker
from .rucio import RucioService, RucioServiceError, side_argv

__all__ = ["EVENT_TYPE", "HermesResult", "hermes_step"]

STEP_TIMEOUT = 120.0
EVENT_TYPE = "transfer-done"


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
    if not events:
        return
    try:
        from confluent_kafka import Producer  # optional dependency: only the rehearsal needs it
    except ImportError:
        raise missing_module("confluent_kafka", "drpc's python") from None
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


def _tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def _converse(proc: subprocess.Popen[bytes], broker: KafkaBroker, result: HermesResult,
              spec: dict[str, Any], timeout: float) -> None:
    """The Hermes protocol with the reader (:mod:`.rucio_side.messages`): its spec, then for
    each batch it hands over, produce its events and answer ``commit`` (``abort`` if that
    failed: the batch stays in Rucio's table)."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(spec).encode() + b"\n")
        proc.stdin.flush()
        while True:
            try:
                msg = json.loads(read_line(proc, timeout, "the reader"))
            except ServiceError as exc:
                raise RucioServiceError(str(exc)) from exc
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
    except BrokenPipeError as exc:
        raise RucioServiceError(f"exited (code {proc.poll()})") from exc
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RucioServiceError(f"did not exit within {timeout} s") from exc
    if code != 0:
        raise RucioServiceError(f"exit code {code}")


def hermes_step(service: RucioService, broker: KafkaBroker, *, bulk: int = 1000,
                timeout: float = STEP_TIMEOUT) -> HermesResult:
    """Move every waiting Rucio message through the Rubin Hermes filter into Kafka; returns
    the number of events produced per topic (``<dst RSE>-<scope>``, see ``ingestd_topic``)."""
    start = time.monotonic()
    result = HermesResult()
    log_path = service.workdir / "hermes.log"  # the reader's stderr (Rucio's logging)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            side_argv(service.python, "messages:hermes_reader"), env=service.server_env(),
            cwd=service.workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            start_new_session=True,
        )
    try:
        _converse(proc, broker, result, {"bulk": bulk, "event_type": EVENT_TYPE}, timeout)
    except RucioServiceError as exc:
        stop_process(proc, grace=2.0)
        raise RucioServiceError(f"hermes (reading Rucio's messages): {exc}\n--- its log "
                                f"({log_path}) ---\n{_tail(log_path)}") from exc
    finally:
        stop_process(proc, grace=5.0)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()
    result.seconds = time.monotonic() - start
    return result
