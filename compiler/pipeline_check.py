"""Stage subsets checked against the real pipeline, where its files are available.

`pipeline_problems` reads `campaign.pipeline` with lsst-pipe-base (an optional dependency,
imported only here, only when called) and checks every `stages[].subset` the way
`Pipeline.from_uri("<pipeline>#<subset>")` will read it at the site:

- a single word is a labeled subset or a task label of the pipeline;
- `a,b,c` is a list of labeled subsets and/or task labels;
- `a..b` is a range of task labels (both ends must be task labels; pipe_base orders the range
  with the task classes, which this check does not import).

An unknown label is an error at the stage's `subset` value, its hint naming the closest label
and the pipeline's labeled subsets. A subset that exists but holds no task (a pipeline that
excludes the subset's tasks where it imports them, such as FGCM in LSSTCam/DRP.yaml at
w.2025.30) is an error too: the stage would build an empty quantum graph.

What is not checked: whether `datasets[].type` is an output of a task of its producing stage.
Connections (dataset type names) live in the task classes: `Pipeline.to_graph()` imports every
task class and instantiates its config (`TaskImportMode.DO_NOT_IMPORT` exists only for reading
a saved PipelineGraph), so it needs the whole science stack, not lsst-pipe-base from PyPI.

When the pipeline cannot be read here (lsst-pipe-base missing, an environment variable of
the pipeline's path or of one of its imports not set, a file missing, a remote URI), the result
is one warning at `campaign.pipeline` saying why the subsets were not checked and how to enable
the check. A pipeline file that does not parse is an error there, with the first line of the
parser's message.

Environment: `$NAME`/`${NAME}` in `campaign.pipeline` are expanded from `environ` (default
`os.environ`) here. pipe_base resolves the pipeline's own imports (`$DRP_PIPE_DIR/...`,
`$ANALYSIS_TOOLS_DIR/...`) through `os.path.expandvars` and lsst.resources' `eups://` scheme
(`<PRODUCT>_DIR`), both of which read `os.environ`; so while the pipeline is parsed (and only
then, under a lock) `os.environ` holds exactly `environ`, and is restored afterwards.

A relative `campaign.pipeline` path is read relative to the campaign file's folder.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import Diagnostic, did_you_mean
from .loader import LoadedCampaign
from .model import Campaign

_ENV_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_LOCAL_SCHEMES = {"file", "eups", "resource"}
_NO_PROXY = re.compile(r"No proxy ResourcePath available for eups://([A-Za-z0-9_.-]+)(/\S*)?")
_ENV_LOCK = threading.Lock()
_NOT_INSTALLED = "lsst-pipe-base is not installed"

LISTED_SUBSETS = 30  # labeled subsets a hint names at most
MESSAGE_LIMIT = 200  # characters of a parser's message a diagnostic shows
ENABLE_HINT = ("to check stage subsets against the pipeline: pip install lsst-pipe-base, and set "
               "DRP_PIPE_DIR (and ANALYSIS_TOOLS_DIR, MEAS_EXTENSIONS_MULTIPROFIT_DIR, ... for the "
               "pipeline's imports) to checkouts of those packages at the campaign's stack")


@dataclass(frozen=True)
class _Pipeline:
    """What the check needs of one parsed pipeline."""

    resolved: str  # the file that was read (for hints)
    tasks: frozenset[str]
    subsets: dict[str, frozenset[str]]


class _NotChecked(Exception):
    """The pipeline cannot be read here: a reason for the one warning."""


class _Unparsable(Exception):
    """The pipeline file was read but pipe_base refused it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _one_line(text: object, limit: int = MESSAGE_LIMIT) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    first = "".join(ch if ch.isprintable() else "?" for ch in first)
    return first if len(first) <= limit else first[:limit] + "..."


def _expand(value: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """`value` with $NAME / ${NAME} expanded; the names that are not set (or empty)."""
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        got = environ.get(name)
        if not got:
            if name not in missing:
                missing.append(name)
            return m.group(0)
        return got

    return _ENV_REF.sub(sub, value), missing


@contextmanager
def _process_environ(environ: Mapping[str, str] | None) -> Iterator[None]:
    """os.environ holds exactly `environ` inside (nothing changes for None)."""
    if environ is None:
        yield
        return
    wanted = {str(k): str(v) for k, v in environ.items()}
    with _ENV_LOCK:
        saved = dict(os.environ)
        try:
            _set_environ(wanted)
            yield
        finally:
            _set_environ(saved)


def _set_environ(values: Mapping[str, str]) -> None:
    for key in [k for k in os.environ if k not in values]:
        del os.environ[key]
    for key, value in values.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def _pipe_base_missing() -> str | None:
    """Why lsst.pipe.base cannot be imported (cheaply, without importing it), or None."""
    if "lsst.pipe.base" in sys.modules:
        return None if sys.modules["lsst.pipe.base"] is not None else _NOT_INSTALLED
    import importlib.util

    try:
        found = importlib.util.find_spec("lsst.pipe.base")
    except (ImportError, ValueError):
        found = None
    return None if found is not None else _NOT_INSTALLED


def _missing_import(exc: FileNotFoundError) -> str | None:
    """A reason for the warning when a file the pipeline imports is not there, else None."""
    text = str(exc)
    m = _NO_PROXY.search(text)
    if m:  # lsst.resources turned an unexpanded $PRODUCT_DIR/... into eups://product/...
        var = m.group(1).upper().replace(".", "_") + "_DIR"
        return (f"the pipeline imports ${{{var}}}{m.group(2) or ''} and {var} is not set")
    name = exc.filename if isinstance(exc.filename, str) else None
    if name is None:
        m2 = re.search(r"'([^']+)'", text)
        name = m2.group(1) if m2 else None
    if name:
        refs = [a or b for a, b in _ENV_REF.findall(name)]
        if refs:
            return (f"the pipeline imports {_one_line(name)} and {', '.join(dict.fromkeys(refs))} "
                    f"{'is' if len(refs) == 1 else 'are'} not set")
        return f"{_one_line(name)}, which the pipeline imports, does not exist"
    return None


def _read_pipeline(uri: str, environ: Mapping[str, str] | None) -> _Pipeline:
    """Parse the pipeline at an expanded local URI with pipe_base (labels only, no task import)."""
    try:
        from lsst.pipe.base import Pipeline
        from lsst.resources import ResourcePath
    except Exception as exc:  # noqa: BLE001 - a broken optional dependency: a reason, not a crash
        raise _NotChecked(f"lsst.pipe.base cannot be imported ({type(exc).__name__}: "
                          f"{_one_line(exc)})") from None
    with _process_environ(environ), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            where = ResourcePath(uri)
            if not where.exists():
                raise _NotChecked(f"{uri} does not exist")
            pipeline = Pipeline.from_uri(where)
            resolved = str(getattr(where, "_proxy", None) or where)
            tasks = frozenset(pipeline.task_labels)
            subsets = {str(k): frozenset(v) for k, v in pipeline.subsets.items()}
        except (_NotChecked, _Unparsable):
            raise
        except FileNotFoundError as exc:
            reason = _missing_import(exc)
            if reason is None:
                raise _Unparsable(_one_line(exc) or type(exc).__name__) from None
            raise _NotChecked(reason) from None
        except Exception as exc:  # noqa: BLE001 - the pipeline file is user input
            raise _Unparsable(_one_line(exc) or type(exc).__name__) from None
    return _Pipeline(resolved.removeprefix("file://"), tasks, subsets)


def _locate_pipeline(value: str, loaded: LoadedCampaign, env: Mapping[str, str]) -> str:
    """The expanded, local URI of campaign.pipeline; raises _NotChecked when that is impossible."""
    if "#" in value:
        raise _Unparsable(f"the pipeline's path holds '#{value.split('#', 1)[1]}'",
                          "name the pipeline file only; each stage's labels belong in "
                          "stages[].subset")
    expanded, missing = _expand(value, env)
    if missing:
        names = ", ".join(missing)
        raise _NotChecked(f"{names} {'is' if len(missing) == 1 else 'are'} not set")
    m = _SCHEME.match(expanded)
    if m and m.group(1).lower() not in _LOCAL_SCHEMES:
        raise _NotChecked(f"the pipeline is at a remote URI ({m.group(1)}://), which validation "
                          "does not read")
    if not m:
        path = Path(expanded).expanduser()
        if not path.is_absolute():
            path = loaded.path.parent / path
        path = Path(os.path.normpath(path))
        if not path.exists():
            raise _NotChecked(f"{path} does not exist")
        expanded = str(path)
    return expanded


def _hint(word: str, pipeline: _Pipeline, display: str, *, tasks_only: bool = False) -> str:
    names = set(pipeline.tasks) if tasks_only else set(pipeline.tasks) | set(pipeline.subsets)
    parts: list[str] = []
    close = did_you_mean(word, names)
    if not (close and close.startswith("did you mean")):
        # no close spelling: a label that starts like it (step2c-recalibrate-healpix -> step2cde)
        head = re.split(r"[-_.]", word, maxsplit=1)[0]
        alike = sorted((n for n in names if len(head) >= 4 and n.startswith(head)),
                       key=lambda n: -difflib.SequenceMatcher(None, word, n).ratio())
        close = f"did you mean '{alike[0]}'?" if alike else None
    if close:
        others = [c for c in difflib.get_close_matches(word, sorted(names), n=4, cutoff=0.6)
                  if f"'{c}'" not in close][:3]
        also = f" Also close: {', '.join(repr(o) for o in others)}" if others else ""
        parts.append(close + also)
    short = display.rsplit("/", 2)
    where = "/".join(short[-2:]) if len(short) > 1 else display
    n_tasks = len(pipeline.tasks)
    if tasks_only:
        close_tasks = difflib.get_close_matches(word, sorted(pipeline.tasks), n=8, cutoff=0.4)
        such = f", such as {', '.join(close_tasks)}" if close_tasks else ""
        parts.append(f"a range a..b runs between two of the {n_tasks} task labels of {where}{such}")
    else:
        subsets = sorted(pipeline.subsets)
        listed = ", ".join(subsets[:LISTED_SUBSETS])
        more = f" and {len(subsets) - LISTED_SUBSETS} more" if len(subsets) > LISTED_SUBSETS else ""
        if subsets:
            parts.append(f"subsets of {where}: {listed}{more}; or any of its {n_tasks} task labels")
        else:
            parts.append(f"{where} defines no labeled subsets; use its {n_tasks} task labels")
    parts.append(f"read from {pipeline.resolved}")
    return "; ".join(parts).replace("?; ", "? ")


Problem = tuple[str, str | None]  # message, hint


def _stage_labels(subset: str, pipeline: _Pipeline,
                  display: str) -> tuple[list[Problem], set[str] | None]:
    """(message, hint) for each problem of one stage's subset, read as pipe_base reads it, and
    its task labels (None for a range, whose tasks only the task classes can order)."""
    out: list[Problem] = []
    if "," in subset and ".." in subset:
        return [(f"subset {subset!r} mixes a list (a,b) and a range (a..b); pipe_base takes one "
                 "or the other",
                 "write either task labels and subsets separated by commas, or one range "
                 "a..b")], None
    if ".." in subset:
        ends = subset.split("..")
        if len(ends) > 2:
            return [(f"subset {subset!r} holds more than one range; pipe_base takes one",
                     None)], None
        for which, end in zip(("start", "end"), ends, strict=True):
            if end and end not in pipeline.tasks:
                what = (" (a labeled subset; a range runs between task labels)"
                        if end in pipeline.subsets else "")
                out.append((f"the {which} of the range {subset!r}, {end!r}, is not a task label of "
                            f"{display}{what}", _hint(end, pipeline, display, tasks_only=True)))
        return out, None
    items = subset.split(",")
    if any(not item for item in items):
        out.append((f"subset {subset!r} holds an empty label (a leading, trailing or doubled "
                    "comma)", "separate labels with single commas"))
    labels: set[str] = set()
    for item in dict.fromkeys(i for i in items if i):
        if item in pipeline.subsets:
            labels |= pipeline.subsets[item]
        elif item in pipeline.tasks:
            labels.add(item)
        else:
            where = f" (in {subset!r})" if len(items) > 1 else ""
            out.append((f"{item!r}{where} is neither a labeled subset nor a task label of "
                        f"{display}", _hint(item, pipeline, display)))
    if not out and not labels:
        empty = ", ".join(repr(i) for i in items if i in pipeline.subsets)
        out.append((f"subset {subset!r} holds no task in {display}: the pipeline leaves out every "
                    f"task of {empty} (e.g. with an import's exclude list), so the stage would "
                    "build an empty quantum graph",
                    "choose a subset that runs something, or list task labels; read from "
                    f"{pipeline.resolved}"))
    return out, labels


def pipeline_problems(spec: Campaign, loaded: LoadedCampaign, *,
                      environ: Mapping[str, str] | None = None) -> list[Diagnostic]:
    """Check every stage's subset against the labels and labeled subsets of campaign.pipeline.

    Returns [] when every subset names labels of the pipeline; an error per unknown label (or
    empty subset) at `stages[i].subset`; one warning at `campaign.pipeline` when the pipeline
    cannot be read here (why, and how to enable the check); one error there when pipe_base
    cannot parse it. `environ` (default os.environ) resolves the pipeline's $NAME references
    and those of its imports.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    value = spec.campaign.pipeline
    at = loaded.source.locate(("campaign", "pipeline"))
    uri = value
    try:
        try:
            uri = _locate_pipeline(value, loaded, env)
        except _NotChecked as exc:
            missing = _pipe_base_missing()
            raise _NotChecked(f"{exc}; {missing}" if missing else str(exc)) from None
        missing = _pipe_base_missing()
        if missing:
            raise _NotChecked(missing)
        pipeline = _read_pipeline(uri, environ)  # once: every stage's subset is looked up in it
    except _NotChecked as exc:
        return [Diagnostic("warning", "campaign.pipeline",
                           f"stage subsets not checked against the pipeline: {exc}", at,
                           ENABLE_HINT)]
    except _Unparsable as exc:
        return [Diagnostic("error", "campaign.pipeline",
                           f"lsst-pipe-base cannot read the pipeline: {exc}", at,
                           exc.hint or f"fix the pipeline file {uri} (or one it imports)")]
    out: list[Diagnostic] = []
    for i, stage in enumerate(spec.stages):
        where = loaded.source.locate(("stages", i, "subset"))
        problems, labels = _stage_labels(stage.subset, pipeline, value)
        for message, hint in problems:
            out.append(Diagnostic("error", f"stages[{i}].subset", message, where, hint))
        for label in stage.tasks:
            if problems or labels is None or label in labels:
                continue
            known = ", ".join(sorted(labels)[:LISTED_SUBSETS])
            out.append(Diagnostic(
                "error", f"stages[{i}].tasks.{label}",
                f"{label!r} is not a task of the stage's subset {stage.subset!r} in {value}, so "
                "its values would reach no job",
                loaded.source.locate(("stages", i, "tasks", label), key=True),
                f"the subset's tasks: {known}"))
    return sorted(out, key=Diagnostic.sort_key)


def _cli(argv: list[str]) -> int:  # pragma: no cover - python -m compiler.pipeline_check FILE...
    from .errors import SpecError
    from .loader import load_campaign
    from .validate import validate_loaded

    status = 0
    for name in argv:
        try:
            loaded = load_campaign(name)
            spec, _ = validate_loaded(loaded)
        except SpecError as exc:
            print(exc)
            status = 1
            continue
        for d in pipeline_problems(spec, loaded):
            print(d.text())
            status = max(status, 1 if d.severity == "error" else 0)
    return status


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_cli(sys.argv[1:]))


__all__ = ["pipeline_problems"]
