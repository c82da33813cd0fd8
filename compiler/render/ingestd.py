"""ctrl_ingestd Kubernetes manifests: a kustomize base per receiving site (CONTRACT 3).

`sites/<site>/ingestd/` holds a ConfigMap with the ctrl_ingestd configuration in its own format
(`lsst.ctrl.ingestd.config.Config`), a Deployment running the ctrl_ingestd image around it, a
ServiceAccount and the `kustomization.yaml` that ties them together, so that a site admin runs
`kubectl apply -k sites/<site>/ingestd`. A site that receives no transfer gets no directory.

The topic ctrl_ingestd subscribes to for a (destination RSE, scope) is named by
`naming.ingestd_topic` only: Rucio's Kafka filter for Hermes has been seen naming topics after the
RSE alone, so a site may need another pairing; change it there and everything follows. (Mind
that ctrl_ingestd 2.1 itself looks an event's prefixes up under `<dst-rse>-<scope>` of the
event, `entries/entry.py`, whatever topic it came on.)

The pod sees the site's file systems through `sites.<id>.ingestd.volumes`: each a
PersistentVolumeClaim (`claim`) or a node directory (`host_path`, type Directory) mounted at its
`mount_path` in the ingestd container. `ingestd_mount_problems` says where that falls short: a
receiving site whose Butler repository is a local path, or whose RSE root (the local side of a
topic's fs_prefix, what ctrl_ingestd opens) or datastore root, lies under no volume.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from typing import Any

from ..model import IngestdVolume
from ..naming import (
    file_path,
    ingestd_labels,
    ingestd_resource,
    ingestd_selector,
    ingestd_topic,
)
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


# -- volumes ---------------------------------------------------------------------------------------

# The pod's own volumes (deployment.yaml.j2): a spec volume must not reuse their names or paths.
BUILTIN_VOLUMES = ("butler-credentials", "butler-secret", "config", "tmp")
BUILTIN_MOUNTS = (CONFIG_DIR, CREDENTIALS_DIR, SECRET_DIR, "/tmp")


def _norm(path: str) -> str:
    return posixpath.normpath(path)


def _under(path: str, root: str) -> bool:
    path, root = _norm(path), _norm(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def local_path(location: str) -> str | None:
    """The local path a Butler repository or file prefix names (`/x`, `file:///x`), or None for
    a URI of another scheme (s3://, https://, ...) or a repository-index label."""
    if location.startswith("file://"):
        return file_path(location)
    if location.startswith("/"):
        return location
    return None


def volume_source(volume: IngestdVolume) -> dict[str, Any]:
    """The pod volume's source: `persistentVolumeClaim` or `hostPath` (exactly one is given;
    `ingestd_mount_problems` reports a spec that gives both or neither)."""
    if (volume.claim is None) == (volume.host_path is None):
        raise ValueError(f"ingestd volume {volume.name}: give exactly one of claim, host_path "
                         "(ingestd_mount_problems reports it)")
    if volume.claim is not None:
        return {"persistentVolumeClaim": {"claimName": volume.claim,
                                          "readOnly": volume.read_only}}
    return {"hostPath": {"path": volume.host_path, "type": "Directory"}}


def needed_paths(plan: Plan, site: SitePlan) -> list[tuple[str, str, bool]]:
    """(what, local path, needs write access) the ingestd pod must see at the site, in order:
    the Butler repository (written when its registry is the repository's own SQLite file), the
    local side of every arrival's fs_prefix (read), and the datastore root (written only when
    it is not `<rse_root>/<scope>`: `transfer="auto"` then copies each file into it)."""
    out: list[tuple[str, str, bool]] = []
    repo = local_path(site.butler_repo)
    if repo is not None:
        out.append(("the Butler repository", repo, site.butler_registry is None))
    for arrival in plan.arrivals(site.id):
        path = local_path(arrival.fs_prefix)
        if path is not None:
            out.append((f"the RSE root of {arrival.rse} (fs_prefix of topic "
                        f"{ingestd_topic(arrival.rse, arrival.scope)})", path, False))
    datastore = local_path(site.datastore_root)
    if datastore is not None:
        # in place (no write) when the files land inside it, as with the default root
        copied = _norm(site.datastore_root) != _norm(site.rucio_datastore_root)
        out.append(("the datastore root", datastore, copied))
    return out


def ingestd_volume_errors(plan: Plan) -> list[tuple[str, int, str]]:
    """(site id, volume index, message) for every volume a Deployment cannot hold: claim and
    host_path both or neither, a relative path, a name or mount path used twice or by the pod's
    own volumes, a mount that hides the image's home. Errors: the manifests could not be built
    (or the pod would not start), whatever the site's network."""
    errors: list[tuple[str, int, str]] = []
    for site in plan.sites:
        if site.ingestd is None:
            continue
        names: set[str] = set()
        mounts: set[str] = set()
        for i, v in enumerate(site.ingestd.volumes):
            where = f"ingestd volume {v.name}"
            found: list[str] = []
            if (v.claim is None) == (v.host_path is None):
                found.append(f"{where}: give exactly one of claim, host_path")
            if v.host_path is not None and not v.host_path.startswith("/"):
                found.append(f"{where}: host_path {v.host_path} is not an absolute path")
            if not v.mount_path.startswith("/"):
                found.append(f"{where}: mount_path {v.mount_path} is not an absolute path")
            if v.name in BUILTIN_VOLUMES or v.name in names:
                user = "the pod itself" if v.name in BUILTIN_VOLUMES else "another volume"
                found.append(f"{where}: the name is already used by {user}")
            mount = _norm(v.mount_path)
            if _under(LSST_HOME, mount):
                found.append(f"{where}: mount_path {v.mount_path} would hide {LSST_HOME}, where "
                             "the image keeps ctrl_ingestd")
            elif mount in mounts or any(_under(mount, b) or _under(b, mount)
                                        for b in BUILTIN_MOUNTS):
                found.append(f"{where}: mount_path {v.mount_path} collides with another mount "
                             f"of the pod ({', '.join((*sorted(mounts), *BUILTIN_MOUNTS))})")
            errors += [(site.id, i, message) for message in found]
            names.add(v.name)
            mounts.add(mount)
    return errors


def ingestd_mount_problems(plan: Plan) -> list[tuple[str, str]]:
    """(site id, message) for every receiving site whose ctrl_ingestd pod cannot see (or write)
    what it must: a local Butler repository, RSE root or datastore root under no volume of
    `sites.<id>.ingestd.volumes`, or only under a read-only one where ingest writes. Warnings: a
    repository or datastore reached over the network needs no volume. Sites without an ingestd
    section are `validate.plan_errors`' business, broken volumes `ingestd_volume_errors`'."""
    problems: list[tuple[str, str]] = []
    for site in plan.sites:
        if site.ingestd is None or not receives_transfers(plan, site.id):
            continue
        volumes = site.ingestd.volumes
        for what, path, write in needed_paths(plan, site):
            covering = [v for v in volumes if v.mount_path.startswith("/")
                        and _under(path, v.mount_path)]
            if not covering:
                mounted = ", ".join(v.mount_path for v in volumes) or "none"
                problems.append((site.id, f"the ctrl_ingestd pod cannot see {what}, {path}: it "
                                          "lies under no mount_path of "
                                          f"sites.{site.id}.ingestd.volumes (mounted: {mounted})"))
            elif write:
                # the deepest mount wins, as in the container
                deepest = max(covering, key=lambda v: len(_norm(v.mount_path)))
                if deepest.read_only:
                    problems.append((site.id, f"the ctrl_ingestd pod cannot write {what}, "
                                              f"{path}: volume {deepest.name} is read_only, "
                                              "and ingest writes there"))
    return problems


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
        "arrivals": [(ingestd_topic(a.rse, a.scope), a) for a in plan.arrivals(site.id)],
        "volumes": [(v, volume_source(v)) for v in site.ingestd.volumes],
        "needed_paths": needed_paths(plan, site),
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


__all__ = ["render", "render_site", "ingestd_config", "ingestd_mount_problems",
           "ingestd_volume_errors",
           "default_group_id", "resource_name", "labels", "local_path", "needed_paths",
           "volume_source"]
