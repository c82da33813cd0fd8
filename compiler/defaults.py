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

# Storage classes of DRP dataset types that commonly move between sites (pipe_tasks, fgcmcal,
# drp_tasks connection definitions). Used to pre-register the types at destination repos.
STORAGE_CLASSES: Mapping[str, str] = MappingProxyType({
    "isolated_star_presources": "ArrowAstropy",
    "isolated_star_presource_associations": "ArrowAstropy",
    "isolated_star_sources": "DataFrame",
    "isolated_star_cat": "DataFrame",
    "isolated_star_stars": "ArrowAstropy",
    "preliminary_visit_summary": "ExposureCatalog",
    "visit_summary": "ExposureCatalog",
    "finalVisitSummary": "ExposureCatalog",
    "visitSummary": "ExposureCatalog",
    "fgcm_photoCalibCatalog": "ExposureCatalog",
    "fgcmPhotoCalibCatalog": "ExposureCatalog",
    "fgcm_standard_star": "SimpleCatalog",
    "fgcm_reference_stars": "SimpleCatalog",
    "object": "ArrowAstropy",
    "object_patch": "ArrowAstropy",
    "objectTable_tract": "DataFrame",
    "objectTable": "DataFrame",
    "source": "ArrowAstropy",
    "sourceTable_visit": "DataFrame",
    "visit_table": "ArrowAstropy",
    "visit_detector_table": "ArrowAstropy",
    "visitTable": "DataFrame",
    "ccdVisitTable": "DataFrame",
    "deep_coadd": "ExposureF",
    "deepCoadd_calexp": "ExposureF",
    "template_coadd": "ExposureF",
    "dia_object": "ArrowAstropy",
    "dia_source": "ArrowAstropy",
    "forced_source": "ArrowAstropy",
})

# PanDA site configs of ctrl_bps_panda, by computeSite; others use the site-agnostic one.
PANDA_SITE_CONFIGS: Mapping[str, str] = MappingProxyType({
    "SLAC": "${CTRL_BPS_PANDA_DIR}/config/bps_usdf.yaml",
    "CC-IN2P3": "${CTRL_BPS_PANDA_DIR}/config/bps_frdf.yaml",
    "LANCS": "${CTRL_BPS_PANDA_DIR}/config/bps_ukdf.yaml",
})
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
RUCIO_SCOPE_MAX = 25
