"""Inline builders for test campaigns (copier-style: write the input next to the test)."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from compiler.loader import load_campaign
from compiler.pipeline import Compiled, compile_campaign

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGNS = ROOT / "campaigns"
SHARED = ROOT.parent / "shared"


def shared(*parts: str) -> Path:
    """A file of ../shared (vendored real tool files); a clear failure when it is missing."""
    import pytest

    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: these tests need the project's shared/ folder beside the "
                    f"checkout ({SHARED}), with spec/, reference/ and vendor/", pytrace=False)
    return path

# A small valid campaign whose line numbers the validation tests rely on: edit with care.
MINIMAL = """\
apiVersion: drpc/v1
kind: Campaign
metadata:
  name: mini
campaign:
  instrument: HSC
  skymap: hsc_rings_v1
  stack: w_2025_30
  pipeline: ${DRP_PIPE_DIR}/pipelines/HSC/DRP-RC2.yaml
  central_site: usdf
  input_collections: [HSC/defaults]
  output_collection: HSC/runs/mini
sites:
  usdf:
    facility: USDF
    panda_site: SLAC
    cloud: US
    cores: 100
    gb_per_core: 4
    storage_tb: 100
    share: 0.5
    butler: {repo: /repo/usdf}
    rucio: {rse: SLAC_BUTLER_DISK, raw_rse: SLAC_RAW_DISK, rucio_prefix: 'davs://slac:1094/rubin/', fs_prefix: 'file:///data/usdf/'}
    ingestd: {namespace: ingestd, image: 'ghcr.io/lsst-dm/ctrl_ingestd:v1.10.0', kafka_brokers: ['kafka:9092'], butler_secret: butler-credentials, volumes: [{name: repo, mount_path: /repo, host_path: /repo}, {name: data, mount_path: /data, host_path: /data}]}
  frdf:
    facility: FRDF
    panda_site: CC-IN2P3
    cloud: EU
    cores: 100
    gb_per_core: 4
    storage_tb: 100
    share: 0.5
    butler: {repo: /repo/frdf}
    rucio: {rse: IN2P3_BUTLER_DISK, raw_rse: IN2P3_RAW_DISK, rucio_prefix: 'davs://in2p3:1094/rubin/', fs_prefix: 'file:///data/frdf/'}
    ingestd: {namespace: ingestd, image: 'ghcr.io/lsst-dm/ctrl_ingestd:v1.10.0', kafka_brokers: ['kafka:9092'], butler_secret: butler-credentials, volumes: [{name: repo, mount_path: /repo, host_path: /repo}, {name: data, mount_path: /data, host_path: /data}]}
sky:
  assignment:
    tracts:
      usdf: [9469, 9470]
      frdf: [9948, 9949]
stages:
  - {name: step1, subset: step1, runs_at: every-site}
  - {name: fgcm, subset: fgcm, runs_at: central}
  - {name: step3, subset: step3, runs_at: every-site}
datasets:
  - {type: preliminary_visit_summary, dimensions: [instrument, visit], produced_by: step1, consumed_by: [fgcm]}
  - {type: fgcm_photoCalibCatalog, dimensions: [instrument, visit], produced_by: fgcm, consumed_by: [step3], storage_class: ExposureCatalog}
  - {type: objectTable_tract, dimensions: [skymap, tract], produced_by: step3, archive: true}
"""


def write(tmp_path: Path, text: str, name: str = "campaign.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def dump_yaml(data: Any, path: Path) -> Path:
    y = YAML(typ="safe")
    y.default_flow_style = False
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        y.dump(data, fh)
    return path


def bring_site_files(tmp: Path) -> None:
    """Copy campaigns/sites/ into `tmp`, so a copy of an example there keeps its includes
    (includes stay inside the campaign's folder)."""
    import shutil

    shutil.copytree(CAMPAIGNS / "sites", tmp / "sites", dirs_exist_ok=True)


def example_data(name: str) -> dict[str, Any]:
    """The merged document of an example campaign, as plain data to modify in a test."""
    return copy.deepcopy(load_campaign(CAMPAIGNS / name).data)


def compile_data(tmp_path: Path, data: dict[str, Any], *, render: bool = False) -> Compiled:
    return compile_campaign(dump_yaml(data, tmp_path / "campaign.yaml"), render=render)


def replace_line(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def cut_inputs_for_rehearsal(doc: Any) -> None:
    """A campaign document's inputs cut to one calibration type (certified) and one refcat (a
    chain), no ancillary: with the inputs' manifest, three moves per destination instead of
    ~17, so an end-to-end rehearsal stays within minutes (tests/test_inputs.py covers every
    type)."""
    doc["inputs"]["calibrations"]["types"] = ["bias"]
    doc["inputs"]["refcats"][0]["types"] = doc["inputs"]["refcats"][0]["types"][:1]
    doc["inputs"].pop("ancillary", None)
