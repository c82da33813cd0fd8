"""`drpc status --format table`: the status model as plain text for a terminal.

Every unknown cell is followed by a note number; the notes at the end say why.
"""

from __future__ import annotations

from collections.abc import Sequence

from .cells import (
    Cell,
    arrived_cell,
    comparison_cell,
    crosscheck_cell,
    lag_cell,
    ranges,
    rule_cell,
    sent_cell,
    stage_grid,
    step_cell,
    view,
    when,
)
from .model import StatusReport


class _Notes:
    def __init__(self) -> None:
        self.items: list[str] = []

    def text(self, cell: Cell) -> str:
        if cell.tone != "unknown" or not cell.note:
            return cell.text
        if cell.note not in self.items:
            self.items.append(cell.note)
        return f"{cell.text} [{self.items.index(cell.note) + 1}]"


def _columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header).rstrip(), *(fmt.format(*r).rstrip() for r in rows)]


def render_table(report: StatusReport) -> str:
    notes = _Notes()
    out = [f"drpc status of {report.campaign} ({view(report)}), {when(report)}", ""]
    sites, grid = stage_grid(report)
    out += ["Jobs (stage x site)"]
    out += _columns(["stage", *sites], [[name, *(notes.text(c) for c in cells)]
                                        for name, cells in grid]) if grid else ["  none"]
    out.append("")
    out.append("Transfers (rule: state locks OK/REPLICATING/STUCK)")
    rows = [[t.id, notes.text(rule_cell(t)), notes.text(sent_cell(t)),
             notes.text(arrived_cell(t))] for t in report.transfers]
    out += _columns(["transfer", "rule", "sent", "arrived"], rows) if rows else ["  none"]
    out.append("")
    out.append("ctrl_ingestd consumer lag")
    rows = [[x.site, x.topic, x.group_id, notes.text(lag_cell(x))] for x in report.lag]
    out += _columns(["site", "topic", "group", "lag"], rows) if rows else ["  none"]
    out.append("")
    if report.crosscheck is not None:
        x = report.crosscheck
        out.append(f"Cross-check at {x.central}: {notes.text(crosscheck_cell(x))}")
        rows = [[str(c.tract), c.dataset_type, comparison_cell(c).text,
                 comparison_cell(c).note or ""] for c in x.comparisons]
        out += _columns(["tract", "dataset type", "result", "why"], rows) if rows else []
        out.append("")
    out.append("Next steps (numbers of sites/<site>/RUNBOOK.md)")
    for s in report.sites:
        ready = [st for st in s.steps if st.state == "ready"]
        failed = [st for st in s.steps if st.state == "failed"]
        running = [st for st in s.steps if st.state == "running"]
        line = (f"  {s.site}: can start " + ", ".join(f"{st.number} {st.title}" for st in ready)
                if ready else f"  {s.site}: nothing can start")
        if running:
            line += "; running " + ", ".join(f"{st.number}" for st in running)
        if failed:
            line += "; FAILED " + ", ".join(f"{st.number} {st.title}" for st in failed)
        out.append(line)
        blocked = [st for st in s.steps if st.state == "blocked"]
        if blocked:
            first = blocked[0]
            out.append(f"    blocked: {ranges(s.blocked)} (step {first.number} "
                       f"{step_cell(first).note or ''})")
    out.append("")
    out.append("Sources")
    for src in report.sources:
        where = f" {src.site}" if src.site else ""
        out.append(f"  {src.source}{where}: " + ("up" if src.up else notes.text(
            Cell("unknown", "unknown", src.reason))))
    if report.attention:
        out += ["", "Needs attention (exit 5)"] + [f"  - {a}" for a in report.attention]
    else:
        out += ["", "All well: nothing needs attention."]
    if notes.items:
        out += ["", "Unknown because"] + [f"  [{i}] {n}" for i, n in enumerate(notes.items, 1)]
    return "\n".join(out) + "\n"


__all__ = ["render_table"]
