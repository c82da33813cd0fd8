#!/usr/bin/env bash
# shellcheck disable=SC2016  # a '$' in a spec value is kept literally, on purpose
# Butler repository setup for ukdf-lancs (UKDF (Lancaster)) of campaign 'drp-3x2'
# generated - do not edit: drpc 0.1.0 from 3x2.yaml
#
# Environment (the defaults are the campaign's values; override them to point elsewhere):
#   BUTLER_REPO: the site's Butler repository (path, URI or repository-index label) (default: /cephfs/pool/rubin/repo/drp)
#   BUTLER_REGISTRY: registry database URL for a new repository, without a password (credentials come from ~/.lsst/db-auth.yaml or PGPASSWORD); empty: SQLite inside the repository (default: postgresql://rubin-db.hec.lancs.ac.uk:5432/drp)
#   BUTLER_NAMESPACE: PostgreSQL schema of a new repository's registry tables (seed config registry.namespace); empty: the database's default schema (default: drp)
#   BUTLER_DATASTORE_ROOT: datastore root for a new repository; empty: the repository itself (default: /cephfs/pool/rubin/rucio/drp)
#   INSTRUMENT_CLASS: Python class that `butler register-instrument` adds (HSC) (default: lsst.obs.subaru.HyperSuprimeCam)
#   SKYMAP_CONFIG: `butler register-skymap` config file; empty: the one this script writes for hsc_rings_v1 (default: empty)
#   SKIP_STEPS: steps not to run, space- or comma-separated, out of: repo instrument calibrations skymap inputs dataset-types collections summary; e.g. 'instrument calibrations skymap' where the LSST stack (obs_*, skymap, pipe_tasks) is not set up (default: empty)
#   DRY_RUN: 1 prints every command instead of running it (default: 0)
set -euo pipefail

if [ -z "${BUTLER_REPO+x}" ]; then BUTLER_REPO=/cephfs/pool/rubin/repo/drp; fi
if [ -z "${BUTLER_REGISTRY+x}" ]; then BUTLER_REGISTRY=postgresql://rubin-db.hec.lancs.ac.uk:5432/drp; fi
if [ -z "${BUTLER_NAMESPACE+x}" ]; then BUTLER_NAMESPACE=drp; fi
if [ -z "${BUTLER_DATASTORE_ROOT+x}" ]; then BUTLER_DATASTORE_ROOT=/cephfs/pool/rubin/rucio/drp; fi
if [ -z "${INSTRUMENT_CLASS+x}" ]; then INSTRUMENT_CLASS=lsst.obs.subaru.HyperSuprimeCam; fi
if [ -z "${SKYMAP_CONFIG+x}" ]; then SKYMAP_CONFIG=''; fi
if [ -z "${SKIP_STEPS+x}" ]; then SKIP_STEPS=''; fi
DRY_RUN="${DRY_RUN:-0}"
CURRENT_STEP="start"

# Print the exact command (shell-quoted) under DRY_RUN=1, run it otherwise.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '%q ' "$@" | sed 's/ $//'
    printf '\n'
  else
    "$@"
  fi
}

step() {
  CURRENT_STEP="$1"
  printf '==> %s\n' "$1" >&2
}

on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '%s: FAILED at step "%s" (exit %s)\n' "$(basename "$0")" "$CURRENT_STEP" "$rc" >&2
  fi
}
trap on_exit EXIT

# Makes the Butler repository at BUTLER_REPO ready for campaign drp-3x2, step by step:
#   repo           butler create (seed config: BUTLER_REGISTRY, BUTLER_NAMESPACE,
#                  BUTLER_DATASTORE_ROOT); for PostgreSQL, first its credentials and btree_gist
#   instrument     butler register-instrument for HSC (LSST stack)
#   calibrations   butler write-curated-calibrations into HSC/calib (LSST stack)
#   skymap         butler register-skymap hsc_rings_v1 (LSST stack)
#   inputs         butler import of the reference catalogs and ancillary inputs
#   dataset-types  registers every dataset type moving to or from ukdf-lancs (daf_butler's
#                  registerDatasetType, one Python for all of them)
#   collections    HSC/raw/all and the incoming chains (the defaults chain
#                  HSC/defaults is made by inputs.py, once the inputs it chains are here)
#   summary        the collections (chains as trees) and dataset types, as butler
#                  query-collections and query-dataset-types list them
# Each step first looks at the repository and skips what already exists ("already exists,
# skipping"), so running the script again changes nothing. Needs `butler` and `python` with
# lsst.daf.butler on PATH; the (LSST stack) steps also need the stack set up (obs_*,
# skymap, pipe_tasks: not on PyPI). A rehearsal without the stack runs the script with
# SKIP_STEPS="instrument calibrations skymap" and provides their results itself (the instrument,
# HSC/calib, the skymap and its skymaps collection). Under DRY_RUN=1 the
# script still looks at an existing repository (read-only) and prints only the commands a run
# would make; a repository it cannot open counts as absent.

STEPS='repo instrument calibrations skymap inputs dataset-types collections summary'
read -r -a skip_words <<< "${SKIP_STEPS//,/ }"
SKIP_LIST=" ${skip_words[*]} "
for name in "${skip_words[@]}"; do
  case " $STEPS " in
    *" $name "*) ;;
    *) printf '%s: SKIP_STEPS names an unknown step "%s" (steps: %s)\n' "$(basename "$0")" "$name" "$STEPS" >&2
       exit 2 ;;
  esac
done

say() { printf '%s\n' "$*" >&2; }
skipped() { case "$SKIP_LIST" in *" $1 "*) return 0 ;; esac; return 1; }

# begin STEP: name the step (for the failure message) unless SKIP_STEPS holds it.
begin() {
  if skipped "$1"; then
    say "==> $1: skipped (SKIP_STEPS)"
    return 1
  fi
  step "$1"
}
die() { say "$(basename "$0"): $*"; exit 1; }
CHANGES=0
changed() { CHANGES=$((CHANGES + 1)); }
skipping() { say "  $1: already exists, skipping"; }

# Scratch space for the seed and skymap configs and the repository snapshot; removed at exit.
WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/drpc-setup-repo.XXXXXX")"
finish() {
  local rc="$1"
  rm -rf -- "$WORK_DIR"
  return "$rc"
}
trap 'finish "$?" || on_exit' EXIT

# Write stdin to the file $1; under DRY_RUN=1 also print it, as the heredoc that writes it.
write_file() {
  cat > "$1"
  if [ "$DRY_RUN" = 1 ]; then
    printf "cat > %q <<'EOF'\n" "$1"
    cat -- "$1"
    printf 'EOF\n'
  fi
}

# Run an inline Python program (stdin) with arguments; under DRY_RUN=1 print it instead.
run_python() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '%q ' python - "$@" | sed 's/ $//'
    printf " <<'PY'\n"
    cat
    printf 'PY\n'
  else
    run python - "$@"
  fi
}

# A YAML scalar holding exactly $1 (single-quoted; a value with a line break is refused).
yaml_str() {
  case "$1" in
    *$'\n'*|*$'\r'*) die "a line break in \"$1\" cannot go into the seed config" ;;
  esac
  printf "'%s'" "${1//\'/\'\'}"
}

# has KIND NAME...: true when the snapshot of the repository lists it.
has() { grep -Fxq -- "$*" "$STATE"; }
# snapshot KIND NAME: the value the snapshot records for it (collection type, chain children).
snapshot() { awk -v k="$1" -v n="$2" '$1 == k && $2 == n { print $3; exit }' "$STATE"; }

step inspect
STATE="$WORK_DIR/state"
: > "$STATE"
REPO_EXISTS=0
probe_rc=0
# Read-only look at what the campaign needs (named, so a repository with many collections stays
# quick): exit 10 when there is no repository; else lines "KIND NAME [VALUE]".
LOOK_FOR=(
  collection=HSC/calib
  collection=HSC/raw/all
  collection=HSC/runs/drp-3x2/DM-48353/incoming/step2d
  collection=HSC/runs/drp-3x2/DM-48353/incoming/step3
  collection=HSC/defaults
  collection=HSC/calib/RC2/DM-48353
  collection=refcats
  collection=skymaps
  collection=HSC/fgcmcal/lut/RC2/DM-48353
  dataset-type=camera
  dataset-type=bias
  dataset-type=dark
  dataset-type=flat
  dataset-type=defects
  dataset-type=fringe
  dataset-type=sky
  dataset-type=bfKernel
  dataset-type=yBackground
  dataset-type=transmission_optics
  dataset-type=transmission_sensor
  dataset-type=transmission_filter
  dataset-type=transmission_atmosphere
  dataset-type=ps1_pv3_3pi_20170110
  dataset-type=gaia_dr3_20230707
  dataset-type=fgcmLookUpTable
  dataset-type=drpc_inputs_manifest
  dataset-type=visitSummary
  dataset-type=isolated_star_presource_associations
  dataset-type=isolated_star_presources
  dataset-type=fgcmPhotoCalibCatalog
  dataset-type=finalVisitSummary
  dataset-type=visitTable
  dataset-type=deepCoadd_dcr_ddec_map_weighted_mean
  dataset-type=deepCoadd_dcr_dra_map_weighted_mean
  dataset-type=deepCoadd_dcr_e1_map_weighted_mean
  dataset-type=deepCoadd_dcr_e2_map_weighted_mean
  dataset-type=deepCoadd_epoch_map_max
  dataset-type=deepCoadd_epoch_map_mean
  dataset-type=deepCoadd_epoch_map_min
  dataset-type=deepCoadd_exposure_time_map_sum
  dataset-type=deepCoadd_psf_e1_map_weighted_mean
  dataset-type=deepCoadd_psf_e2_map_weighted_mean
  dataset-type=deepCoadd_psf_maglim_map_weighted_mean
  dataset-type=deepCoadd_psf_size_map_weighted_mean
  dataset-type=deepCoadd_sky_background_map_weighted_mean
  dataset-type=deepCoadd_sky_noise_map_weighted_mean
  dataset-type=matchedVisitCore_metrics
  dataset-type=objectTableCore_metrics
  dataset-type=objectTable_tract
  dataset-type=objectTable_tract_gaia_dr3_20230707_match_astrom_metrics
)
python - "$BUTLER_REPO" "${LOOK_FOR[@]}" > "$STATE" 2> "$WORK_DIR/inspect.err" <<'PY' || probe_rc=$?
import sys

from lsst.daf.butler import Butler, MissingCollectionError, MissingDatasetTypeError

try:
    butler = Butler.from_config(sys.argv[1])
except FileNotFoundError:
    sys.exit(10)
for record in butler.registry.queryDimensionRecords("instrument"):
    print("instrument", record.name)
for record in butler.registry.queryDimensionRecords("skymap"):
    print("skymap", record.name)
for arg in sys.argv[2:]:
    kind, _, name = arg.partition("=")
    try:
        if kind == "collection":
            info = butler.collections.get_info(name, include_summary=True)
            print("collection", name)
            print("collection-type", name, info.type.name)
            print("chain", name, ",".join(info.children))
            print("collection-types-held", name, ",".join(sorted(info.dataset_types)) or "-")
        else:
            dataset_type = butler.get_dataset_type(name)
            print("dataset-type", name)
            print("dataset-type-class", name, dataset_type.storageClass_name)
    except (MissingCollectionError, MissingDatasetTypeError):
        pass
PY
case "$probe_rc" in
  0) REPO_EXISTS=1 ;;
  10) : ;;
  *)
    if [ "$DRY_RUN" = 1 ]; then
      say "  cannot open $BUTLER_REPO (exit $probe_rc); DRY_RUN: assuming it does not exist"
      : > "$STATE"
    else
      cat -- "$WORK_DIR/inspect.err" >&2
      die "cannot open the repository $BUTLER_REPO (exit $probe_rc): is the stack set up, the database reachable?"
    fi ;;
esac

# A PostgreSQL registry daf_butler can use: credentials where it reads them, and the btree_gist
# extension, which it refuses to work without (checked before `butler create`, which would
# otherwise stop in a traceback).
# (Under DRY_RUN=1 a problem is said, not fatal, and the database is not contacted.)
registry_problem() {
  if [ "$DRY_RUN" = 1 ]; then say "  DRY_RUN: a real run stops here: $*"; else die "$@"; fi
}
check_postgres_registry() {
  if [ -z "${PGPASSWORD:-}" ] && [ -z "${LSST_DB_AUTH_CREDENTIALS:-}" ]; then
    local auth="${LSST_DB_AUTH:-$HOME/.lsst/db-auth.yaml}" mode
    if [ ! -f "$auth" ]; then
      registry_problem "no credentials for $BUTLER_REGISTRY: write them to $auth (a list of {url, username, password}, mode 0600: daf_butler's DbAuth) or set PGPASSWORD"
    elif mode="$(stat -c %a "$auth")" && [ "$mode" != 600 ]; then
      registry_problem "$auth has mode $mode: daf_butler reads it only with mode 0600 (chmod 600 $auth)"
    fi
  fi
  if [ "$DRY_RUN" = 1 ]; then
    say "  DRY_RUN: not connecting to $BUTLER_REGISTRY (a real run checks it and its btree_gist extension)"
    return 0
  fi
  local rc=0
  python - "$BUTLER_REGISTRY" > "$WORK_DIR/registry.out" 2>&1 <<'PY' || rc=$?
import sys

import sqlalchemy
from lsst.daf.butler.registry import RegistryConfig

url = RegistryConfig({"db": sys.argv[1]}).connectionString  # db-auth's password added here
try:
    with sqlalchemy.create_engine(url).connect() as connection:
        found = connection.execute(sqlalchemy.text(
            "SELECT COUNT(*) FROM pg_extension WHERE extname = 'btree_gist'")).scalar()
except sqlalchemy.exc.SQLAlchemyError as exc:
    print(str(getattr(exc, "orig", None) or exc).strip().splitlines()[0])
    sys.exit(11)
sys.exit(0 if found else 12)
PY
  case "$rc" in
    0) say "  registry $BUTLER_REGISTRY: reachable, btree_gist enabled" ;;
    11) die "cannot connect to $BUTLER_REGISTRY: $(cat -- "$WORK_DIR/registry.out")" ;;
    12) die "the database of $BUTLER_REGISTRY lacks the btree_gist extension daf_butler needs: ask its administrator to run 'CREATE EXTENSION btree_gist;' in it" ;;
    *) cat -- "$WORK_DIR/registry.out" >&2; die "cannot check $BUTLER_REGISTRY (exit $rc): is the stack set up?" ;;
  esac
}

if begin repo; then
  if [ "$REPO_EXISTS" = 1 ]; then
    skipping "repository $BUTLER_REPO"
  else
    case "$BUTLER_REGISTRY" in
      *://*:*@*) die "BUTLER_REGISTRY holds a password: leave it out (use ~/.lsst/db-auth.yaml or PGPASSWORD)" ;;
      postgresql*) check_postgres_registry ;;
    esac
    create_args=()
    if [ -n "$BUTLER_REGISTRY" ] || [ -n "$BUTLER_DATASTORE_ROOT" ]; then
      seed=""
      if [ -n "$BUTLER_REGISTRY" ]; then
        value="$(yaml_str "$BUTLER_REGISTRY")"
        seed+=$'registry:\n  db: '"$value"$'\n'
        if [ -n "$BUTLER_NAMESPACE" ]; then
          value="$(yaml_str "$BUTLER_NAMESPACE")"
          seed+=$'  namespace: '"$value"$'\n'
        fi
      fi
      if [ -n "$BUTLER_DATASTORE_ROOT" ]; then
        value="$(yaml_str "$BUTLER_DATASTORE_ROOT")"
        seed+=$'datastore:\n  root: '"$value"$'\n'
      fi
      printf '%s' "$seed" | write_file "$WORK_DIR/seed.yaml"
      # --override: keep the seed's registry db and datastore root instead of the defaults.
      create_args=(--seed-config "$WORK_DIR/seed.yaml" --override)
    fi
    run butler create "${create_args[@]}" "$BUTLER_REPO"
    changed
  fi
fi

if begin instrument; then
  if has instrument HSC; then
    skipping 'instrument HSC'
  elif [ -z "$INSTRUMENT_CLASS" ]; then
    die 'no instrument class for HSC: set campaign.instrument_class in the spec or INSTRUMENT_CLASS'
  else
    run butler register-instrument "$BUTLER_REPO" "$INSTRUMENT_CLASS"
    changed
  fi
fi

if begin calibrations; then
  if has collection HSC/calib; then
    calib_type="$(snapshot collection-type HSC/calib)"
    if [ "$calib_type" != CALIBRATION ]; then
      die 'collection HSC/calib exists as a '"$calib_type"' collection; curated calibrations go into a CALIBRATION collection: rename or remove it (butler remove-collections), or set butler.calibrations.collection'
    fi
    if [ "$(snapshot collection-types-held HSC/calib)" = - ]; then
      die 'calibration collection HSC/calib exists but holds nothing: a write-curated-calibrations that did not finish? Remove it and its RUN collections (butler remove-collections, butler remove-runs) and run this again'
    fi
    skipping 'calibration collection HSC/calib'
  else
    run butler write-curated-calibrations "$BUTLER_REPO" HSC --collection HSC/calib
    changed
  fi
fi

if begin skymap; then
  if has skymap hsc_rings_v1; then
    skipping 'skymap hsc_rings_v1'
  else
    if [ -z "$SKYMAP_CONFIG" ]; then
      SKYMAP_CONFIG="$WORK_DIR/"skymap-hsc_rings_v1.py
      write_file "$SKYMAP_CONFIG" <<'EOF'
# butler register-skymap config (lsst.pipe.tasks.makeGen3SkyMap.MakeGen3SkyMapConfig)
# for the campaign's skymap 'hsc_rings_v1': version-1 ring numbering, 18938 tracts.
config.name = "hsc_rings_v1"
config.skyMap.name = "rings"
config.skyMap["rings"].numRings = 120
config.skyMap["rings"].raStart = 0.0  # degrees
config.skyMap["rings"].projection = "TAN"
config.skyMap["rings"].tractOverlap = 1.0 / 60  # degrees (1 arcmin)
config.skyMap["rings"].pixelScale = 0.168  # arcsec/pixel
config.skyMap["rings"].tractBuilder.name = "legacy"
config.skyMap["rings"].tractBuilder["legacy"].patchInnerDimensions = [4000, 4000]
config.skyMap["rings"].tractBuilder["legacy"].patchBorder = 100
EOF
    fi
    run butler register-skymap "$BUTLER_REPO" -C "$SKYMAP_CONFIG" -c name=hsc_rings_v1
    changed
  fi
fi

if begin inputs; then
  say '  no reference catalogs or ancillary inputs in the spec (butler.refcats, butler.ancillary)'
fi

# want_dataset_type NAME STORAGE_CLASS IS_CALIBRATION(0|1) DIMENSION...: register NAME unless it
# exists (with the same storage class: another one is an error).
type_args=()
want_dataset_type() {
  local name="$1" storage_class="$2" calibration="$3" existing
  shift 3
  if has dataset-type "$name"; then
    existing="$(snapshot dataset-type-class "$name")"
    if [ "$existing" != "$storage_class" ]; then
      die "dataset type $name exists with storage class $existing, the campaign moves it as $storage_class:" \
        "fix datasets[].storage_class or remove the type (butler remove-dataset-type)"
    fi
    skipping "dataset type $name"
  else
    type_args+=("$name|$storage_class|$calibration|$(IFS=,; printf '%s' "$*")")
  fi
}

if begin dataset-types; then
  # camera: input from usdf
  want_dataset_type camera Camera 1 instrument
  # bias: input from usdf
  want_dataset_type bias ExposureF 1 instrument detector
  # dark: input from usdf
  want_dataset_type dark ExposureF 1 instrument detector
  # flat: input from usdf
  want_dataset_type flat ExposureF 1 instrument detector physical_filter
  # defects: input from usdf
  want_dataset_type defects Defects 1 instrument detector
  # fringe: input from usdf
  want_dataset_type fringe ExposureF 1 instrument detector physical_filter
  # sky: input from usdf
  want_dataset_type sky ExposureF 1 instrument detector physical_filter
  # bfKernel: input from usdf
  want_dataset_type bfKernel NumpyArray 1 instrument
  # yBackground: input from usdf
  want_dataset_type yBackground StrayLightData 1 instrument physical_filter detector
  # transmission_optics: input from usdf
  want_dataset_type transmission_optics TransmissionCurve 1 instrument
  # transmission_sensor: input from usdf
  want_dataset_type transmission_sensor TransmissionCurve 1 instrument detector
  # transmission_filter: input from usdf
  want_dataset_type transmission_filter TransmissionCurve 1 instrument physical_filter
  # transmission_atmosphere: input from usdf
  want_dataset_type transmission_atmosphere TransmissionCurve 1 instrument
  # ps1_pv3_3pi_20170110: input from usdf
  want_dataset_type ps1_pv3_3pi_20170110 SimpleCatalog 0 htm7
  # gaia_dr3_20230707: input from usdf
  want_dataset_type gaia_dr3_20230707 SimpleCatalog 0 htm7
  # fgcmLookUpTable: input from usdf
  want_dataset_type fgcmLookUpTable Catalog 0 instrument
  # drpc_inputs_manifest: input from usdf
  want_dataset_type drpc_inputs_manifest StructuredDataDict 0 instrument
  # visitSummary: gather to usdf
  want_dataset_type visitSummary ExposureCatalog 0 instrument visit
  # isolated_star_presource_associations: gather to usdf
  want_dataset_type isolated_star_presource_associations ArrowAstropy 0 instrument skymap tract
  # isolated_star_presources: gather to usdf
  want_dataset_type isolated_star_presources ArrowAstropy 0 instrument skymap tract
  # fgcmPhotoCalibCatalog: scatter from usdf
  want_dataset_type fgcmPhotoCalibCatalog ExposureCatalog 0 instrument visit
  # finalVisitSummary: gather to usdf
  want_dataset_type finalVisitSummary ExposureCatalog 0 instrument visit
  # visitTable: scatter from usdf
  want_dataset_type visitTable ArrowAstropy 0 instrument
  # deepCoadd_dcr_ddec_map_weighted_mean: gather to usdf
  want_dataset_type deepCoadd_dcr_ddec_map_weighted_mean HealSparseMap 0 skymap tract band
  # deepCoadd_dcr_dra_map_weighted_mean: gather to usdf
  want_dataset_type deepCoadd_dcr_dra_map_weighted_mean HealSparseMap 0 skymap tract band
  # deepCoadd_dcr_e1_map_weighted_mean: gather to usdf
  want_dataset_type deepCoadd_dcr_e1_map_weighted_mean HealSparseMap 0 skymap tract band
  # deepCoadd_dcr_e2_map_weighted_mean: gather to usdf
  want_dataset_type deepCoadd_dcr_e2_map_weighted_mean HealSparseMap 0 skymap tract band
  # deepCoadd_epoch_map_max: gather to usdf
  want_dataset_type deepCoadd_epoch_map_max HealSparseMap 0 skymap tract band
  # deepCoadd_epoch_map_mean: gather to usdf
  want_dataset_type deepCoadd_epoch_map_mean HealSparseMap 0 skymap tract band
  # deepCoadd_epoch_map_min: gather to usdf
  want_dataset_type deepCoadd_epoch_map_min HealSparseMap 0 skymap tract band
  # deepCoadd_exposure_time_map_sum: gather to usdf
  want_dataset_type deepCoadd_exposure_time_map_sum HealSparseMap 0 skymap tract band
  # deepCoadd_psf_e1_map_weighted_mean: gather to usdf
  want_dataset_type deepCoadd_psf_e1_map_weighted_mean HealSparseMap 0 skymap tract band
  # deepCoadd_psf_e2_map_weighted_mean: gather to usdf
  want_dataset_type deepCoadd_psf_e2_map_weighted_mean HealSparseMap 0 skymap tract band
  # deepCoadd_psf_maglim_map_weighted_mean: gather to usdf
  want_dataset_type deepCoadd_psf_maglim_map_weighted_mean HealSparseMap 0 skymap tract band
  # deepCoadd_psf_size_map_weighted_mean: gather to usdf
  want_dataset_type deepCoadd_psf_size_map_weighted_mean HealSparseMap 0 skymap tract band
  # deepCoadd_sky_background_map_weighted_mean: gather to usdf
  want_dataset_type deepCoadd_sky_background_map_weighted_mean HealSparseMap 0 skymap tract band
  # deepCoadd_sky_noise_map_weighted_mean: gather to usdf
  want_dataset_type deepCoadd_sky_noise_map_weighted_mean HealSparseMap 0 skymap tract band
  # matchedVisitCore_metrics: gather to usdf
  want_dataset_type matchedVisitCore_metrics MetricMeasurementBundle 0 instrument skymap tract
  # objectTableCore_metrics: gather to usdf
  want_dataset_type objectTableCore_metrics MetricMeasurementBundle 0 skymap tract
  # objectTable_tract: gather to usdf
  want_dataset_type objectTable_tract ArrowAstropy 0 skymap tract
  # objectTable_tract_gaia_dr3_20230707_match_astrom_metrics: gather to usdf
  want_dataset_type objectTable_tract_gaia_dr3_20230707_match_astrom_metrics MetricMeasurementBundle 0 skymap tract
  # One Python for all of them (as `butler register-dataset-type` would, without a process each).
  if [ "${#type_args[@]}" -gt 0 ]; then
    run_python "$BUTLER_REPO" "${type_args[@]}" <<'PY'
import sys

from lsst.daf.butler import Butler, DatasetType

repo, *specs = sys.argv[1:]
butler = Butler.from_config(repo, writeable=True)
for spec in specs:
    name, storage_class, calibration, dimensions = spec.split("|")
    butler.registry.registerDatasetType(DatasetType(
        name, [d for d in dimensions.split(",") if d], storage_class,
        universe=butler.dimensions, isCalibration=calibration == "1"))
    print(f"  dataset type {name}: registered ({storage_class})", file=sys.stderr)
PY
    CHANGES=$((CHANGES + ${#type_args[@]}))
  fi
fi

if begin collections; then
  collection_args=()
  # want TYPE NAME: create NAME (an empty RUN or CHAINED collection) unless it exists.
  want() {
    local existing
    if has collection "$2"; then
      existing="$(snapshot collection-type "$2")"
      if [ "$existing" != "$1" ]; then
        die "collection $2 exists as a $existing collection; the campaign needs a $1 collection"
      fi
      skipping "$1 collection $2"
    else
      collection_args+=("$1=$2")
    fi
  }
  want RUN HSC/raw/all
  want CHAINED HSC/runs/drp-3x2/DM-48353/incoming/step2d
  want CHAINED HSC/runs/drp-3x2/DM-48353/incoming/step3
  if [ "${#collection_args[@]}" -gt 0 ]; then
    run_python "$BUTLER_REPO" "${collection_args[@]}" <<'PY'
import sys

from lsst.daf.butler import Butler, CollectionType
from lsst.daf.butler.registry import MissingCollectionError

repo, *args = sys.argv[1:]
butler = Butler.from_config(repo, writeable=True)


def existing_type(name):
    try:
        return butler.collections.get_info(name).type
    except MissingCollectionError:
        return None


for arg in args:
    key, _, value = arg.partition("=")
    if key in ("RUN", "CHAINED"):
        found = existing_type(value)
        if found is None:
            butler.collections.register(value, CollectionType[key])
            print(f"  {key} collection {value}: created", file=sys.stderr)
        elif found.name != key:
            sys.exit(f"collection {value} exists as a {found.name} collection; the campaign needs {key}")
        else:
            print(f"  {key} collection {value}: already exists, skipping", file=sys.stderr)
PY
    changed
  fi
fi

if begin summary; then
  # One Python for both listings (as `butler query-collections --chains tree` and
  # `butler query-dataset-types --verbose` would, without a stack start-up each).
  run_python "$BUTLER_REPO" <<'PY'
import sys

from lsst.daf.butler import Butler

butler = Butler.from_config(sys.argv[1])
infos = {info.name: info for info in butler.collections.query_info("*")}
children = {child for info in infos.values() for child in info.children}


def show(name, depth, seen):
    info = infos.get(name)
    line = "  " * (depth + 1) + name + "  " + (info.type.name if info else "(missing)")
    print(line + ("  (cycle)" if name in seen else ""))
    if info is not None and name not in seen:
        for child in info.children:
            show(child, depth + 1, seen | {name})


print("collections (a chain's children below it):")
for name in sorted(infos):
    if name not in children:
        show(name, 0, frozenset())
print("dataset types (name, storage class, dimensions):")
for dataset_type in sorted(butler.registry.queryDatasetTypes(), key=lambda d: d.name):
    print(f"  {dataset_type.name}  {dataset_type.storageClass_name}  "
          f"{', '.join(dataset_type.dimensions.names)}")
PY
fi

step end
if [ "$DRY_RUN" = 1 ]; then
  say "DRY_RUN: $CHANGES step item(s) above would change the repository"
elif [ "$CHANGES" -eq 0 ]; then
  say "nothing to do: everything already exists - 0 changes"
else
  say "done: $CHANGES change(s) to $BUTLER_REPO"
fi
