"""Facts about the Rubin DRP world that a spec may leave out (each one overridable in the spec)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# `butler register-instrument` classes (obs_subaru, obs_lsst).
INSTRUMENT_CLASSES: Mapping[str, str] = MappingProxyType({
    "HSC": "lsst.obs.subaru.HyperSuprimeCam",
    "LSSTCam": "lsst.obs.lsst.LsstCam",
    "LSSTComCam": "lsst.obs.lsst.LsstComCam",
    "LSSTComCamSim": "lsst.obs.lsst.LsstComCamSim",
    "LSSTCam-imSim": "lsst.obs.lsst.LsstCamImSim",
    "LATISS": "lsst.obs.lsst.Latiss",
})

# Storage classes of DRP dataset types that commonly move between sites, as the producing
# tasks' connections declare them at w.2025.30 (pipe_tasks, fgcmcal, drp_tasks; checked at the
# tag). Used to pre-register the types at destination repos.
STORAGE_CLASSES: Mapping[str, str] = MappingProxyType({
    # pipe_tasks isolatedStarAssociation (HSC's names, then LSSTCam's renames in drp_pipe)
    "isolated_star_presources": "ArrowAstropy",
    "isolated_star_presource_associations": "ArrowAstropy",
    "isolated_star": "ArrowAstropy",
    "isolated_star_association": "ArrowAstropy",
    # pipe_tasks postprocess, drp_tasks update_visit_summary, fgcmcal
    "preliminary_visit_summary": "ExposureCatalog",
    "visit_summary": "ExposureCatalog",
    "finalVisitSummary": "ExposureCatalog",
    "visitSummary": "ExposureCatalog",
    "fgcmPhotoCalibCatalog": "ExposureCatalog",
    "fgcm_standard_star": "ArrowAstropy",
    "fgcm_reference_stars": "ArrowAstropy",
    "object": "ArrowAstropy",
    "object_patch": "ArrowAstropy",
    "objectTable_tract": "ArrowAstropy",
    "objectTable": "ArrowAstropy",
    "source": "ArrowAstropy",
    "source2": "ArrowAstropy",  # LSSTCam/DRP.yaml's name of the visit-level source table
    "sourceTable_visit": "ArrowAstropy",
    "visit_table": "ArrowAstropy",
    "visit_detector_table": "ArrowAstropy",
    "visitTable": "ArrowAstropy",
    "ccdVisitTable": "ArrowAstropy",
    "deep_coadd": "ExposureF",
    "deepCoadd_calexp": "ExposureF",
    "template_coadd": "ExposureF",
    "dia_object": "DataFrame",  # ConsolidateTractTask
    "dia_source": "DataFrame",
    "object_forced_source": "ArrowAstropy",
    "dia_object_forced_source": "ArrowAstropy",
})

# PanDA site configs of ctrl_bps_panda, by computeSite; others use the site-agnostic one.
PANDA_SITE_CONFIGS: Mapping[str, str] = MappingProxyType({
    "SLAC": "${CTRL_BPS_PANDA_DIR}/config/bps_usdf.yaml",
    "CC-IN2P3": "${CTRL_BPS_PANDA_DIR}/config/bps_frdf.yaml",
    "LANCS": "${CTRL_BPS_PANDA_DIR}/config/bps_ukdf.yaml",
})
#: The PrometheusRule's namespace when the site gives none and runs no ctrl_ingestd.
DEFAULT_MONITORING_NAMESPACE = "drpc-monitoring"
PANDA_GENERIC_CONFIG = "${CTRL_BPS_PANDA_DIR}/config/bps_panda_DF.yaml"
# ctrl_bps_panda's remote build: the QuantumGraph is built at the compute site, so a job for
# another site can be submitted from the central one (`bps submit --compute-site`).
PANDA_REMOTE_BUILD_CONFIG = "${CTRL_BPS_PANDA_DIR}/config/bps_remote.yaml"

# Field of view radius (degrees) per instrument, to estimate visits held by two sites.
FOV_RADIUS_DEG: Mapping[str, float] = MappingProxyType({
    "HSC": 0.75,
    "LSSTCam": 1.75,
    "LSSTComCam": 0.35,
    "LSSTComCamSim": 0.35,
    "LSSTCam-imSim": 1.75,
    "LATISS": 0.1,
})
DEFAULT_FOV_RADIUS_DEG = 1.75

# A site's fraction of the tracts may differ from its `share` by this much before a warning;
# the shares themselves must add up to 1 within SHARE_SUM_TOLERANCE.
SHARE_WARNING = 0.05
SHARE_SUM_TOLERANCE = 0.001

# Rucio's own limits (rucio/common/schema/generic.py).
RUCIO_NAME_MAX = 250
# A move's container leaves room for its datasets' ".NNNNNN" (up to 999999 chunks), so that
# every dataset name keeps the container's as its prefix (compiler/rucio_names.py).
RUCIO_CONTAINER_MAX = RUCIO_NAME_MAX - (1 + 6)
RUCIO_SCOPE_MAX = 25


# -- inputs sent from the central site (CONTRACT section 1 `inputs:`) -----------------------------
# Dataset types of calibrations, reference catalogs and ancillary inputs: (dimensions, storage
# class), as obs_base/obs_lsst/obs_subaru, cp_pipe, meas_algorithms and fgcmcal define them,
# to register each type at the destinations (calibration types with --is-calibration).
CALIBRATION_TYPES: Mapping[str, tuple[tuple[str, ...], str]] = MappingProxyType({
    "camera": (("instrument",), "Camera"),
    "bias": (("instrument", "detector"), "ExposureF"),
    "dark": (("instrument", "detector"), "ExposureF"),
    "flat": (("instrument", "detector", "physical_filter"), "ExposureF"),
    "fringe": (("instrument", "detector", "physical_filter"), "ExposureF"),
    "sky": (("instrument", "detector", "physical_filter"), "ExposureF"),
    "defects": (("instrument", "detector"), "Defects"),
    "linearizer": (("instrument", "detector"), "Linearizer"),
    "crosstalk": (("instrument", "detector"), "CrosstalkCalib"),
    "ptc": (("instrument", "detector"), "PhotonTransferCurveDataset"),
    "bfk": (("instrument", "detector"), "BrighterFatterKernel"),
    "cti": (("instrument", "detector"), "IsrCalib"),
    "bfKernel": (("instrument",), "NumpyArray"),
    "transmission_optics": (("instrument",), "TransmissionCurve"),
    "transmission_sensor": (("instrument", "detector"), "TransmissionCurve"),
    "transmission_filter": (("instrument", "physical_filter"), "TransmissionCurve"),
    "transmission_atmosphere": (("instrument",), "TransmissionCurve"),
    "yBackground": (("instrument", "physical_filter", "detector"), "StrayLightData"),
    "illuminationCorrection": (("instrument", "detector", "physical_filter"), "Exposure"),
})
# The calibrations each instrument's pipeline reads at w.2025.30 (checked at the tag): ISR
# (IsrTaskLSST for the LSST cameras, IsrTask with obs_subaru's config for HSC, whose
# doStrayLight reads yBackground), skyCorr's sky frames, LSSTComCam calibrateImage's
# illumination correction. What `inputs.calibrations` sends by default.
DEFAULT_CALIBRATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "LSSTCam": ("camera", "bias", "dark", "flat", "defects", "linearizer", "crosstalk", "ptc",
                "bfk", "cti", "sky"),
    "LSSTComCam": ("camera", "bias", "dark", "flat", "defects", "linearizer", "crosstalk",
                   "ptc", "bfk", "cti", "illuminationCorrection"),
    "LATISS": ("camera", "bias", "dark", "flat", "defects", "linearizer", "crosstalk", "ptc"),
    "HSC": ("camera", "bias", "dark", "flat", "defects", "fringe", "sky", "bfKernel",
            "yBackground", "transmission_optics", "transmission_sensor", "transmission_filter",
            "transmission_atmosphere"),
})
# Reference catalogs are sharded by HTM level-7 pixels (meas_algorithms' convert_refcat).
REFCAT_TYPES: Mapping[str, tuple[tuple[str, ...], str]] = MappingProxyType({
    name: (("htm7",), "SimpleCatalog") for name in (
        "the_monster_20250219", "the_monster_20240904", "gaia_dr3_20230707",
        "gaia_dr2_20200414", "ps1_pv3_3pi_20170110", "atlas_refcat2_20220201")
})
ANCILLARY_TYPES: Mapping[str, tuple[tuple[str, ...], str]] = MappingProxyType({
    "fgcmLookUpTable": (("instrument",), "Catalog"),
})
# The table of each kind of input (`inputs.calibrations`, `.refcats`, `.ancillary`).
INPUT_TYPE_TABLES: Mapping[str, Mapping[str, tuple[tuple[str, ...], str]]] = MappingProxyType({
    "calibrations": CALIBRATION_TYPES, "refcats": REFCAT_TYPES, "ancillary": ANCILLARY_TYPES})

# What the central site sent of the inputs (the RUN collections of each input collection, the
# calibrations' validity ranges) travels as a dataset of its own: written by `butler/inputs.py`
# at the central site, moved like any other, read by it at each destination.
INPUTS_MANIFEST_TYPE = "drpc_inputs_manifest"
INPUTS_MANIFEST_STORAGE_CLASS = "StructuredDataDict"
