"""`sites/<site>/butler/setup-repo.sh`, run for real with the real `butler` CLI into SQLite repos.

The stack-only steps (register-instrument with an obs_* class, write-curated-calibrations,
register-skymap) are skipped with SKIP_STEPS and stood in for, as the local rehearsal does; their
exact command lines are checked under DRY_RUN=1, and the skymap config the script writes is
loaded by pex_config into a replica of pipe_tasks' MakeGen3SkyMapConfig and lsst.skymap's
config classes, which rejects any field name they do not have.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler.pipeline import compile_campaign
from compiler.plan import Plan
from compiler.render import butler as butler_render
from compiler.render import inputs as inputs_render
from tests.helpers import bring_site_files

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGNS = ROOT / "campaigns"
BIN = Path(sys.executable).parent
BUTLER = shutil.which("butler", path=str(BIN))
SHELLCHECK = shutil.which("shellcheck", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
STACK_STEPS = "instrument calibrations skymap"
OUT = "HSC/runs/drp-3x2/DM-48353"

pytestmark = pytest.mark.skipif(BUTLER is None, reason=f"no butler CLI beside {sys.executable}")


# -- helpers ----------------------------------------------------------------------------------------

def campaign_copy(tmp: Path, edit: Any) -> Path:
    """campaigns/3x2.yaml copied into tmp with its site files, then changed by `edit(doc)`."""
    yaml = YAML()
    doc = yaml.load((CAMPAIGNS / "3x2.yaml").read_text())
    bring_site_files(tmp)
    edit(doc)
    path = tmp / "campaign.yaml"
    with path.open("w") as f:
        yaml.dump(doc, f)
    return path


def plan_of(path: Path) -> Plan:
    return compile_campaign(path, render=False).plan


def write_script(plan: Plan, site: str, dest: Path) -> Path:
    files = butler_render.render(plan, site)
    assert list(files) == [f"sites/{site}/butler/setup-repo.sh"]
    dest.mkdir(parents=True, exist_ok=True)
    script = dest / "setup-repo.sh"
    script.write_bytes(files[f"sites/{site}/butler/setup-repo.sh"])
    script.chmod(0o755)
    return script


def run_script(script: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    tmpdir = cwd / "scratch"
    tmpdir.mkdir(exist_ok=True)
    full = {k: v for k, v in os.environ.items() if k not in ("DRY_RUN", "SKIP_STEPS") and not k.startswith("BUTLER_")}
    full.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", TMPDIR=str(tmpdir), **env)
    proc = subprocess.run(["bash", str(script)], cwd=cwd, env=full, capture_output=True, text=True, timeout=300)
    assert not list(tmpdir.iterdir()), "the script left its scratch directory behind"
    return proc


def make_refcat_export(tmp: Path) -> tuple[Path, Path]:
    """A real `butler export` of one dataset (a StructuredDataDict on htm7) with its file."""
    from lsst.daf.butler import Butler, DatasetType

    src = tmp / "refcat-source"
    Butler.makeRepo(str(src))
    butler = Butler.from_config(str(src), writeable=True, run="refcats/gaia_test")
    dataset_type = DatasetType("gaia_test", ["htm7"], "StructuredDataDict", universe=butler.dimensions)
    butler.registry.registerDatasetType(dataset_type)
    ref = butler.put({"stars": [1, 2, 3]}, dataset_type, htm7=131072)
    export_dir = tmp / "refcat-export"
    export_dir.mkdir()
    with butler.export(filename=str(export_dir / "export.yaml"), directory=str(export_dir),
                       transfer="copy") as export:
        export.saveDatasets([ref])
    return export_dir, export_dir / "export.yaml"


def sqlite_digest(repo: Path) -> str:
    return hashlib.sha256((repo / "gen3.sqlite3").read_bytes()).hexdigest()


# -- (1) + (2): a real run, then a second one that changes nothing ------------------------------------

@pytest.fixture(scope="module")
def real_repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("butler-setup")
    export_dir, export_file = make_refcat_export(tmp)

    def edit(doc: Any) -> None:
        doc["butler"] = {"refcats": [{"name": "gaia_test", "collection": "refcats/gaia_test",
                                      "export_file": str(export_file), "directory": str(export_dir),
                                      "transfer": "copy"}]}
        doc.pop("inputs", None)
    plan = plan_of(campaign_copy(tmp, edit))
    script = write_script(plan, "usdf", tmp / "out")
    repo, store = tmp / "repo", tmp / "store"
    env = {"BUTLER_REPO": str(repo), "BUTLER_REGISTRY": "", "BUTLER_DATASTORE_ROOT": str(store)}

    first = run_script(script, tmp, **env, SKIP_STEPS=f"{STACK_STEPS} summary")
    assert first.returncode == 0, first.stderr
    # The rehearsal stands in for the skipped stack steps: the calibration and skymap collections.
    from lsst.daf.butler import Butler, CollectionType
    stand_in = Butler.from_config(str(repo), writeable=True)
    stand_in.collections.register("HSC/calib", CollectionType.CALIBRATION)
    stand_in.collections.register("skymaps", CollectionType.RUN)
    second = run_script(script, tmp, **env, SKIP_STEPS=f"{STACK_STEPS} summary")
    assert second.returncode == 0, second.stderr
    # The defaults chain is inputs.py's, once everything it chains exists.
    inputs = tmp / "out" / "inputs.py"
    inputs.write_bytes(inputs_render.render_inputs(plan, plan.site("usdf")))
    chained = subprocess.run([sys.executable, str(inputs)], env={**os.environ, "BUTLER_REPO": str(repo)},
                             capture_output=True, text=True, timeout=300)
    assert chained.returncode == 0, chained.stderr
    return {"tmp": tmp, "plan": plan, "script": script, "repo": repo, "store": store, "env": env,
            "first": first, "second": second, "chained": chained}


def test_real_run_creates_types_collections_and_chains(real_repo: dict[str, Any]) -> None:
    from lsst.daf.butler import Butler, CollectionType

    first, second = real_repo["first"], real_repo["second"]
    assert "==> instrument: skipped (SKIP_STEPS)" in first.stderr
    assert "defaults chain" not in first.stderr + second.stderr
    assert "create the defaults chain HSC/defaults over" in real_repo["chained"].stdout

    butler = Butler.from_config(str(real_repo["repo"]))
    # Seed config honoured: the imported refcat file was copied under BUTLER_DATASTORE_ROOT.
    assert [p.name for p in real_repo["store"].rglob("*.yaml")], "nothing in the datastore root"
    assert butler.get_dataset_type("gaia_test").storageClass_name == "StructuredDataDict"
    assert len(butler.query_datasets("gaia_test", collections="refcats/gaia_test")) == 1

    plan: Plan = real_repo["plan"]
    moving = {t.dataset_type: t for t in plan.transfers if "usdf" in (t.source, t.destination)}
    assert set(moving) >= {"isolated_star_presources", "isolated_star_presource_associations",
                           "visitSummary", "fgcmPhotoCalibCatalog", "objectTable_tract"}
    for name, t in moving.items():
        dataset_type = butler.get_dataset_type(name)
        assert dataset_type.storageClass_name == t.storage_class
        assert set(t.dimensions) <= set(dataset_type.dimensions.names)
        assert set(dataset_type.dimensions.required) <= set(t.dimensions)

    def info(name: str) -> Any:
        return butler.collections.get_info(name)

    for name in (f"{OUT}/incoming/step2c", f"{OUT}/incoming/archive"):
        assert info(name).type == CollectionType.CHAINED and info(name).children == ()
    assert info("HSC/raw/all").type == CollectionType.RUN
    assert info("refcats/gaia_test").type == CollectionType.RUN
    defaults = info("HSC/defaults")
    assert defaults.type == CollectionType.CHAINED
    assert defaults.children == ("HSC/calib", "refcats/gaia_test", "skymaps")  # raws: selections
    # Stage outputs are BPS's to create (pipetask checks an existing output chain's inputs).
    assert not butler.collections.query(f"{OUT}/step*")


def test_second_run_changes_nothing_and_says_so(real_repo: dict[str, Any]) -> None:
    repo = real_repo["repo"]
    before = sqlite_digest(repo)
    proc = run_script(real_repo["script"], real_repo["tmp"], **real_repo["env"], SKIP_STEPS=STACK_STEPS)
    assert proc.returncode == 0, proc.stderr
    assert sqlite_digest(repo) == before
    err = proc.stderr
    for item in ("repository", "refcat gaia_test (collection refcats/gaia_test)",
                 "dataset type isolated_star_presources", "dataset type isolated_star_presource_associations",
                 "dataset type visitSummary", "dataset type fgcmPhotoCalibCatalog",
                 "dataset type objectTable_tract", "RUN collection HSC/raw/all",
                 f"CHAINED collection {OUT}/incoming/step2c", f"CHAINED collection {OUT}/incoming/archive"):
        assert re.search(rf"^  {re.escape(item)}.*: already exists, skipping$", err, re.M), item
    for stack_step in STACK_STEPS.split():
        assert f"==> {stack_step}: skipped (SKIP_STEPS)" in err
    assert "nothing to do: everything already exists" in err
    assert "python -" not in proc.stdout  # nothing left to create, so no writer ran
    # The summary ran against the repository.
    assert "HSC/defaults" in proc.stdout and "objectTable_tract" in proc.stdout
    # (one Python for both listings: each collection with its type, a chain's children below
    # it, indented; each dataset type with its storage class and dimensions)
    assert re.search(r"^ +HSC/defaults  CHAINED$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^  objectTable_tract  ArrowAstropy  skymap, tract$", proc.stdout, re.M)
    assert "butler query-" not in proc.stdout + proc.stderr


def test_a_failing_step_is_named(real_repo: dict[str, Any]) -> None:
    """Without the stack, register-instrument cannot import obs_subaru: the failure names the step."""
    repo = real_repo["repo"]
    before = sqlite_digest(repo)
    proc = run_script(real_repo["script"], real_repo["tmp"], **real_repo["env"], SKIP_STEPS="")
    assert proc.returncode != 0
    assert 'setup-repo.sh: FAILED at step "instrument"' in proc.stderr
    assert sqlite_digest(repo) == before


# -- (3) DRY_RUN: the exact stack commands, and nothing created ---------------------------------------

def test_dry_run_prints_exact_stack_commands(tmp_path: Path) -> None:
    def edit(doc: Any) -> None:
        doc["butler"] = {"refcats": [{"name": "gaia_test", "collection": "refcats/gaia_test",
                                      "export_file": "/data/refcats/gaia/export.yaml",
                                      "directory": "/data/refcats/gaia", "transfer": "copy"}],
                         "calibrations": {"label": "DM-48353"}}
    plan = plan_of(campaign_copy(tmp_path, edit))
    script = write_script(plan, "frdf", tmp_path / "out")
    repo = tmp_path / "fresh" / "repo"
    proc = run_script(script, tmp_path, BUTLER_REPO=str(repo), DRY_RUN="1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"butler register-instrument {repo} lsst.obs.subaru.HyperSuprimeCam" in lines
    assert f"butler write-curated-calibrations {repo} HSC --collection HSC/calib --label DM-48353" in lines
    assert (f"butler import {repo} /data/refcats/gaia --export-file /data/refcats/gaia/export.yaml"
            " --transfer copy") in lines
    skymap = [line for line in lines if line.startswith("butler register-skymap ")]
    assert len(skymap) == 1
    match = re.fullmatch(rf"butler register-skymap {re.escape(str(repo))} -C (\S+)/skymap-hsc_rings_v1\.py"
                         r" -c name=hsc_rings_v1", skymap[0])
    assert match and match.group(1).startswith(str(tmp_path / "scratch"))
    # The seed config names the spec's registry and datastore root (the spec's values are defaults).
    site = plan.site("frdf")
    create = next(line for line in lines if line.startswith("butler create "))
    assert create.startswith("butler create --seed-config ") and create.endswith(f" --override {repo}")
    assert f"  db: '{site.butler_registry}'" in lines and f"  root: '{site.datastore_root}'" in lines
    writer = next(line for line in lines if line.startswith(f"python - {repo} ") and "|" in line)
    assert "fgcmPhotoCalibCatalog|ExposureCatalog|0|instrument,visit" in shlex.split(writer)
    # no raws in the defaults chain: 3x2 selects whole visits through the TAGGED selection
    assert any(line.startswith(f"python - {repo} RUN=HSC/raw/all CHAINED={OUT}/incoming/step2d ")
               for line in lines)
    assert not any("DEFAULTS=" in line for line in lines)  # inputs.py makes the defaults chain
    assert not (tmp_path / "fresh").exists()


def test_skymap_config_loads_into_the_skymap_config_classes(tmp_path: Path) -> None:
    """The written config, applied exactly as `butler register-skymap -C` does (config.load)."""
    pex = pytest.importorskip("lsst.pex.config")
    from compiler.skymap import BUILTIN_SKYMAPS

    # Replicas of lsst.skymap's configs (tractBuilder.py, baseSkyMap.py, ringsSkyMap.py) and
    # pipe_tasks' makeGen3SkyMap.MakeGen3SkyMapConfig: same field names, types and defaults.
    class LegacyTractBuilderConfig(pex.Config):
        patchInnerDimensions = pex.ListField(doc="-", dtype=int, length=2, default=(4000, 4000))
        patchBorder = pex.Field(doc="-", dtype=int, default=100)

    class CellTractBuilderConfig(pex.Config):
        cellInnerDimensions = pex.ListField(doc="-", dtype=int, length=2, default=(150, 150))
        cellBorder = pex.Field(doc="-", dtype=int, default=50)
        numCellsPerPatchInner = pex.Field(doc="-", dtype=int, default=20)
        numCellsInPatchBorder = pex.Field(doc="-", dtype=int, default=1)

    tract_builders = pex.makeRegistry(doc="tract builders")
    tract_builders.register("legacy", type("LegacyTractBuilder", (), {"ConfigClass": LegacyTractBuilderConfig}))
    tract_builders.register("cells", type("CellTractBuilder", (), {"ConfigClass": CellTractBuilderConfig}))

    class BaseSkyMapConfig(pex.Config):
        tractBuilder = tract_builders.makeField(doc="-", default="legacy")
        tractOverlap = pex.Field(doc="-", dtype=float, default=1.0)
        pixelScale = pex.Field(doc="-", dtype=float, default=0.333)
        projection = pex.Field(doc="-", dtype=str, default="STG")
        rotation = pex.Field(doc="-", dtype=float, default=0)

    class RingsSkyMapConfig(BaseSkyMapConfig):
        numRings = pex.Field(doc="-", dtype=int, check=lambda x: x > 0)
        raStart = pex.Field(doc="-", dtype=float, default=0.0, check=lambda x: 0.0 <= x < 360.0)

    skymaps = pex.makeRegistry(doc="skymaps")
    skymaps.register("rings", type("RingsSkyMap", (), {"ConfigClass": RingsSkyMapConfig}))
    skymaps.register("dodeca", type("DodecaSkyMap", (), {"ConfigClass": BaseSkyMapConfig}))

    class MakeGen3SkyMapConfig(pex.Config):
        datasetTypeName = pex.Field(doc="-", dtype=str, default="deepCoadd_skyMap")
        name = pex.Field(doc="-", dtype=str, default=None, optional=True)
        skyMap = skymaps.makeField(doc="-", default="dodeca")

    expected = {"hsc_rings_v1": ("legacy", {"patchInnerDimensions": [4000, 4000], "patchBorder": 100}),
                "lsst_cells_v1": ("cells", {"cellInnerDimensions": [150, 150], "numCellsPerPatchInner": 20})}
    for name in ("3x2.yaml", "dr1.yaml"):
        plan = plan_of(CAMPAIGNS / name)
        path = tmp_path / f"{plan.skymap.name}.py"
        path.write_text(butler_render.skymap_config(plan))
        config = MakeGen3SkyMapConfig()
        config.load(str(path))
        config.validate()
        rings = config.skyMap["rings"]
        builtin = BUILTIN_SKYMAPS[plan.skymap.name]
        assert config.name == plan.skymap.name and config.skyMap.name == "rings"
        assert rings.numRings == builtin.num_rings and rings.raStart == builtin.ra_start_deg
        assert rings.tractOverlap == 1.0 / 60 and rings.pixelScale == builtin.pixel_scale_arcsec
        assert rings.projection == "TAN" and rings.rotation == 0
        builder, fields = expected[plan.skymap.name]
        assert rings.tractBuilder.name == builder
        active = rings.tractBuilder[builder]
        for key, value in fields.items():
            got = getattr(active, key)
            assert (list(got) if isinstance(value, list) else got) == value, key


# -- (4) shellcheck -----------------------------------------------------------------------------------

def test_every_script_passes_shellcheck(tmp_path: Path) -> None:
    if SHELLCHECK is None:
        pytest.skip("shellcheck not installed")
    scripts = []
    for name in ("3x2.yaml", "dr1.yaml"):
        plan = plan_of(CAMPAIGNS / name)
        files = butler_render.render(plan)
        assert sorted(files) == sorted(f"sites/{s.id}/butler/setup-repo.sh" for s in plan.sites)
        for rel, content in files.items():
            path = tmp_path / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            scripts.append(str(path))
            text = content.decode()
            assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
            assert "generated - do not edit" in text
    proc = subprocess.run([SHELLCHECK, "-S", "style", *scripts], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout


# -- (5) a spec value with shell metacharacters never runs a command ------------------------------------

EVIL = "$(touch${IFS}pwned1);touch${IFS}pwned2&touch${IFS}pwned3|tee${IFS}pwned4>pwned5"
MARKERS = ("pwned1", "pwned2", "pwned3", "pwned4", "pwned5")


def test_metacharacters_in_spec_values_stay_literal(tmp_path: Path) -> None:
    repo = f"{tmp_path}/repo{EVIL}"
    store = f"{tmp_path}/store{EVIL}"
    refcat_dir = f"{tmp_path}/refcats{EVIL}\\x"

    def edit(doc: Any) -> None:
        # the repo goes into BPS files too, where validation refuses `$` and shell syntax: it
        # is forged into the plan below, to test the script's quoting past validation
        doc["sites"]["usdf"]["butler"] = {"repo": f"{tmp_path}/repo", "datastore_root": store}
        doc["butler"] = {"refcats": [{"name": "gaia_test", "collection": "refcats/gaia_test",
                                      "export_file": f"{refcat_dir}/export.yaml", "directory": refcat_dir}],
                         "skymap_config": f"{tmp_path}/skymap{EVIL}.py"}
        doc["datasets"] = [d for d in doc["datasets"] if d["type"] == "objectTable_tract"]
    plan = plan_of(campaign_copy(tmp_path, edit))
    plan = dataclasses.replace(plan, sites=tuple(
        dataclasses.replace(site, butler_repo=repo) if site.id == "usdf" else site
        for site in plan.sites))
    assert plan.site("usdf").butler_repo == repo
    script = write_script(plan, "usdf", tmp_path / "out")

    dry = run_script(script, tmp_path, DRY_RUN="1", BUTLER_REGISTRY="")
    assert dry.returncode == 0, dry.stderr
    assert not [m for m in MARKERS if (tmp_path / m).exists()]
    commands = [shlex.split(line) for line in dry.stdout.splitlines() if line.startswith("butler ")]
    assert ["butler", "import", repo, refcat_dir, "--export-file", f"{refcat_dir}/export.yaml",
            "--transfer", "direct"] in commands
    assert ["butler", "register-skymap", repo, "-C", f"{tmp_path}/skymap{EVIL}.py",
            "-c", "name=hsc_rings_v1"] in commands
    assert not Path(repo).exists()

    real = run_script(script, tmp_path, BUTLER_REGISTRY="", SKIP_STEPS=f"{STACK_STEPS} inputs summary")
    assert real.returncode == 0, real.stderr
    assert not [m for m in MARKERS if (tmp_path / m).exists()]
    assert (Path(repo) / "butler.yaml").is_file()  # created at exactly the spec's path
    assert f"root: {store}" in (Path(repo) / "butler.yaml").read_text()
    from lsst.daf.butler import Butler
    assert Butler.from_config(repo).get_dataset_type("objectTable_tract").storageClass_name == "ArrowAstropy"


# -- (4) a PostgreSQL registry: credentials, btree_gist, the namespace -------------------------------

def test_a_postgresql_registry_is_checked_then_created_in_its_namespace(tmp_path: Path) -> None:
    """Against a real PostgreSQL: no db-auth, a db-auth readable by others, no btree_gist each
    stop with a clear message before `butler create`; then the repository is made with its
    tables in the campaign's schema."""
    from drpc_rehearsal.postgres import PostgresCluster

    plan = plan_of(campaign_copy(tmp_path, lambda doc: doc.pop("inputs", None)))
    script = write_script(plan, "usdf", tmp_path / "out")
    assert plan.site("usdf").butler_namespace == "drp"  # the repository's name
    home = tmp_path / "home"
    (home / ".lsst").mkdir(parents=True)
    with PostgresCluster(database="butler", user="butler", password="secret-pw") as pg:
        url = f"postgresql://butler@127.0.0.1:{pg.port}/butler"
        env = {"BUTLER_REPO": str(tmp_path / "repo"), "BUTLER_REGISTRY": url,
               "BUTLER_DATASTORE_ROOT": str(tmp_path / "store"), "HOME": str(home),
               "SKIP_STEPS": f"{STACK_STEPS} summary"}

        def setup() -> subprocess.CompletedProcess[str]:
            return run_script(script, tmp_path, **env)

        no_auth = setup()
        assert no_auth.returncode == 1
        assert f"no credentials for {url}: write them to {home}/.lsst/db-auth.yaml" in no_auth.stderr
        auth = home / ".lsst" / "db-auth.yaml"
        auth.write_text(f"- url: {url}\n  username: butler\n  password: secret-pw\n")
        auth.chmod(0o644)
        loose = setup()
        assert loose.returncode == 1 and "has mode 644" in loose.stderr, loose.stderr
        auth.chmod(0o600)
        no_gist = setup()
        assert no_gist.returncode == 1, no_gist.stderr
        assert "lacks the btree_gist extension" in no_gist.stderr
        assert "CREATE EXTENSION btree_gist;" in no_gist.stderr
        assert not (tmp_path / "repo").exists()
        pg.psql("CREATE EXTENSION btree_gist", database="butler")
        made = setup()
        assert made.returncode == 0, made.stderr
        assert "btree_gist enabled" in made.stderr
        schemas = pg.psql("SELECT schema_name FROM information_schema.schemata", database="butler")
        assert "drp" in schemas.split()
        tables = pg.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'drp'",
                         database="butler")
        assert int(tables.strip()) > 10
        again = setup()
        assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr


def test_a_half_written_or_mistyped_calibration_collection_is_reported(tmp_path: Path) -> None:
    """Idempotency by content: an existing calibration collection that holds nothing (a
    write-curated-calibrations cut short) or is no CALIBRATION collection stops the script."""
    from lsst.daf.butler import Butler, CollectionType

    plan = plan_of(campaign_copy(tmp_path, lambda doc: doc.pop("inputs", None)))
    script = write_script(plan, "frdf", tmp_path / "out")
    env = {"BUTLER_REPO": str(tmp_path / "repo"), "BUTLER_REGISTRY": "",
           "BUTLER_DATASTORE_ROOT": ""}
    made = run_script(script, tmp_path, **env, SKIP_STEPS=f"{STACK_STEPS} summary")
    assert made.returncode == 0, made.stderr
    with Butler.from_config(str(tmp_path / "repo"), writeable=True) as butler:
        butler.collections.register("HSC/calib", CollectionType.CALIBRATION)
    empty = run_script(script, tmp_path, **env, SKIP_STEPS="instrument skymap summary")
    assert empty.returncode == 1
    assert "calibration collection HSC/calib exists but holds nothing" in empty.stderr
    with Butler.from_config(str(tmp_path / "repo"), writeable=True) as butler:
        butler.registry.removeCollection("HSC/calib")
        butler.collections.register("HSC/calib", CollectionType.RUN)
    wrong = run_script(script, tmp_path, **env, SKIP_STEPS="instrument skymap summary")
    assert wrong.returncode == 1
    assert "collection HSC/calib exists as a RUN collection" in wrong.stderr
    done = run_script(script, tmp_path, **env, SKIP_STEPS=f"{STACK_STEPS} summary")
    assert done.returncode == 0 and "0 changes" in done.stderr, done.stderr
