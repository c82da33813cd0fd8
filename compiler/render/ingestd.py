"""ctrl_ingestd Kubernetes manifests: a kustomize base per receiving site (CONTRACT 3).

`sites/<site>/ingestd/` holds a ConfigMap with the ctrl_ingestd configuration in its own format
(`lsst.ctrl.ingestd.config.Config`), a Deployment running the ctrl_ingestd image around it, a
ServiceAccount and the `kustomization.yaml` that ties them together, so that a site admin runs
`kubectl apply -k sites/<site>/ingestd`. A site that receives no transfer gets no directory.

The topic ctrl_ingestd subscribes to for a (destination RSE, scope) is named by
`naming.ingestd_topic` only: Rucio's Kafka filter for Hermes has been seen naming topics after the
RSE alone, so a site may need another pairing; change it there and everything follows.
"""

from __future__ import annotations

import hashlib
import shlex
from typing import Any

from ..naming import ingestd_labels, ingestd_resource, ingestd_selector, ingestd_topic
from ..paths import ingestd_dir
from ..plan import Plan, SitePlan
from .common import comment_header, render_template

# The ctrl_ingestd image is built FROM ghcr.io/lsst/scipipe, whose user `lsst` is made by a plain
# `useradd` on AlmaLinux 9 (lsst-dm/docker-newinstall): the first regular uid and gid, 1000.
LSST_UID = 1000
LSST_GID = 1000
LSST_HOME = "/home/lsst"

CONFIG_DIR = "/etc/ctrl_ingestd"
CONFIG_KEY = "ingestd.yaml"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_KEY}"
SECRET_DIR = "/var/run/secrets/butler"  # the Secret as kubelet mounts it (group-readable)
CREDENTIALS_DIR = f"{LSST_HOME}/.lsst"  # private copies, mode 0600, where daf_butler looks

# run.sh (the image's entrypoint) sources the stack and runs this script as a child process.
INGESTD_SCRIPT = f"{LSST_HOME}/ctrl_ingestd/bin/ingestd"

FILES = ("configmap.yaml", "deployment.yaml", "serviceaccount.yaml")
KUSTOMIZATION = "kustomization.yaml"


def default_group_id(plan: Plan, site_id: str) -> str:
    return f"ingestd-{plan.campaign}-{site_id}"


def resource_name(plan: Plan) -> str:
    return ingestd_resource(plan.campaign)


def labels(plan: Plan, site_id: str) -> dict[str, str]:
    return ingestd_labels(plan.campaign, site_id)


def _with_slash(prefix: str) -> str:
    """ctrl_ingestd appends a missing trailing `/` itself; writing it shows what it will use."""
    return prefix if prefix.endswith("/") else prefix + "/"


def receives_transfers(plan: Plan, site_id: str) -> bool:
    return bool(plan.arrivals(site_id))


def ingestd_config(plan: Plan, site_id: str) -> dict[str, Any]:
    """The ctrl_ingestd configuration of a site, as data (keys in the order the file shows them).

    One topic per (destination RSE, scope) of the transfers arriving at the site, each mapping
    the destination RSE's URL prefix to the site's local file prefix.
    """
    site = plan.site(site_id)
    if site.ingestd is None:
        raise ValueError(f"site {site_id} has no ingestd section (validate.plan_errors reports it)")
    topics: dict[str, dict[str, str]] = {}
    for arrival in plan.arrivals(site_id):
        topics[ingestd_topic(arrival.rse, arrival.scope)] = {
            "rucio_prefix": _with_slash(arrival.rucio_prefix),
            "fs_prefix": _with_slash(arrival.fs_prefix),
        }
    return {
        "brokers": list(site.ingestd.kafka_brokers),
        "group_id": site.ingestd.group_id or default_group_id(plan, site_id),
        "butler_repo": site.butler_repo,
        "topics": dict(sorted(topics.items())),
    }


def alive_command() -> list[str]:
    """Exec probe: exit 0 while the ingestd process runs (bash and grep only, both in the image).

    `[i]` makes the pattern match the ingestd command line but not the probe's own.
    """
    head, _, tail = INGESTD_SCRIPT.rpartition("/")
    pattern = f"{head}/[{tail[0]}]{tail[1:]}"
    return ["/bin/bash", "-c", f"grep -qsa {shlex.quote(pattern)} /proc/[0-9]*/cmdline"]


def _image_pinned(image: str) -> bool:
    """A digest or a tag other than `latest` (a `:` after the last `/` is a tag, not a port)."""
    if "@" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


def _context(plan: Plan, site: SitePlan) -> dict[str, Any]:
    assert site.ingestd is not None
    config = ingestd_config(plan, site.id)
    config_text = render_template("ingestd/ingestd.yaml.j2", config=config).decode()
    pinned = _image_pinned(site.ingestd.image)
    return {
        "plan": plan,
        "site": site,
        "ingestd": site.ingestd,
        "resource": resource_name(plan),
        "config_map": f"{resource_name(plan)}-config",
        "labels": labels(plan, site.id),
        "selector": ingestd_selector(plan.campaign, site.id),
        "config": config,
        "arrival_rses": sorted({a.rse for a in plan.arrivals(site.id)}),
        "config_text": config_text,
        "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
        "config_dir": CONFIG_DIR,
        "config_key": CONFIG_KEY,
        "config_path": CONFIG_PATH,
        "secret_dir": SECRET_DIR,
        "credentials_dir": CREDENTIALS_DIR,
        "ingestd_script": INGESTD_SCRIPT,
        "alive_command": alive_command(),
        "uid": LSST_UID,
        "gid": LSST_GID,
        "image_pinned": pinned,
        "pull_policy": "IfNotPresent" if pinned else "Always",
        "files": sorted(FILES),
        "topic_function": f"{ingestd_topic.__module__}.ingestd_topic",
    }


_WHAT = {
    "configmap.yaml": "ctrl_ingestd configuration (ConfigMap)",
    "deployment.yaml": "ctrl_ingestd Deployment",
    "serviceaccount.yaml": "ctrl_ingestd ServiceAccount",
    KUSTOMIZATION: "ctrl_ingestd kustomize base",
}


def render_site(plan: Plan, site_id: str) -> dict[str, bytes]:
    site = plan.site(site_id)
    if not receives_transfers(plan, site_id) or site.ingestd is None:
        return {}  # nothing arrives; or a spec error that validate.plan_errors reports
    ctx = _context(plan, site)
    out: dict[str, bytes] = {}
    for file in (*FILES, KUSTOMIZATION):
        header = comment_header(plan, f"{_WHAT[file]} for {site.id} ({site.facility})")
        path = f"{ingestd_dir(site.id)}/{file}"
        out[path] = render_template(f"ingestd/{file}.j2", header=header, **ctx)
    return out


def render(plan: Plan, site: str | None = None) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for s in plan.sites_to_render(site):
        files.update(render_site(plan, s.id))
    return dict(sorted(files.items()))


__all__ = ["render", "render_site", "ingestd_config",
           "default_group_id", "resource_name", "labels"]
