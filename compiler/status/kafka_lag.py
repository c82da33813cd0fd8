"""Consumer lag of each site's ctrl_ingestd group, read with confluent-kafka.

Lag is, per partition of each topic the site's ctrl_ingestd listens to, the high watermark less
the group's committed offset (the low watermark when the group never committed). The status
reads it without joining the group: a consumer that never subscribes only fetches the committed
offsets, so the running ctrl_ingestd keeps its partitions. A lag is sampled twice, `interval`
seconds apart, so that "behind but catching up" and "behind and stuck" differ.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..naming import ingestd_topic
from ..plan import Plan
from ..render.ingestd import default_group_id
from .errors import SourceUnavailable, missing_client, reason_of
from .model import LagStatus, SourceStatus


@dataclass(frozen=True)
class Group:
    site: str
    brokers: str
    group_id: str
    topics: tuple[str, ...]


def site_groups(plan: Plan, sites: Sequence[str]) -> list[Group]:
    """The ctrl_ingestd group of every site where files arrive, with its topics."""
    out = []
    for site_id in sites:
        site = plan.site(site_id)
        arrivals = plan.arrivals(site_id)
        if site.ingestd is None or not arrivals:
            continue
        topics = tuple(sorted({ingestd_topic(a.rse, a.scope) for a in arrivals}))
        out.append(Group(site_id, ",".join(site.ingestd.kafka_brokers),
                         site.ingestd.group_id or default_group_id(plan, site_id), topics))
    return out


def _consumer(group: Group, timeout: float) -> Any:
    try:
        from confluent_kafka import Consumer
    except ImportError as exc:
        raise missing_client("confluent-kafka", "confluent_kafka", exc) from None
    return Consumer({"bootstrap.servers": group.brokers, "group.id": group.group_id,
                     "enable.auto.commit": False, "socket.timeout.ms": int(timeout * 1000),
                     "log_level": 0})


def topic_lag(consumer: Any, topic: str, timeout: float) -> int | None:
    """Messages behind on `topic`; None when the topic does not exist yet (nothing sent)."""
    from confluent_kafka import TopicPartition

    meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        return None
    parts = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
    lag = 0
    for tp in consumer.committed(parts, timeout=timeout):
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
        lag += max(0, high - (tp.offset if tp.offset >= 0 else low))
    return lag


def _sample(group: Group, timeout: float) -> dict[str, int | None]:
    consumer = _consumer(group, timeout)
    try:
        return {t: topic_lag(consumer, t, timeout) for t in group.topics}
    finally:
        consumer.close()


def _sample_all(groups: Sequence[Group], timeout: float
                ) -> dict[str, dict[str, int | None] | str]:
    """Site -> its lag per topic, or why it could not be read; every site at once, so that a
    broker that does not answer costs one timeout, not one per site."""
    def one(group: Group) -> dict[str, int | None] | str:
        try:
            return _sample(group, timeout)
        except Exception as exc:  # noqa: BLE001 - any failure of Kafka is an unknown cell
            return str(exc) if isinstance(exc, SourceUnavailable) else (
                f"Kafka {group.brokers}: {reason_of(exc)}")

    if not groups:
        return {}
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        return dict(zip([g.site for g in groups], pool.map(one, groups), strict=True))


def collect_lag(plan: Plan, sites: Sequence[str], *, interval: float, timeout: float,
                sleep: Callable[[float], None] = time.sleep
                ) -> tuple[list[LagStatus], list[SourceStatus]]:
    groups = site_groups(plan, sites)
    first = _sample_all(groups, timeout)
    behind = [g for g in groups if not isinstance(first[g.site], str)
              and any(v for v in first[g.site].values())]  # type: ignore[union-attr]
    second: dict[str, dict[str, int | None] | str] = {}
    if behind and interval > 0:
        sleep(interval)
        second = _sample_all(behind, timeout)
    out: list[LagStatus] = []
    sources: list[SourceStatus] = []
    for g in groups:
        got, again = first[g.site], second.get(g.site)
        if isinstance(got, str) or isinstance(again, str):
            reason = got if isinstance(got, str) else str(again)
            out += [LagStatus(site=g.site, group_id=g.group_id, topic=t, known=False,
                              reason=reason) for t in g.topics]
            sources.append(SourceStatus(source="kafka", site=g.site, up=False, reason=reason))
            continue
        for t in g.topics:
            lag, later = got[t], (again or {}).get(t)
            if lag is None:
                out.append(LagStatus(site=g.site, group_id=g.group_id, topic=t, known=True,
                                     lag=0, reason="the topic does not exist yet (nothing sent)"))
            elif again is None or later is None or lag == 0:
                out.append(LagStatus(site=g.site, group_id=g.group_id, topic=t, known=True,
                                     lag=lag))
            else:
                out.append(LagStatus(site=g.site, group_id=g.group_id, topic=t, known=True,
                                     lag=later, lag_before=lag, falling=later < lag))
        sources.append(SourceStatus(source="kafka", site=g.site, up=True))
    return out, sources


__all__ = ["Group", "collect_lag", "site_groups", "topic_lag"]
