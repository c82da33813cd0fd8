# Raw registration helper of the register scripts at usdf of campaign 'dr1'
# generated - do not edit: drpc 0.1.0 from dr1.yaml
#
# Registers the raws of a TAGGED collection into a Rucio dataset with rucio-register's own
# library, exactly as its `rucio-register raws` command does (RucioInterface with the raw-file
# type, so that ctrl_ingestd ingests them as raws): that command cannot be used with
# lsst-rucio-register 30.2026.4300, the release on PyPI, which dies in it with
# KeyError: 'backoff-factor'. The library calls used here are the same in w.2025.30's release
# and in that one. Runs with the stack's Python (BUTLER_PYTHON); RUCIO_REGISTER_CONFIG, when
# set, wins over --rucio-register-config, as in rucio-register itself.
"""Register the raws of a collection into a Rucio dataset (see the header)."""

from __future__ import annotations

import argparse
import os
import sys

CHUNK = 30  # replica requests at once: rucio-register's default


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--collections", required=True)
    parser.add_argument("--rucio-dataset", required=True)
    parser.add_argument("--rucio-register-config", default="")
    args = parser.parse_args()

    from lsst.daf.butler import Butler
    from lsst.rucio.register.data_type import DataType
    from lsst.rucio.register.rucio_interface import RucioInterface
    from lsst.rucio.register.rucio_register_config import RucioRegisterConfig

    config_file = os.environ.get("RUCIO_REGISTER_CONFIG") or args.rucio_register_config
    if not config_file:
        print("error: no rucio-register config (RUCIO_REGISTER_CONFIG or "
              "--rucio-register-config)", file=sys.stderr)
        return 2
    config = RucioRegisterConfig(config_file)
    butler = Butler.from_config(args.repo)
    interface = RucioInterface(butler=butler, rucio_rse=config.rucio_rse, scope=config.scope,
                               rse_root=config.rse_root, dtn_url=config.dtn_url,
                               rubin_butler_type=DataType.RAW_FILE)
    refs = list(butler.query_datasets("raw", collections=args.collections, find_first=False,
                                      limit=None, explain=False))
    registered = 0
    for i in range(0, len(refs), CHUNK):
        registered += interface.register_as_replicas(args.rucio_dataset, refs[i: i + CHUNK]) or 0
    print(f"{len(refs)} raw(s) of {args.collections} registered into {args.rucio_dataset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
