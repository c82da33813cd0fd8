"""The destination side of a transfer: ctrl_ingestd's data_product path, or a stand-in for it.

:class:`IngestConsumer` takes exactly the configuration the compiled tree gives ctrl_ingestd
(``sites/<site>/ingestd/configmap.yaml``, key ``ingestd.yaml``; :func:`load_ingestd_config`),
consumes Hermes ``transfer-done`` events from its Kafka topics (confluent-kafka, the consumer
settings ctrl_ingestd uses) and ingests each arrived file into the destination Butler:

1. the topic is ``<dst-rse>-<scope>`` of the event; its ``rucio_prefix`` in ``dst-url`` is
   replaced by its ``fs_prefix`` (ctrl_ingestd's ``Mapper.rewrite``: a plain string replace);
2. the ``DatasetRef`` is rebuilt from ``rubin_sidecar`` (rucio-register attached
   ``DatasetRef.to_json()`` with dimension records) against the destination registry;
3. ``butler.ingest(FileDataset(local file, ref), transfer="auto")`` - the file is inside the
   datastore root when the name rule holds (DID name = datastore-relative path), so it is
   ingested in place; its RUN is registered by the ingest if new. A batch that fails is
   retried one event at a time; a dataset already there counts as a duplicate (harmless, as
   ctrl_ingestd's "Datastore already contains").

Only ``rubin_butler: data_product`` events are ingested by default; raws (``raw_file``), zips and
dimension files are skipped and counted by reason (``ingest_raws=True`` ingests raws that carry
a sidecar the way ctrl_ingestd first tries them: ``transfer="direct"``).

If the real ctrl_ingestd is importable (installed, as in a stack environment, or from the
checkout's ``python/`` directory named by ``CTRL_INGESTD_DIR``, loaded from that path when asked
for: :func:`real_ctrl_ingestd`; ``sys.path`` is left alone), its ``Message``, ``Mapper``,
``EntryFactory`` and ``RseButler.ingest`` do steps 1-3 instead (its import needs
``lsst.obs.base``, i.e. the stack); :attr:`IngestConsumer.implementation` says which ran.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import missing_module

__all__ = ["IMPLEMENTATIONS", "IngestConsumer", "IngestStats", "load_ingestd_config",
           "normalize_config", "real_ctrl_ingestd"]

EVENT_TYPE = "transfer-done"
DATA_PRODUCT = "data_product"  # rucio-register's DataType values (ctrl_ingestd's too)
RAW_FILE = "raw_file"
IMPLEMENTATIONS = ("ctrl_ingestd", "drpc stand-in")
STAND_IN_FORMATTER = "lsst.daf.butler.formatters.file.FileFormatter"  # as butlers.py


@dataclass
class IngestStats:
    """What one poll (or one event) did."""

    consumed: int = 0  # messages read (or events given)
    kafka_errors: int = 0  # of those, Kafka's errors (e.g. a subscribed topic not there yet)
    ingested: int = 0  # datasets newly in the Butler
    duplicates: int = 0  # datasets that were already there
    outside_root: int = 0  # files not under the datastore root (name rule broken): copied in
    outside_ids: list[str] = field(default_factory=list)  # of those datasets
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> events not ingested
    errors: list[str] = field(default_factory=list)  # one line per event that failed
    dataset_ids: list[str] = field(default_factory=list)  # of the newly ingested datasets
    runs: set[str] = field(default_factory=set)  # RUN collections of the ingested datasets

    def add(self, other: IngestStats) -> IngestStats:
        self.consumed += other.consumed
        self.kafka_errors += other.kafka_errors
        self.ingested += other.ingested
        self.duplicates += other.duplicates
        self.outside_root += other.outside_root
        self.outside_ids += other.outside_ids
        self.skipped.update(other.skipped)
        self.errors += other.errors
        self.dataset_ids += other.dataset_ids
        self.runs |= other.runs
        return self

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) or "none"
        outside = (f", {self.outside_root} outside the datastore root (copied)"
                   if self.outside_root else "")
        return (f"{self.consumed} event(s): {self.ingested} ingested, "
                f"{self.duplicates} duplicate(s){outside}, skipped: {skipped}, "
                f"{len(self.errors)} error(s)")


# -- configuration ------------------------------------------------------------------------------

def load_ingestd_config(tree: str | Path, site_id: str) -> dict[str, Any]:
    """The ctrl_ingestd configuration of a site, exactly as the compiled tree holds it (the
    ``ingestd.yaml`` key of ``sites/<site>/ingestd/configmap.yaml``), as a plain dict."""
    from ruamel.yaml import YAML

    path = Path(tree) / "sites" / site_id / "ingestd" / "configmap.yaml"
    yaml = YAML(typ="safe", pure=True)
    doc = yaml.load(path.read_text())
    try:
        text = doc["data"]["ingestd.yaml"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: no data.ingestd.yaml in the ConfigMap") from exc
    config = yaml.load(text)
    if not isinstance(config, dict):
        raise ValueError(f"{path}: data.ingestd.yaml is not a mapping")
    plain: dict[str, Any] = json.loads(json.dumps(config))  # plain dicts and lists
    return plain


def normalize_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Check and complete a config the way ctrl_ingestd's pydantic ``Config`` does: required
    ``brokers`` (non-empty list), ``group_id``, ``butler_repo``, ``topics`` (at least one, each
    with ``rucio_prefix``; a missing trailing ``/`` is added to both prefixes); defaults
    ``client_id`` = host name, ``num_messages`` = 50, ``timeout`` = 1."""
    problems = []
    for key in ("brokers", "group_id", "butler_repo", "topics"):
        if key not in config:
            problems.append(f"{key}: missing")
    brokers = config.get("brokers")
    if "brokers" in config and (not isinstance(brokers, list) or not brokers
                                or not all(isinstance(b, str) for b in brokers)):
        problems.append("brokers: must be a non-empty list of host:port")
    topics = config.get("topics")
    if "topics" in config and (not isinstance(topics, Mapping) or not topics):
        problems.append("topics: must be a mapping with at least one topic")
    if problems or not isinstance(topics, Mapping):
        raise ValueError("ctrl_ingestd config: " + "; ".join(problems))
    out = dict(config)
    out.setdefault("client_id", socket.gethostname())
    out["num_messages"] = int(config.get("num_messages", 50))
    out["timeout"] = int(config.get("timeout", 1))
    norm = {}
    for name, topic in topics.items():
        if not isinstance(topic, Mapping) or not isinstance(topic.get("rucio_prefix"), str):
            raise ValueError(f"ctrl_ingestd config: topics.{name}: needs rucio_prefix")
        rucio_prefix = topic["rucio_prefix"]
        fs_prefix = str(topic.get("fs_prefix", ""))
        if not rucio_prefix.endswith("/"):
            rucio_prefix += "/"
        if fs_prefix and not fs_prefix.endswith("/"):
            fs_prefix += "/"
        norm[str(name)] = {"rucio_prefix": rucio_prefix, "fs_prefix": fs_prefix}
    out["topics"] = norm
    return out


# -- the real ctrl_ingestd ----------------------------------------------------------------------

_CTRL_INGESTD_MODULES = {
    "config": "lsst.ctrl.ingestd.config", "mapper": "lsst.ctrl.ingestd.mapper",
    "message": "lsst.ctrl.ingestd.message",
    "factory": "lsst.ctrl.ingestd.entries.entryFactory",
    "rse_butler": "lsst.ctrl.ingestd.rseButler",
}


def _package_from(name: str, directory: Path) -> ModuleType:
    """Import package `name` from `directory`, by explicit path: a regular package if it has an
    ``__init__.py``, else a namespace package. Its submodules are then found in `directory`
    (``import name.sub`` works as usual); ``sys.path`` is not touched."""
    init = directory / "__init__.py"
    spec: importlib.machinery.ModuleSpec | None
    if init.is_file():
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(directory)])
    else:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(directory)]
    if spec is None:
        raise ImportError(f"cannot load {name} from {directory}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        if spec.loader is not None:
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def _ctrl_ingestd_from(where: Path) -> None:
    """Make ``lsst.ctrl.ingestd`` the one in checkout folder `where` (``<where>/lsst/ctrl/
    ingestd``), unless it is imported already: ``lsst`` must be importable (the stack or
    daf_butler), ``lsst.ctrl`` is the installed one, or `where`'s if none is."""
    if "lsst.ctrl.ingestd" in sys.modules:
        return
    importlib.import_module("lsst")
    try:
        importlib.import_module("lsst.ctrl")
    except ModuleNotFoundError:
        _package_from("lsst.ctrl", where / "lsst" / "ctrl")
    _package_from("lsst.ctrl.ingestd", where / "lsst" / "ctrl" / "ingestd")


def real_ctrl_ingestd() -> tuple[dict[str, Any] | None, str]:
    """The real ctrl_ingestd's modules if importable, with a note why not.

    With ``CTRL_INGESTD_DIR`` (a ctrl_ingestd checkout's ``python/`` folder), that checkout's
    ``lsst.ctrl.ingestd`` is loaded from its path on this call (not at import, and without
    adding to ``sys.path``); otherwise an installed one (a stack environment)."""
    where = os.environ.get("CTRL_INGESTD_DIR", "")
    try:
        if where:
            if not (Path(where) / "lsst" / "ctrl" / "ingestd").is_dir():
                return None, f"CTRL_INGESTD_DIR={where} has no lsst/ctrl/ingestd"
            _ctrl_ingestd_from(Path(where))
        modules = {key: importlib.import_module(name)
                   for key, name in _CTRL_INGESTD_MODULES.items()}
    except Exception as exc:  # ImportError of it or of lsst.obs.base, ...
        return None, f"ctrl_ingestd not importable: {type(exc).__name__}: {exc}"
    return modules, f"ctrl_ingestd from {Path(modules['config'].__file__ or '?').parent}"


class _KafkaValue:
    """A confluent-kafka Message look-alike for ctrl_ingestd's ``Message`` (it calls value())."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def value(self) -> bytes:
        return self._data

    def error(self) -> None:
        return None

    def __str__(self) -> str:
        return self._data.decode(errors="replace")[:200]


# -- the consumer -------------------------------------------------------------------------------

class IngestConsumer:
    """ctrl_ingestd for one site's Butler: Kafka topics in, datasets ingested.

    ``config`` is the site's ctrl_ingestd config (:func:`load_ingestd_config`); ``repo`` the
    Butler to ingest into (it replaces ``butler_repo``, the site's real path); ``brokers`` and
    ``group_id`` replace the config's when given (the rehearsal's loopback broker; a fresh group
    per consumer suits librdkafka's mock cluster). ``implementation``: ``"auto"`` (the real
    ctrl_ingestd if importable, else the stand-in), ``"ctrl_ingestd"`` or ``"stand-in"``."""

    def __init__(self, config: Mapping[str, Any], repo: str | Path, *,
                 brokers: Iterable[str] | None = None, group_id: str | None = None,
                 ingest_raws: bool = False, implementation: str = "auto") -> None:
        try:
            from lsst.daf.butler import Butler  # the rehearsal extra
        except ImportError:
            raise missing_module("lsst.daf.butler", sys.executable) from None

        raw = dict(config)
        if brokers is not None:
            raw["brokers"] = list(brokers)
        if group_id is not None:
            raw["group_id"] = group_id
        raw["butler_repo"] = str(repo)
        self.config = normalize_config(raw)
        self.repo = str(repo)
        self.ingest_raws = ingest_raws
        self._consumer: Any = None
        self._real: dict[str, Any] | None = None
        self.implementation_note = "stand-in requested"
        if implementation not in ("auto", "ctrl_ingestd", "stand-in"):
            raise ValueError("implementation: auto, ctrl_ingestd or stand-in, "
                             f"not {implementation!r}")
        if implementation != "stand-in":
            self._real, self.implementation_note = real_ctrl_ingestd()
            if self._real is None and implementation == "ctrl_ingestd":
                raise RuntimeError(self.implementation_note)
        #: "ctrl_ingestd" (the real one's classes did the ingest) or "drpc stand-in"
        self.implementation = IMPLEMENTATIONS[0] if self._real is not None else IMPLEMENTATIONS[1]
        if self._real is not None:
            real_config = self._real["config"].Config.model_validate(
                {k: v for k, v in self.config.items()})
            self._rse_butler = self._real["rse_butler"].RseButler(self.repo)
            self.butler = self._rse_butler.butler
            self._factory = self._real["factory"].EntryFactory(
                self._rse_butler, self._real["mapper"].Mapper(real_config.topics))
        else:
            self.butler = Butler.from_config(self.repo, writeable=True)
        self._formatters: dict[str, Any] = {}

    # -- properties and helpers ----------------------------------------------------------------
    @property
    def topics(self) -> list[str]:
        return list(self.config["topics"])

    def consumer_config(self) -> dict[str, Any]:
        """The confluent-kafka settings ctrl_ingestd's IngestD uses."""
        return {"bootstrap.servers": ",".join(self.config["brokers"]),
                "client.id": self.config["client_id"], "group.id": self.config["group_id"],
                "auto.offset.reset": "earliest", "enable.auto.commit": True}

    def rewrite(self, topic: str, url: str) -> str:
        """``dst-url`` with the topic's rucio_prefix replaced by its fs_prefix (ctrl_ingestd's
        Mapper.rewrite: every occurrence, plain string replace)."""
        entry = self.config["topics"].get(topic)
        if not entry:
            raise KeyError(f"topic {topic} is not in the ctrl_ingestd config (topics: "
                           f"{', '.join(self.topics)})")
        return url.replace(entry["rucio_prefix"], entry["fs_prefix"])

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close()
        self.butler.close()

    def __enter__(self) -> IngestConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Kafka ---------------------------------------------------------------------------------
    def poll(self, timeout: float | None = None, *, limit: int | None = None) -> IngestStats:
        """Read up to ``num_messages`` messages (waiting at most ``timeout`` seconds, default the
        config's) and ingest them, as one pass of ctrl_ingestd's loop. ``limit``: read at most
        that many (the read returns as soon as it has them)."""
        if self._consumer is None:
            try:
                from confluent_kafka import Consumer  # the rehearsal extra
            except ImportError:
                raise missing_module("confluent_kafka", sys.executable) from None

            self._consumer = Consumer(self.consumer_config())
            self._consumer.subscribe(self.topics)
        wait = self.config["timeout"] if timeout is None else timeout
        count = self.config["num_messages"]
        if limit is not None:
            count = max(1, min(limit, count))
        msgs = self._consumer.consume(num_messages=count, timeout=wait)
        stats = IngestStats()
        events: list[bytes] = []
        for msg in msgs or ():
            if msg.error() is not None:
                stats.consumed += 1
                stats.kafka_errors += 1
                stats.skipped[f"kafka error: {msg.error()}"] += 1
                continue
            events.append(msg.value())
        return stats.add(self.ingest_events(events))

    def drain(self, *, expect: int | None = None, timeout: float = 60.0,
              idle: float = 3.0) -> IngestStats:
        """Poll until ``expect`` events were consumed (Kafka's error messages do not count), or
        (without ``expect``) until nothing arrived for ``idle`` seconds after the first message;
        at most ``timeout`` seconds."""
        total = IngestStats()
        start = last = time.monotonic()
        while True:
            due = None if expect is None else expect - (total.consumed - total.kafka_errors)
            # with `expect`, a read returns as soon as the events still due arrived
            stats = self.poll(1.0, limit=due)
            total.add(stats)
            now = time.monotonic()
            if stats.consumed:
                last = now
            if expect is not None and total.consumed - total.kafka_errors >= expect:
                return total
            if expect is None and total.consumed and now - last >= idle:
                return total
            if now - start >= timeout:
                return total

    # -- events --------------------------------------------------------------------------------
    def ingest_event(self, event: Mapping[str, Any] | str | bytes) -> IngestStats:
        """Ingest one Hermes event (a dict, or its JSON), without Kafka."""
        return self.ingest_events([event])

    def ingest_events(self, events: Iterable[Mapping[str, Any] | str | bytes]) -> IngestStats:
        """Ingest a batch of Hermes events (what one Kafka consume returned)."""
        stats = IngestStats()
        accepted: list[tuple[bytes, dict[str, Any]]] = []
        for event in events:
            stats.consumed += 1
            data = event if isinstance(event, bytes) else (
                event.encode() if isinstance(event, str) else json.dumps(dict(event)).encode())
            try:
                msg = json.loads(data)
                payload = msg["payload"]
            except (ValueError, KeyError, TypeError) as exc:
                stats.errors.append(f"unreadable message ({exc}): {data[:120]!r}")
                continue
            if msg.get("event_type", EVENT_TYPE) != EVENT_TYPE:
                stats.skipped[f"event_type {msg.get('event_type')}"] += 1
                continue
            kind = payload.get("rubin_butler")
            if kind is None:
                did = f"{payload.get('scope')}:{payload.get('name')}"
                stats.errors.append(f"{did}: no rubin_butler")
                continue
            if kind != DATA_PRODUCT and not (kind == RAW_FILE and self.ingest_raws):
                stats.skipped[f"rubin_butler {kind}: not a data product"] += 1
                continue
            accepted.append((data, payload))
        if accepted:
            ingest = self._ingest_real if self._real is not None else self._ingest_stand_in
            stats.add(ingest(accepted))
        return stats

    def _ref(self, payload: Mapping[str, Any]) -> Any:
        from lsst.daf.butler import DatasetRef

        sidecar = payload.get("rubin_sidecar")
        if not sidecar:
            raise ValueError("no rubin_sidecar")
        if not isinstance(sidecar, str | bytes):
            sidecar = json.dumps(sidecar)
        return DatasetRef.from_json(sidecar, registry=self.butler.registry)

    def _formatter(self, ref: Any) -> Any:
        """None (the datastore's default) when importable here, else the stand-in formatter."""
        name = ref.datasetType.storageClass_name
        if name not in self._formatters:
            try:
                self.butler._datastore.formatterFactory.getFormatterClass(ref)
                self._formatters[name] = None
            except Exception:  # a stack-only formatter (obs_base, afw)
                self._formatters[name] = STAND_IN_FORMATTER
        return self._formatters[name]

    def _inside_root(self, path: str) -> bool:
        from lsst.resources import ResourcePath

        root = self.butler._datastore.root  # no public accessor
        return ResourcePath(path, forceAbsolute=True).relative_to(root) is not None

    def _copy_in(self, path: str, ref: Any) -> str:
        from lsst.resources import ResourcePath

        datastore = self.butler._datastore  # no public accessor
        src = ResourcePath(path, forceAbsolute=True)
        relative = datastore.templates.getTemplate(ref).format(ref) + src.getExtension()
        target = datastore.root.join(relative)
        target.transfer_from(src, transfer="copy", overwrite=True)
        return str(target)

    def _ingest_stand_in(self, accepted: list[tuple[bytes, dict[str, Any]]]) -> IngestStats:
        from lsst.daf.butler import FileDataset

        stats = IngestStats()
        batches: dict[str, list[tuple[str, Any]]] = {}
        for _, payload in accepted:
            did = f"{payload.get('scope')}:{payload.get('name')}"
            try:
                topic = f"{payload['dst-rse']}-{payload['scope']}"
                path = self.rewrite(topic, payload["dst-url"])
                ref = self._ref(payload)
            except Exception as exc:  # one event's problem, reported
                stats.errors.append(f"{did}: {type(exc).__name__}: {exc}")
                continue
            if self.butler.get_dataset(ref.id) is not None:
                stats.duplicates += 1
                continue
            transfer = "direct" if payload.get("rubin_butler") == RAW_FILE else "auto"
            formatter = self._formatter(ref)
            if transfer == "auto" and not self._inside_root(path):
                # ctrl_ingestd's "auto" copies such a file to its templated path (the stand-in
                # formatter would refuse the extension there): the copy is made here, then the
                # file is ingested in place like the others
                stats.outside_root += 1
                stats.outside_ids.append(str(ref.id))
                try:
                    path = self._copy_in(path, ref)
                except Exception as exc:  # one event's problem, reported
                    stats.errors.append(f"{did}: {type(exc).__name__}: {exc}")
                    continue
            dataset = FileDataset(path, ref, formatter=formatter)
            batches.setdefault(transfer, []).append((did, dataset))
        for transfer, items in batches.items():
            try:
                self.butler.ingest(*(fd for _, fd in items), transfer=transfer)
                done = items
            except Exception:  # retry one by one, as ctrl_ingestd does
                done = []
                for did, fd in items:
                    try:
                        self.butler.ingest(fd, transfer=transfer)
                        done.append((did, fd))
                    except Exception as exc:  # one event's problem, reported
                        if "already contains" in str(exc) or self.butler.get_dataset(fd.refs[0].id):
                            stats.duplicates += 1
                        else:
                            stats.errors.append(f"{did}: {type(exc).__name__}: {exc}")
            for _, fd in done:
                stats.ingested += 1
                stats.dataset_ids.append(str(fd.refs[0].id))
                stats.runs.add(fd.refs[0].run)
        return stats

    def _ingest_real(self, accepted: list[tuple[bytes, dict[str, Any]]]) -> IngestStats:
        """ctrl_ingestd's IngestD.process() body on these messages; the outcome per event is
        read from the Butler before and after (ctrl_ingestd only logs it)."""
        assert self._real is not None
        message_module = self._real["message"]
        stats = IngestStats()
        entries, ids = [], []
        for data, payload in accepted:
            did = f"{payload.get('scope')}:{payload.get('name')}"
            try:
                message = message_module.Message(_KafkaValue(data))
                entry = self._factory.create_entry(message)
                ref = entry.get_data().refs[0]
            except Exception as exc:  # one event's problem, reported
                stats.errors.append(f"{did}: {type(exc).__name__}: {exc}")
                continue
            if self.butler.get_dataset(ref.id) is not None:
                stats.duplicates += 1
            else:
                entries.append(entry)
                ids.append((did, ref))
        if entries:
            self._rse_butler.ingest(entries)
        for did, ref in ids:
            if self.butler.get_dataset(ref.id) is not None:
                stats.ingested += 1
                stats.dataset_ids.append(str(ref.id))
                stats.runs.add(ref.run)
            else:
                stats.errors.append(f"{did}: not ingested by ctrl_ingestd (see its log)")
        return stats
