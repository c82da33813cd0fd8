"""Loading: includes with deep merge, provenance per value, cycles, and YAML errors with positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.errors import SpecError
from compiler.loader import load_campaign
from compiler.pipeline import compile_campaign
from tests.helpers import MINIMAL, replace_line, write


def test_include_deep_merge_including_file_wins(tmp_path: Path) -> None:
    write(tmp_path, """\
        sites:
          usdf:
            facility: from-include
            cores: 1
            butler: {repo: /inc, registry: 'postgresql://db:5432/x'}
        stages: [{name: a, subset: a, runs_at: central}]
        """, "inc/base.yaml")
    main = write(tmp_path, """\
        include: [inc/base.yaml]
        sites:
          usdf:
            cores: 2
            butler: {repo: /main}
        stages: [{name: b, subset: b, runs_at: central}]
        """)
    loaded = load_campaign(main)
    usdf = loaded.data["sites"]["usdf"]
    assert usdf == {"facility": "from-include", "cores": 2,
                    "butler": {"repo": "/main", "registry": "postgresql://db:5432/x"}}
    assert loaded.data["stages"] == [{"name": "b", "subset": "b", "runs_at": "central"}]  # lists replaced
    src = loaded.source
    inc = str(Path(main).parent / "inc" / "base.yaml")
    assert src.locate(("sites", "usdf", "facility")).file == inc
    assert (src.locate(("sites", "usdf", "facility")).line, src.locate(("sites", "usdf", "facility")).column) == (3, 15)
    assert src.locate(("sites", "usdf", "cores")).file == str(main)
    assert src.locate(("sites", "usdf", "butler", "registry")).file == inc
    assert src.locate(("stages", 0, "name")).file == str(main)
    assert set(loaded.inputs) == {"campaign.yaml", "inc/base.yaml"}


def test_error_points_into_the_included_file(tmp_path: Path) -> None:
    text = replace_line(MINIMAL, "    cores: 100\n    gb_per_core: 4\n    storage_tb: 100\n    share: 0.5\n    butler: {repo: /repo/frdf}",
                        "    gb_per_core: 4\n    storage_tb: 100\n    share: 0.5\n    butler: {repo: /repo/frdf}")
    text = "include: [sites.yaml]\n" + text
    write(tmp_path, "sites:\n  frdf:\n    cores: -3\n", "sites.yaml")
    main = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        compile_campaign(main, render=False)
    [diag] = info.value.diagnostics
    assert diag.text() == f"{tmp_path}/sites.yaml:3:12: error: sites.frdf.cores: input should be greater than 0"


def test_include_cycle(tmp_path: Path) -> None:
    write(tmp_path, "include: [b.yaml]\nx: 1\n", "a.yaml")
    write(tmp_path, "include: [a.yaml]\ny: 1\n", "b.yaml")
    with pytest.raises(SpecError) as info:
        load_campaign(tmp_path / "a.yaml")
    [diag] = info.value.diagnostics
    assert diag.text() == (f"{tmp_path}/b.yaml:1:11: error: include: include cycle: a.yaml -> b.yaml -> a.yaml "
                           "(remove one of the includes)")


def test_missing_include(tmp_path: Path) -> None:
    main = write(tmp_path, "include: [here.yaml, nothere.yaml]\n")
    write(tmp_path, "a: 1\n", "here.yaml")
    with pytest.raises(SpecError) as info:
        load_campaign(main)
    assert [d.text() for d in info.value.diagnostics] == [
        f"{tmp_path}/campaign.yaml:1:22: error: include: file not found: {tmp_path}/nothere.yaml"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1, 2\nb: 3\n", ":1:9: error: <root>: YAML syntax error: the flow sequence '[' opened at line 1, "
         "column 4 is not closed"),
        ("a: 1\na: 2\n", ":2:1: error: <root>: duplicate key 'a' (first given at line 1, column 1) "
         "(each key may appear once in a mapping)"),
        ("- 1\n- 2\n", ":1:1: error: <root>: the campaign file must be a mapping at the top level"),
        ("a: 1\n---\nb: 2\n", ":2:1: error: <root>: a second YAML document starts here"),
    ],
)
def test_yaml_errors_have_positions(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_campaign(path)
    [diag] = info.value.diagnostics
    assert diag.text().startswith(str(path) + expected)


def test_yaml_12_booleans_are_strings(tmp_path: Path) -> None:
    loaded = load_campaign(write(tmp_path, "a: yes\nb: true\nc: 010\n"))
    assert loaded.data == {"a": "yes", "b": True, "c": 10}
