"""What every renderer shares: the Jinja2 environment, quoting filters and provenance headers."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from ..plan import Plan

GENERATED = "generated - do not edit"


def templates_dir() -> Path:
    """Templates ship inside the wheel (compiler/templates); a source checkout has them at the root."""
    packaged = Path(str(resources.files("compiler"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def yaml_scalar(value: Any) -> str:
    """A YAML 1.2 scalar that reads back as exactly `value` (JSON is a subset of YAML 1.2)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(str(value), ensure_ascii=False)


def sh_quote(value: Any) -> str:
    """One shell word that expands to exactly `value`: a spec value can never run a command."""
    return shlex.quote(str(value))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yq"] = yaml_scalar
    env.filters["sh"] = sh_quote
    env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)
    return env


def header_lines(plan: Plan, what: str) -> list[str]:
    """Provenance: drpc's version, the campaign file and the do-not-edit mark.

    No hash of the spec (CONTRACT revision 2): manifest.json keeps it, so a one-value change of
    the spec rewrites only the files whose content it changes.
    """
    return [
        f"{what} of campaign '{plan.campaign}'",
        f"{GENERATED}: drpc {plan.drpc_version} from {plan.spec_file}",
    ]


def comment_header(plan: Plan, what: str, prefix: str = "# ") -> str:
    return "".join(f"{prefix}{line}\n" for line in header_lines(plan, what))


def render_template(name: str, **context: Any) -> bytes:
    text = environment().get_template(name).render(**context)
    return text.encode("utf-8")


@dataclass(frozen=True)
class EnvVar:
    """A site path or setting a generated script reads from the environment, with the spec's default."""

    name: str
    default: str
    doc: str


def shell_prelude(plan: Plan, what: str, env_vars: list[EnvVar]) -> str:
    """Shebang, provenance header, env defaults, `set -euo pipefail`, and the DRY_RUN-aware `run`.

    Every generated shell script starts with this, so they all behave alike: values reach the
    shell only through proper quoting, and `DRY_RUN=1` prints each command exactly.
    """
    return render_template("common/prelude.sh.j2", header=comment_header(plan, what),
                           env_vars=env_vars).decode()
