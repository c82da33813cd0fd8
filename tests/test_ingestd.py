"""sites/<site>/ingestd/: the ctrl_ingestd kustomize base, checked against its real consumers.

- every manifest passes kubernetes-validate (strict) for current Kubernetes versions, alone and
  after `kubectl kustomize`;
- the ConfigMap's embedded configuration obeys the rules of ctrl_ingestd's own config model
  (mirrored below from lsst-dm/ctrl_ingestd python/lsst/ctrl/ingestd/config.py), and the real
  ctrl_ingestd 2.1 (CTRL_INGESTD_DIR, default ../shared/vendor/ctrl_ingestd-2.1/python) loads
  it with its `Config`, and its `Message`, `Mapper` and `Entry` turn a Rucio transfer-done event
  of every move into the local file the move's datasets are ingested from;
- the site's volumes (PVC or host path) are mounted where the spec says, and
  `ingestd_mount_problems` names every path the pod could not see;
- the Butler credentials copied by the init container pass daf_butler's (lsst.utils) DbAuth check;
- the liveness probe finds a running ingestd process and fails without one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import kubernetes_validate
import pytest
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from compiler.errors import SpecError
from compiler.loader import load_campaign
from compiler.naming import ingestd_topic
from compiler.pipeline import compile_campaign
from compiler.plan import Plan
from compiler.render import ingestd as ingestd_render
from compiler.render.common import GENERATED
from compiler.render.ingestd import (
    CONFIG_KEY,
    CONFIG_PATH,
    CREDENTIALS_DIR,
    INGESTD_SCRIPT,
    LSST_UID,
    SECRET_DIR,
    alive_command,
    ingestd_config,
    ingestd_mount_problems,
    ingestd_volume_errors,
    local_path,
    render,
)
from compiler.validate import plan_errors
from tests.helpers import dump_yaml, example_data, shared

ROOT = Path(__file__).resolve().parents[1]
Example = tuple[Plan, dict[str, bytes]]
CAMPAIGNS = ROOT / "campaigns"
EXAMPLES = ("3x2.yaml", "dr1.yaml")
K8S_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
MANIFESTS = ("configmap.yaml", "deployment.yaml", "serviceaccount.yaml")


# -- building inputs -------------------------------------------------------------------------------

def plan_of(path: Path) -> Plan:
    return compile_campaign(path, render=False).plan


def ingestd_problems(path: Path) -> list[str]:
    """The plan-level errors of a campaign file (no ctrl_ingestd where files arrive)."""
    loaded = load_campaign(path)
    return [d.message for d in plan_errors(plan_of(path), loaded)]


def example_plan(name: str) -> Plan:
    return plan_of(CAMPAIGNS / name)


def write_tree(files: dict[str, bytes], root: Path) -> Path:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root


def site_dirs(files: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    out: dict[str, dict[str, bytes]] = {}
    for rel, content in files.items():
        parts = rel.split("/")
        assert parts[0] == "sites" and parts[2] == "ingestd" and len(parts) == 4, rel
        out.setdefault(parts[1], {})[parts[3]] = content
    return out


def load_doc(content: bytes) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(content.decode()) if d is not None]
    assert len(docs) == 1
    return docs[0]


# -- a mirror of ctrl_ingestd's configuration model ------------------------------------------------
# Mirrors lsst.ctrl.ingestd.config.Config (lsst-dm/ctrl_ingestd, since v1.10): required `brokers`
# (list), `group_id`, `butler_repo`, `topics` (at least one, each with `rucio_prefix` and an
# `fs_prefix` defaulting to "", both given a trailing "/"); optional `client_id` (default: the
# host name), `num_messages` (50), `timeout` (1 s). Stricter than the real one where the brief
# asks: no other keys, brokers as host:port, topic keys as <RSE>-<scope>.

HostPort = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*:[0-9]{1,5}$")]
TopicKey = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_-]*-[a-zA-Z_\-.0-9]{1,25}$")]


class TopicPrefixes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rucio_prefix: str
    fs_prefix: str = ""

    @model_validator(mode="after")
    def _slashes(self) -> "TopicPrefixes":
        if not self.rucio_prefix.endswith("/"):
            self.rucio_prefix = f"{self.rucio_prefix}/"
        if self.fs_prefix and not self.fs_prefix.endswith("/"):
            self.fs_prefix = f"{self.fs_prefix}/"
        return self


class IngestdConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    brokers: Annotated[list[HostPort], Field(min_length=1)]
    group_id: str
    client_id: str = Field(default_factory=socket.gethostname)
    num_messages: int = 50
    timeout: int = 1
    butler_repo: str
    topics: Annotated[dict[TopicKey, TopicPrefixes], Field(min_length=1)]


def embedded_config(configmap: dict[str, Any]) -> tuple[dict[str, Any], IngestdConfig]:
    """The file ctrl_ingestd reads, loaded as it loads it (PyYAML FullLoader), then validated."""
    assert set(configmap["data"]) == {CONFIG_KEY}
    raw = yaml.load(configmap["data"][CONFIG_KEY], Loader=yaml.FullLoader)
    return raw, IngestdConfig.model_validate(raw)


def test_config_mirror_rejects_what_ctrl_ingestd_rejects() -> None:
    good = {"brokers": ["kafka:9092"], "group_id": "g", "butler_repo": "/repo",
            "topics": {"XRD1_DISK-test": {"rucio_prefix": "root://xrd1:1094//rucio",
                                          "fs_prefix": "file:///r"}}}
    cfg = IngestdConfig.model_validate(good)
    assert cfg.topics["XRD1_DISK-test"].rucio_prefix.endswith("/") and cfg.num_messages == 50
    for bad in ({**good, "topics": {}}, {k: v for k, v in good.items() if k != "group_id"},
                {k: v for k, v in good.items() if k != "butler_repo"},
                {**good, "brokers": "kafka:9092"},
                {**good, "butler": {"repo": "/repo"}}, {**good, "brokers": ["kafka"]}):
        with pytest.raises(ValidationError):
            IngestdConfig.model_validate(bad)


# -- (1) the manifests are valid Kubernetes, alone and through kustomize ---------------------------

@pytest.fixture(scope="module", params=EXAMPLES)
def example(request: pytest.FixtureRequest) -> Example:
    plan = example_plan(request.param)
    return plan, render(plan)


def test_every_file_has_provenance_header_and_clean_text(example: Example) -> None:
    plan, files = example
    assert files
    for rel, content in files.items():
        text = content.decode("utf-8")
        lines = text.splitlines()
        assert lines[0].startswith("# ") and f"campaign '{plan.campaign}'" in lines[0], rel
        assert lines[1] == f"# {GENERATED}: drpc {plan.drpc_version} from {plan.spec_file}", rel
        assert plan.spec_sha256 not in text, rel  # rev 2: the manifest keeps it
        assert text.endswith("\n") and not text.endswith("\n\n") and "\r" not in text, rel
        assert not any(line != line.rstrip() for line in lines), f"trailing blanks in {rel}"


def test_manifests_pass_kubernetes_validate_strict(example: Example) -> None:
    plan, files = example
    for site_id, dir_files in site_dirs(files).items():
        assert set(dir_files) == {*MANIFESTS, "kustomization.yaml"}
        for name in MANIFESTS:
            doc = load_doc(dir_files[name])
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)
            assert doc["metadata"]["namespace"] == plan.site(site_id).ingestd.namespace


def test_manifests_pass_kubernetes_validate_cli(example: Example, tmp_path: Path) -> None:
    plan, files = example
    write_tree(files, tmp_path)
    paths = sorted(str(p) for p in tmp_path.glob("sites/*/ingestd/*.yaml")
                   if p.name != "kustomization.yaml")
    cli = Path(sys.executable).with_name("kubernetes-validate")
    argv = [str(cli), "--strict", "--kubernetes-version", K8S_VERSIONS[0], "--quiet", *paths]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kustomization_lists_exactly_the_other_files(example: Example) -> None:
    plan, files = example
    for site_id, dir_files in site_dirs(files).items():
        k = load_doc(dir_files["kustomization.yaml"])
        assert k["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and k["kind"] == "Kustomization"
        assert k["resources"] == sorted(set(dir_files) - {"kustomization.yaml"})
        assert k["namespace"] == plan.site(site_id).ingestd.namespace
        assert set(k) == {"apiVersion", "kind", "namespace", "labels", "resources"}
        [labels] = k["labels"]
        assert labels["includeSelectors"] is True
        assert labels["pairs"] == expected_labels(plan, site_id)


def expected_labels(plan: Plan, site_id: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "ctrl-ingestd", "app.kubernetes.io/part-of": "drpc",
            "app.kubernetes.io/managed-by": "drpc", "drpc.lsst.io/campaign": plan.campaign,
            "drpc.lsst.io/site": site_id}


@pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl not installed")
def test_kubectl_kustomize_output_is_valid(example: Example, tmp_path: Path) -> None:
    plan, files = example
    write_tree(files, tmp_path)
    for site_id in site_dirs(files):
        base = tmp_path / "sites" / site_id / "ingestd"
        result = subprocess.run([KUBECTL, "kustomize", str(base)], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        assert sorted(d["kind"] for d in docs) == ["ConfigMap", "Deployment", "ServiceAccount"]
        namespace = plan.site(site_id).ingestd.namespace
        for doc in docs:
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)
            assert doc["metadata"]["namespace"] == namespace
            assert doc["metadata"]["labels"] == expected_labels(plan, site_id)
        [dep] = [d for d in docs if d["kind"] == "Deployment"]
        assert dep["spec"]["selector"]["matchLabels"] == expected_labels(plan, site_id)
        assert dep["spec"]["template"]["metadata"]["labels"] == expected_labels(plan, site_id)
        # the kustomization changes nothing but adding what the files already say
        raw = {load_doc(c)["kind"]: load_doc(c)
               for n, c in site_dirs(files)[site_id].items() if n in MANIFESTS}
        for doc in docs:
            assert doc == raw[doc["kind"]]


def test_deployment_runs_ingestd_safely(example: Example) -> None:
    plan, files = example
    for site_id, dir_files in site_dirs(files).items():
        spec = plan.site(site_id).ingestd
        dep = load_doc(dir_files["deployment.yaml"])
        sa = load_doc(dir_files["serviceaccount.yaml"])
        cm = load_doc(dir_files["configmap.yaml"])
        assert sa["automountServiceAccountToken"] is False
        assert dep["spec"]["replicas"] == spec.replicas
        pod = dep["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == sa["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == LSST_UID
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["config"]["configMap"]["name"] == cm["metadata"]["name"]
        assert volumes["tmp"]["emptyDir"] is not None
        [main] = pod["containers"]
        for c in [main, *pod["initContainers"]]:
            assert c["image"] == spec.image
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True
        env = {e["name"]: e["value"] for e in main["env"]}
        assert env["CTRL_INGESTD_CONFIG"] == CONFIG_PATH
        mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
        config_mount = mounts[str(Path(CONFIG_PATH).parent)]
        assert config_mount["name"] == "config" and config_mount["readOnly"] is True
        assert mounts["/tmp"]["name"] == "tmp"
        assert mounts[CREDENTIALS_DIR]["readOnly"] is True
        r = spec.resources
        assert main["resources"] == {"requests": {"cpu": r.cpu_request, "memory": r.memory_request},
                                     "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit}}
        assert main["livenessProbe"]["exec"]["command"] == alive_command()
        assert main["startupProbe"]["exec"]["command"] == alive_command()
        assert "command" not in main and "args" not in main  # the image's entrypoint runs ingestd
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        assert annotations["drpc.lsst.io/config-sha256"] == hashlib.sha256(
            cm["data"][CONFIG_KEY].encode()).hexdigest()


# -- (2) the configuration, through ctrl_ingestd's rules -------------------------------------------

def test_configmap_obeys_ctrl_ingestd_config_model(example: Example) -> None:
    plan, files = example
    for site_id, dir_files in site_dirs(files).items():
        raw, cfg = embedded_config(load_doc(dir_files["configmap.yaml"]))
        assert raw == ingestd_config(plan, site_id)
        site = plan.site(site_id)
        assert cfg.brokers == list(site.ingestd.kafka_brokers)
        assert cfg.butler_repo == site.butler_repo
        assert cfg.group_id == (site.ingestd.group_id or f"ingestd-{plan.campaign}-{site_id}")
        arrivals = {ingestd_topic(a.rse, a.scope): a for a in plan.arrivals(site_id)}
        assert set(cfg.topics) == set(arrivals)
        for name, prefixes in raw["topics"].items():
            assert set(prefixes) == {"rucio_prefix", "fs_prefix"}
            assert cfg.topics[name].rucio_prefix.rstrip("/") == arrivals[name].rucio_prefix.rstrip("/")
            assert cfg.topics[name].fs_prefix.rstrip("/") == arrivals[name].fs_prefix.rstrip("/")
            assert arrivals[name].rse in (site.rse, site.raw_rse)


def test_3x2_topics_per_site() -> None:
    plan = example_plan("3x2.yaml")
    kinds = {s.id: {t.kind for t in plan.incoming(s.id)} for s in plan.sites}
    assert kinds["usdf"] <= {"gather", "return"} and "gather" in kinds["usdf"]
    assert kinds["frdf"] == kinds["ukdf-lancs"] == {"raw", "input", "scatter"}
    scope = plan.site("usdf").scope
    assert {s.scope for s in plan.sites} == {scope} == {"drp"}  # the repositories' name (rev 2)
    files = site_dirs(render(plan))
    topics = {site: set(embedded_config(load_doc(f["configmap.yaml"]))[1].topics)
              for site, f in files.items()}
    # processing outputs on the BUTLER_DISK RSE; the raws of the visits a site holds on its RAW_DISK
    assert topics == {"usdf": {f"SLAC_BUTLER_DISK-{scope}"},
                      "frdf": {f"IN2P3_BUTLER_DISK-{scope}", f"IN2P3_RAW_DISK-{scope}"},
                      "ukdf-lancs": {f"LANCS_BUTLER_DISK-{scope}", f"LANCS_RAW_DISK-{scope}"}}
    frdf = ingestd_config(plan, "frdf")["topics"][f"IN2P3_BUTLER_DISK-{scope}"]
    assert frdf == {"rucio_prefix": "davs://ccdavrubin.in2p3.fr:2880/rubin/",
                    "fs_prefix": "file:///sps/lsst/rucio/"}


def test_one_topic_per_destination_rse_and_scope(tmp_path: Path) -> None:
    """frdf registers in its own scope: usdf then listens on two topics, the other sites on one."""
    data = example_data("3x2.yaml")
    data["sites"]["frdf"]["rucio"]["scope"] = "frdf-drp"
    data["sites"]["usdf"]["ingestd"]["group_id"] = "usdf-ingest"
    plan = plan_of(dump_yaml(data, tmp_path / "campaign.yaml"))
    usdf = ingestd_config(plan, "usdf")
    assert list(usdf["topics"]) == ["SLAC_BUTLER_DISK-drp", "SLAC_BUTLER_DISK-frdf-drp"]
    assert usdf["group_id"] == "usdf-ingest"
    assert list(ingestd_config(plan, "frdf")["topics"]) == ["IN2P3_BUTLER_DISK-drp", "IN2P3_RAW_DISK-drp"]
    IngestdConfig.model_validate(usdf)


def test_topic_is_named_in_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = example_plan("3x2.yaml")
    monkeypatch.setattr(ingestd_render, "ingestd_topic", lambda rse, scope: rse)  # its one use
    assert list(ingestd_config(plan, "usdf")["topics"]) == ["SLAC_BUTLER_DISK"]
    cm = load_doc(render(plan, "usdf")["sites/usdf/ingestd/configmap.yaml"])
    # (the mirror model insists on <RSE>-<scope>, so read the file without it)
    assert list(yaml.safe_load(cm["data"][CONFIG_KEY])["topics"]) == ["SLAC_BUTLER_DISK"]


# -- (3) who gets a directory ----------------------------------------------------------------------

def test_site_receiving_nothing_gets_no_ingestd_directory(tmp_path: Path) -> None:
    data = example_data("3x2.yaml")
    # only the scattered FGCM solution moves: the central site receives nothing (it holds every raw)
    data["datasets"] = [d for d in data["datasets"] if d["type"] == "fgcm_photoCalibCatalog"]
    del data["sites"]["usdf"]["ingestd"]  # and needs none
    path = dump_yaml(data, tmp_path / "campaign.yaml")
    plan = plan_of(path)
    assert ingestd_problems(path) == []
    assert set(site_dirs(render(plan))) == {"frdf", "ukdf-lancs"}
    assert render(plan, "usdf") == {}

    # a single-site campaign moves nothing at all
    data["sites"] = {"usdf": data["sites"]["usdf"]}
    data["sites"]["usdf"]["share"] = 1.0
    data["sky"]["assignment"]["tracts"] = {"usdf": [9469, 9470]}
    data["datasets"] = []
    plan = plan_of(dump_yaml(data, tmp_path / "none.yaml"))
    assert render(plan) == {}


def test_render_one_site() -> None:
    plan = example_plan("3x2.yaml")
    files = render(plan, "frdf")
    assert files and all(rel.startswith("sites/frdf/ingestd/") for rel in files)
    assert files == {k: v for k, v in render(plan).items() if k.startswith("sites/frdf/")}


def test_transfers_arriving_without_ingestd_is_a_spec_problem(tmp_path: Path) -> None:
    for name in EXAMPLES:
        assert ingestd_problems(CAMPAIGNS / name) == []
    data = example_data("3x2.yaml")
    del data["sites"]["frdf"]["ingestd"]
    path = dump_yaml(data, tmp_path / "campaign.yaml")
    with pytest.raises(SpecError) as info:
        compile_campaign(path)  # an error, so nothing is rendered
    [diag] = [d for d in info.value.diagnostics if d.severity == "error"]
    assert diag.path == "sites.frdf" and "no 'ingestd' section" in diag.message
    assert "IN2P3_BUTLER_DISK-drp" in (diag.hint or "") and "IN2P3_RAW_DISK-drp" in (diag.hint or "")


def test_unpinned_image_is_rendered_with_a_warning(tmp_path: Path) -> None:
    data = example_data("3x2.yaml")
    data["sites"]["frdf"]["ingestd"]["image"] = "ghcr.io/lsst-dm/ctrl_ingestd:latest"
    data["sites"]["usdf"]["ingestd"]["image"] = "registry.example:5000/ctrl_ingestd"
    plan = plan_of(dump_yaml(data, tmp_path / "campaign.yaml"))
    files = render(plan)
    for site_id in ("frdf", "usdf"):
        text = files[f"sites/{site_id}/ingestd/deployment.yaml"].decode()
        assert "WARNING: image" in text
        [main] = load_doc(text.encode())["spec"]["template"]["spec"]["containers"]
        assert main["imagePullPolicy"] == "Always"
    pinned = files["sites/ukdf-lancs/ingestd/deployment.yaml"].decode()
    assert "WARNING" not in pinned and "IfNotPresent" in pinned


# -- (4) determinism -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", EXAMPLES)
def test_output_is_byte_identical_across_runs(name: str) -> None:
    first = render(example_plan(name))
    second = render(example_plan(name))
    assert first == second and list(first) == sorted(first)
    code = ("import hashlib, sys; from compiler.pipeline import compile_campaign; "
            "from compiler.render.ingestd import render; "
            f"files = render(compile_campaign({str(CAMPAIGNS / name)!r}, render=False).plan); "
            "print({k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items())})")
    digests = set()
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        digests.add(out.stdout)
    assert len(digests) == 1


# -- (5) secrets by name only ----------------------------------------------------------------------

def test_secret_is_referenced_by_name_only(example: Example) -> None:
    plan, files = example
    for site_id, dir_files in site_dirs(files).items():
        secret = plan.site(site_id).ingestd.butler_secret
        docs = [load_doc(dir_files[n]) for n in MANIFESTS]
        assert "Secret" not in {d["kind"] for d in docs}
        assert not any("stringData" in d for d in docs)
        assert [set(d.get("data", {})) for d in docs if "data" in d] == [{CONFIG_KEY}]
        dep = next(d for d in docs if d["kind"] == "Deployment")
        pod = dep["spec"]["template"]["spec"]
        secret_volumes = [v for v in pod["volumes"] if "secret" in v]
        assert [v["secret"] for v in secret_volumes] == [{"secretName": secret,
                                                          "defaultMode": 0o440}]
        for c in [*pod["containers"], *pod["initContainers"]]:
            assert all("valueFrom" not in e for e in c.get("env", []))
            assert "envFrom" not in c
            # only the init container sees the Secret itself
            sees_secret = any(m["name"] == secret_volumes[0]["name"] for m in c["volumeMounts"])
            assert sees_secret == (c in pod["initContainers"])
        # the spec holds no credentials, so none can leak: registry URIs carry no password
        text = b"".join(dir_files.values()).decode()
        assert "password" not in text.lower()


# -- the pieces that run inside the pod ------------------------------------------------------------

def _init_script(plan: Plan, site_id: str) -> str:
    dep = load_doc(render(plan, site_id)[f"sites/{site_id}/ingestd/deployment.yaml"])
    [init] = dep["spec"]["template"]["spec"]["initContainers"]
    assert init["command"][:2] == ["/bin/bash", "-c"]
    return init["command"][2]


def test_init_container_makes_credentials_daf_butler_accepts(tmp_path: Path) -> None:
    """Kubelet's Secret layout (..data symlinks, group-readable), copied to private 0600 files."""
    from lsst.utils.db_auth import DbAuth, DbAuthPermissionsError

    secret = tmp_path / "secret"
    data_dir = secret / "..2026_01_01_00_00_00.000000000"
    data_dir.mkdir(parents=True)
    auth = [{"url": "postgresql://usdf-butler.slac.stanford.edu:5432/drp", "username": "rubin",
             "password": "not-a-real-one"}]
    (data_dir / "db-auth.yaml").write_text(yaml.safe_dump(auth))
    (data_dir / "db-auth.yaml").chmod(0o440)
    (secret / "..data").symlink_to(data_dir.name)
    (secret / "db-auth.yaml").symlink_to("..data/db-auth.yaml")
    with pytest.raises(DbAuthPermissionsError):  # why the copy is needed
        DbAuth(path=str(secret / "db-auth.yaml"), envVar="DRPC_TEST_UNSET")
    home = tmp_path / "lsst"
    home.mkdir()
    script = _init_script(example_plan("3x2.yaml"), "frdf")
    script = script.replace(SECRET_DIR, str(secret)).replace(CREDENTIALS_DIR, str(home))
    subprocess.run(["/bin/bash", "-c", script], check=True, capture_output=True, text=True)
    assert sorted(p.name for p in home.iterdir()) == ["db-auth.yaml"]
    copied = home / "db-auth.yaml"
    assert not copied.is_symlink() and stat.S_IMODE(copied.stat().st_mode) == 0o600
    got = DbAuth(path=str(copied), envVar="DRPC_TEST_UNSET").getAuth(
        "postgresql", None, "usdf-butler.slac.stanford.edu", 5432, "drp")
    assert got == ("rubin", "not-a-real-one")

    empty = tmp_path / "empty"
    empty.mkdir()
    script = _init_script(example_plan("3x2.yaml"), "frdf").replace(SECRET_DIR, str(empty))
    result = subprocess.run(["/bin/bash", "-c", script.replace(CREDENTIALS_DIR, str(home))],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "has no keys" in result.stderr


def test_liveness_probe_tracks_the_ingestd_process() -> None:
    command = alive_command()
    before = subprocess.run(command, capture_output=True)
    if before.returncode == 0:
        pytest.skip("a process named like ctrl_ingestd's runs on this machine")
    # the command line run.sh gives ingestd: <python> /home/lsst/ctrl_ingestd/bin/ingestd
    fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", INGESTD_SCRIPT])
    try:
        # the child's /proc cmdline is the new one only once exec has happened: poll briefly
        deadline = time.monotonic() + 10
        while subprocess.run(command, capture_output=True).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert subprocess.run(command, capture_output=True).returncode == 0
    finally:
        fake.send_signal(signal.SIGKILL)
        fake.wait()
    assert subprocess.run(command, capture_output=True).returncode != 0


# -- the real ctrl_ingestd 2.1: Config, Message, Mapper, Entry -------------------------------------

def ctrl_ingestd_dir() -> Path:
    """CTRL_INGESTD_DIR (a ctrl_ingestd checkout's python/ folder), else the vendored 2.1."""
    where = os.environ.get("CTRL_INGESTD_DIR")
    path = Path(where) if where else shared("vendor", "ctrl_ingestd-2.1", "python")
    assert (path / "lsst" / "ctrl" / "ingestd" / "config.py").is_file(), path
    return path


def real_module(name: str) -> Any:
    """One module of ctrl_ingestd loaded by path, under a private name: config, message, mapper
    and entries.entry import only the standard library, PyYAML and pydantic (the rest needs
    lsst.obs.base, which is not on PyPI), and sys.path stays as it is."""
    path = ctrl_ingestd_dir() / "lsst" / "ctrl" / "ingestd" / f"{name.replace('.', '/')}.py"
    key = f"_drpc_test_ctrl_ingestd_{name.replace('.', '_')}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


class KafkaMessage:
    """What confluent-kafka hands ctrl_ingestd: Message() calls value()."""

    def __init__(self, event: dict[str, Any]) -> None:
        self._value = json.dumps(event).encode()

    def value(self) -> bytes:
        return self._value


def transfer_done(move: Any, rucio_prefix: str, name: str) -> dict[str, Any]:
    """The event Rubin's Hermes writes when a file of `move` arrived: dst-url is the file's PFN
    on the destination RSE, `<protocol prefix><scope>/<name>` (deterministic RSE, identity
    lfn2pfn), plus the rucio-register metadata."""
    prefix = rucio_prefix if rucio_prefix.endswith("/") else rucio_prefix + "/"
    return {"event_type": "transfer-done", "payload": {
        "scope": move.rucio_scope, "name": name, "dataset": move.rucio_name,
        "datasetScope": move.rucio_scope, "src-rse": move.source_rse,
        "dst-rse": move.destination_rse, "dst-url": f"{prefix}{move.rucio_scope}/{name}",
        "file-size": 7, "checksum-adler": "0a0b0c0d",
        "rubin_butler": "raw_file" if move.is_raw else "data_product", "rubin_sidecar": "{}"}}


def test_real_ctrl_ingestd_config_loads_every_generated_config(example: Example,
                                                               tmp_path: Path) -> None:
    config_module = real_module("config")
    plan, files = example
    for site_id, dir_files in site_dirs(files).items():
        text = load_doc(dir_files["configmap.yaml"])["data"][CONFIG_KEY]
        path = tmp_path / f"{site_id}.yaml"
        path.write_text(text)
        cfg = config_module.Config.load(str(path))  # what IngestD() does with CTRL_INGESTD_CONFIG
        want = ingestd_config(plan, site_id)
        assert cfg.brokers == want["brokers"] and cfg.group_id == want["group_id"]
        assert cfg.butler_repo == plan.site(site_id).butler_repo
        assert cfg.topics_as_list == list(want["topics"])  # what it subscribes to
        for topic, prefixes in want["topics"].items():
            assert cfg.topics[topic].rucio_prefix == prefixes["rucio_prefix"]
            assert cfg.topics[topic].fs_prefix == prefixes["fs_prefix"]
    # and it is the real, strict one: no topics is refused
    empty = tmp_path / "empty.yaml"
    empty.write_text(yaml.safe_dump({**want, "topics": {}}))
    with pytest.raises(RuntimeError, match="topics"):
        config_module.Config.load(str(empty))


def test_real_ctrl_ingestd_maps_each_moves_events_to_its_local_file(example: Example,
                                                                    tmp_path: Path) -> None:
    config_module, message_module = real_module("config"), real_module("message")
    mapper_module, entry_module = real_module("mapper"), real_module("entries.entry")
    plan, files = example
    checked = 0
    for site_id, dir_files in site_dirs(files).items():
        site = plan.site(site_id)
        path = tmp_path / f"{site_id}.yaml"
        path.write_text(load_doc(dir_files["configmap.yaml"])["data"][CONFIG_KEY])
        cfg = config_module.Config.load(str(path))
        mapper = mapper_module.Mapper(cfg.topics)
        assert site.ingestd is not None
        mounts = [v.mount_path for v in site.ingestd.volumes]
        for move in plan.incoming(site_id):
            name = (f"{move.dataset_type}/20250101T000000Z/{move.dataset_type}_1234_r_HSC.fits"
                    if not move.is_raw else "raw/HSC/1234/raw_HSC_1234_42.fits")
            prefix = site.raw_rucio_prefix if move.is_raw else site.rucio_prefix
            message = message_module.Message(KafkaMessage(transfer_done(move, prefix, name)))
            entry = entry_module.Entry(None, message, mapper)  # what every DataFile runs first
            fs_prefix = site.raw_fs_prefix if move.is_raw else site.fs_prefix
            expected = f"{fs_prefix.rstrip('/')}/{move.rucio_scope}/{name}"
            assert entry.file_to_ingest == expected, move.id
            local = local_path(entry.file_to_ingest)
            assert local is not None
            if not move.is_raw:  # ingested in place: inside the datastore root
                assert local == f"{site.datastore_root.rstrip('/')}/{name}", move.id
            assert any(local.startswith(m.rstrip("/") + "/") for m in mounts), (move.id, mounts)
            checked += 1
    assert checked == len(plan.moves)
    # an event for an RSE and scope the site does not listen to is not mapped
    stray = transfer_done(plan.moves[0], "davs://elsewhere:443/x/", "a/b.fits")
    stray["payload"]["dst-rse"] = "NOWHERE_DISK"
    with pytest.raises(Exception, match="couldn't find"):
        entry_module.Entry(None, message_module.Message(KafkaMessage(stray)), mapper)


# -- volumes ---------------------------------------------------------------------------------------

def volumes_campaign(tmp_path: Path, volumes: dict[str, list[dict[str, Any]]],
                     **changes: Any) -> Plan:
    data = example_data("3x2.yaml")
    for site_id, vols in volumes.items():
        data["sites"][site_id]["ingestd"]["volumes"] = vols
    for key, value in changes.items():
        site_id, _, field = key.partition("__")
        section, _, name = field.partition("__")
        data["sites"][site_id][section][name] = value
    return plan_of(dump_yaml(data, tmp_path / f"c{len(list(tmp_path.iterdir()))}.yaml"))


def test_volumes_are_mounted_as_the_spec_says(tmp_path: Path) -> None:
    plan = volumes_campaign(tmp_path, {"frdf": [
        {"name": "repo", "mount_path": "/sps/lsst/groups/rubin/repo/drp",
         "claim": "sps-repo", "read_only": True},
        {"name": "rse", "mount_path": "/sps/lsst/rucio", "host_path": "/sps/lsst/rucio"}]})
    files = render(plan, "frdf")
    dep = load_doc(files["sites/frdf/ingestd/deployment.yaml"])
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(dep, version, strict=True)
    pod = dep["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["repo"] == {"name": "repo", "persistentVolumeClaim": {
        "claimName": "sps-repo", "readOnly": True}}
    assert volumes["rse"] == {"name": "rse", "hostPath": {"path": "/sps/lsst/rucio",
                                                          "type": "Directory"}}
    [main] = pod["containers"]
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    assert mounts["repo"] == {"name": "repo", "mountPath": "/sps/lsst/groups/rubin/repo/drp",
                              "readOnly": True}
    assert mounts["rse"] == {"name": "rse", "mountPath": "/sps/lsst/rucio", "readOnly": False}
    [init] = pod["initContainers"]
    assert {m["name"] for m in init["volumeMounts"]} == {"butler-credentials", "butler-secret"}
    text = files["sites/frdf/ingestd/deployment.yaml"].decode()
    assert "Pod Security level is `privileged`" in text  # a hostPath volume is there
    kustomization = files["sites/frdf/ingestd/kustomization.yaml"].decode()
    assert "rse: host path /sps/lsst/rucio of the node at /sps/lsst/rucio" in kustomization
    for topic in ingestd_config(plan, "frdf")["topics"]:
        assert f"#   {topic}: files landing on " in kustomization
    assert ingestd_mount_problems(plan) == []

    # no volume at all: the pod sees nothing, and says so
    bare = volumes_campaign(tmp_path, {"frdf": []})
    dep = load_doc(render(bare, "frdf")["sites/frdf/ingestd/deployment.yaml"])
    assert {v["name"] for v in dep["spec"]["template"]["spec"]["volumes"]} == {
        "butler-credentials", "butler-secret", "config", "tmp"}


@pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl not installed")
def test_kubectl_kustomize_keeps_the_volumes(tmp_path: Path) -> None:
    plan = example_plan("3x2.yaml")
    write_tree(render(plan), tmp_path)
    for site_id in site_dirs(render(plan)):
        out = subprocess.run([KUBECTL, "kustomize", str(tmp_path / "sites" / site_id / "ingestd")],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        [dep] = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment"]
        pod = dep["spec"]["template"]["spec"]
        spec_ingestd = plan.site(site_id).ingestd
        assert spec_ingestd is not None and spec_ingestd.volumes
        spec_volumes = spec_ingestd.volumes
        by_name = {v["name"]: v for v in pod["volumes"]}
        [main] = pod["containers"]
        mounted = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
        for v in spec_volumes:
            assert mounted[v.name] == v.mount_path
            assert ("persistentVolumeClaim" if v.claim else "hostPath") in by_name[v.name]


def test_mount_problems_name_what_the_pod_cannot_see(tmp_path: Path) -> None:
    for name in EXAMPLES:
        assert ingestd_mount_problems(example_plan(name)) == []
    plan = volumes_campaign(tmp_path, {"frdf": []})
    problems = [m for s, m in ingestd_mount_problems(plan) if s == "frdf"]
    assert len(problems) == 4 and all("cannot see" in m for m in problems), problems
    assert any("the Butler repository, /sps/lsst/groups/rubin/repo/drp" in m for m in problems)
    assert any("the RSE root of IN2P3_BUTLER_DISK" in m and "/sps/lsst/rucio/" in m
               for m in problems)
    assert any("the RSE root of IN2P3_RAW_DISK" in m for m in problems)
    assert all("mounted: none" in m and "sites.frdf.ingestd.volumes" in m for m in problems)
    assert {s for s, _ in ingestd_mount_problems(plan)} == {"frdf"}

    # the repository mounted, the RSE root not: only the RSE root (and the datastore in it)
    repo_only = volumes_campaign(tmp_path, {"frdf": [
        {"name": "repo", "mount_path": "/sps/lsst/groups/rubin/repo/drp",
         "host_path": "/sps/lsst/groups/rubin/repo/drp", "read_only": True}]})
    problems = [m for _, m in ingestd_mount_problems(repo_only)]
    assert problems and not any("Butler repository" in m for m in problems)
    assert all("mounted: /sps/lsst/groups/rubin/repo/drp" in m for m in problems)

    # a repository reached over the network needs no mount; a prefix as deep as a mount is fine
    remote = volumes_campaign(tmp_path, {"frdf": [
        {"name": "rse", "mount_path": "/sps/lsst/rucio/", "claim": "rse"}]},
        frdf__butler__repo="s3://rubin-frdf/repo/drp")
    assert ingestd_mount_problems(remote) == []

    # a SQLite registry lives in the repository, which ingest writes: not read-only
    sqlite = volumes_campaign(tmp_path, {"frdf": [
        {"name": "repo", "mount_path": "/sps", "claim": "sps", "read_only": True}]},
        frdf__butler__registry=None)
    [problem] = [m for _, m in ingestd_mount_problems(sqlite)]
    assert "cannot write the Butler repository" in problem and "volume repo is read_only" in problem

    # volumes the Deployment cannot hold: errors, at the volume
    data = example_data("3x2.yaml")
    data["sites"]["frdf"]["ingestd"]["volumes"] = [
        {"name": "sps", "mount_path": "/sps", "claim": "sps", "host_path": "/sps"},
        {"name": "tmp", "mount_path": "/scratch", "claim": "scratch"},
        {"name": "sps", "mount_path": "/data", "claim": "data"},
        {"name": "home", "mount_path": "/home", "host_path": "/home"},
        {"name": "cfg", "mount_path": "/etc/ctrl_ingestd/extra", "claim": "cfg"}]
    with pytest.raises(SpecError) as info:
        compile_campaign(dump_yaml(data, tmp_path / "bad.yaml"), render=False)
    problems = [d.message for d in info.value.diagnostics if d.severity == "error"]
    paths = {d.path for d in info.value.diagnostics if d.severity == "error"}
    assert paths == {f"sites.frdf.ingestd.volumes[{i}]" for i in range(5)}
    assert "ingestd volume sps: give exactly one of claim, host_path" in problems
    assert "ingestd volume tmp: the name is already used by the pod itself" in problems
    assert "ingestd volume sps: the name is already used by another volume" in problems
    assert any(m.startswith("ingestd volume home: mount_path /home would hide /home/lsst")
               for m in problems)
    assert any(m.startswith("ingestd volume cfg: mount_path /etc/ctrl_ingestd/extra collides")
               for m in problems)
    # and at a site that receives nothing too: the spec is wrong wherever it stands
    assert [m for s, _, m in ingestd_volume_errors(plan_of(CAMPAIGNS / "3x2.yaml"))] == []
