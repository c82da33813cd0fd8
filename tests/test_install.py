"""A plain (non-editable) install works: templates and schema ship inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

from tests.helpers import CAMPAIGNS, ROOT


def test_wheel_install_compiles_like_the_checkout(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("drpc-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"  # not the checkout: nothing may be read from it
    work.mkdir()
    out = work / "out"
    subprocess.run([str(env_dir / "bin" / "drpc"), "compile", str(CAMPAIGNS / "3x2.yaml"), "-o", str(out)],
                   check=True, capture_output=True, cwd=work)
    ref = tmp_path / "ref"
    subprocess.run([sys.executable, "-m", "compiler", "compile", str(CAMPAIGNS / "3x2.yaml"), "-o", str(ref)],
                   check=True, capture_output=True, cwd=ROOT)
    installed = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    checkout = {p.relative_to(ref): p.read_bytes() for p in ref.rglob("*") if p.is_file()}
    assert installed == checkout
    schema = subprocess.run([str(env_dir / "bin" / "drpc"), "schema"], check=True, capture_output=True,
                            text=True, cwd=work).stdout
    assert schema == (ROOT / "schema" / "campaign.schema.json").read_text()
    listing = subprocess.run([str(py), "-c", "import compiler, pathlib; p = pathlib.Path(compiler.__file__).parent; "
                              "print(sorted(x.relative_to(p).as_posix() for x in p.rglob('*.j2')))"],
                             check=True, capture_output=True, text=True, cwd=work).stdout
    assert "templates/bps/submit.yaml.j2" in listing
    # drpc init from the wheel: the site presets are drpc's own campaigns/sites fragments
    init = subprocess.run([str(env_dir / "bin" / "drpc"), "init", "c.yaml", "--sites", "usdf,frdf"],
                          capture_output=True, text=True, cwd=work)
    assert init.returncode == 0, init.stderr
    for site in ("usdf", "frdf"):
        written = (work / "sites" / f"{site}.yaml").read_text().split("\n", 1)[1]
        assert written == (CAMPAIGNS / "sites" / f"{site}.yaml").read_text().split("\n", 1)[1]
