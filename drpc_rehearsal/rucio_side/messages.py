"""The Rucio side of the Hermes step (:mod:`drpc_rehearsal.hermes`), in the Rucio venv: reads
Rucio's ``messages`` table in batches, keeps the `event_type` messages of files that have
``rubin_butler`` metadata (adding ``rubin_butler`` and ``rubin_sidecar`` to the payload), and
deletes a batch only once told that its events were delivered.

Protocol, one JSON object per line: for each batch this writes ``{"events": [...],
"dropped": [DIDs without rubin_butler], "other": N, "n": N}`` to stdout and reads a line from
stdin: ``commit`` deletes the batch (archived to ``messages_history``, as Hermes does after a
successful send) and goes on, anything else exits 3 and leaves it for the next step. After the
last batch (fewer than `bulk` messages) it writes ``{"done": true}``.

Standard library and rucio only (see the package's docstring).
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["hermes_reader"]


def _out(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def hermes_reader(bulk: int, event_type: str) -> None:
    """Hand every waiting Rucio message over to the calling process (see the module doc)."""
    from rucio.client import Client
    from rucio.common.exception import DataIdentifierNotFound
    from rucio.core.message import delete_messages, retrieve_messages

    client = Client()
    cache: dict[tuple[str, str], dict[str, Any]] = {}

    def metadata(scope: str, name: str) -> dict[str, Any]:
        key = (scope, name)
        if key not in cache:
            try:
                cache[key] = dict(client.get_metadata(scope, name, plugin="ALL"))
            except DataIdentifierNotFound:
                cache[key] = {}
        return cache[key]

    while True:
        batch = retrieve_messages(bulk=bulk)
        events: list[dict[str, Any]] = []
        dropped: list[str] = []
        other = 0
        for msg in batch:
            if msg["event_type"] != event_type:
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
        _out({"events": events, "dropped": dropped, "other": other, "n": len(batch)})
        if sys.stdin.readline().strip() != "commit":
            sys.exit(3)
        delete_messages([{"id": m["id"], "created_at": m["created_at"],
                          "event_type": m["event_type"], "services": m["services"],
                          "payload": json.dumps(m["payload"])} for m in batch])
        if len(batch) < bulk:
            break
    _out({"done": True})
