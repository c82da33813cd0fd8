"""What every renderer shares: the Jinja2 environment, quoting filters and provenance headers.

The quoting and escaping functions themselves live in `compiler.text` (the one place for every
output language); this module registers them as template filters and re-exports `sh_quote` and
`yaml_scalar` for the renderers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from .. import __version__, templates_path, tree_digest, user_cache_dir
from ..text import (
    bps_value,
    comment_line,
    json_text,
    md_code,
    md_fence,
    md_text,
    safe_file_name,
    sh_quote,
    yaml_scalar,
)

if TYPE_CHECKING:
    from ..plan import Plan

__all__ = ["GENERATED", "EnvVar", "comment_header", "environment", "header_lines",
           "render_template", "sh_quote", "shell_prelude", "templates_dir", "yaml_scalar"]

GENERATED = "generated - do not edit"


def templates_dir() -> Path:
    """Templates ship inside the wheel (compiler/templates); a source checkout has them at the
    root."""
    return templates_path()


# What the compiled templates depend on besides their text: a change here needs new bytecode.
_OPTIONS: dict[str, Any] = {"autoescape": False, "keep_trailing_newline": True,
                            "trim_blocks": True, "lstrip_blocks": True}
_STALE_CACHE_SECONDS = 30 * 24 * 3600  # bytecode of other template versions, unused this long


class _QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's file cache, but a cache that cannot be written (read-only, full, removed while
    drpc runs) only costs the time to compile the template again: never an error."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates in the user's cache folder (`$XDG_CACHE_HOME/drpc/jinja-<drpc
    version>-<digest>`), never in the checkout or OUT. The digest covers the templates, the
    environment's options and the installed Jinja2, so one folder never holds bytecode of other
    templates (Jinja also checks each template's source checksum before it uses its bytecode).
    Folders of other template versions unused for a month are removed."""
    jinja = os.stat(jinja2.__file__)  # another Jinja2 install: another code generator
    digest = hashlib.sha256(f"{tree_digest(templates_dir())} {sorted(_OPTIONS.items())} "
                            f"{jinja2.__file__}:{jinja.st_size}:{jinja.st_mtime_ns}"
                            .encode()).hexdigest()[:16]
    folder = user_cache_dir(f"jinja-{__version__}-{digest}")
    if folder is None:
        return None
    try:
        os.utime(folder)
        for other in folder.parent.glob("jinja-*"):
            if other != folder and time.time() - other.stat().st_mtime > _STALE_CACHE_SECONDS:
                shutil.rmtree(other, ignore_errors=True)
    except OSError:
        pass
    return _QuietBytecodeCache(str(folder), "%s.j2c")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        bytecode_cache=_bytecode_cache(),
        auto_reload=False,  # templates do not change while drpc runs: no stat per render
        **_OPTIONS,
    )
    env.filters["yq"] = yaml_scalar
    env.filters["sh"] = sh_quote
    env.filters["json"] = json_text
    env.filters["md"] = md_text
    env.filters["mdcode"] = md_code
    env.filters["mdfence"] = md_fence
    # BPS values (text.bps_value): refused if BPS would expand them or a job's shell read them
    env.filters["bps"] = bps_value  # pasted unquoted into pipetask command lines
    # ... and ${NAME} is meant (pipelineYaml)
    env.filters["bps_path"] = lambda v: bps_value(v, env=True)
    env.filters["bps_include"] = lambda v: bps_value(v, env=True, shell=None)  # a file BPS reads
    env.filters["bps_query"] = lambda v: bps_value(v, shell="quoted")  # inside -d "..."
    return env


def header_lines(plan: Plan, what: str) -> list[str]:
    """Provenance: drpc's version, the campaign file and the do-not-edit mark.

    No hash of the spec (CONTRACT revision 2): manifest.json keeps it, so a one-value change of
    the spec rewrites only the files whose content it changes.

    The campaign's file name is the one part no validation sees: it is shown with every
    character outside `[A-Za-z0-9._/+@-]` replaced by `?` (a file named `x<LF>touch PWNED #.yaml`
    must not add a line to a script). Every line is checked by `text.comment_line`, which
    refuses line breaks and control characters: the last line of defence if an unvalidated
    value ever reaches a header.
    """
    name, changed = safe_file_name(plan.spec_file)
    note = (" (characters other than A-Z a-z 0-9 . _ / + @ - of the file name shown as ?)"
            if changed else "")
    return [comment_line(line) for line in (
        f"{what} of campaign '{plan.campaign}'",
        f"{GENERATED}: drpc {plan.drpc_version} from {name}{note}",
    )]


def comment_header(plan: Plan, what: str, prefix: str = "# ") -> str:
    """The provenance header as comment lines (`prefix` each), each line checked again."""
    return "".join(f"{comment_line(prefix + line)}\n" for line in header_lines(plan, what))


def render_template(name: str, **context: Any) -> bytes:
    text = environment().get_template(name).render(**context)
    return text.encode("utf-8")


@dataclass(frozen=True)
class EnvVar:
    """A site path or setting a generated script reads from the environment, with the spec's
    default."""

    name: str
    default: str
    doc: str


def shell_prelude(plan: Plan, what: str, env_vars: list[EnvVar]) -> str:
    """Shebang, provenance header, env defaults, `set -euo pipefail`, and the DRY_RUN-aware `run`.

    Every generated shell script starts with this, so they all behave alike: values reach the
    shell only through proper quoting, and `DRY_RUN=1` prints each command exactly.
    """
    for var in env_vars:  # the template writes these into comment lines: validated text only
        if not var.name.isidentifier() or not var.name.isascii():
            raise ValueError(f"refusing the environment variable name {var.name!r}")
        comment_line(f"#   {var.name}: {var.doc} (default: {var.default})")
    return render_template("common/prelude.sh.j2", header=comment_header(plan, what),
                           env_vars=env_vars).decode()
