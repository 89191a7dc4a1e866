"""PNG charts for `hotline simulate` and `hotline plan` (matplotlib, Agg backend).

matplotlib is imported inside the functions: importing this module costs nothing, and the web
processes, which never draw, never load it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callqueue.planning.daysim import SimResult
    from callqueue.planning.staffing import StaffingPlan

_COLOURS = {"ours": "#1f77b4", "fcfs": "#7f7f7f", "strict": "#d62728"}
_TIER_COLOURS = ("#9467bd", "#1f77b4", "#2ca02c", "#ff7f0e", "#8c564b", "#17becf")


def _figure(rows: int, height: float) -> Any:
    """A figure with `rows` stacked axes sharing the x axis, on the Agg canvas (no display, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, list(axes)


def _hours(n: int) -> list[float]:
    return [(i + 0.5) / 4 for i in range(n)]  # interval midpoints, in hours since local midnight


def _save(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def policy_chart(results: Mapping[str, SimResult], tiers: Sequence[str], intervals: int, path: str | Path,
                 title: str) -> Path:
    """Waits over the day per tier (one panel each) and policy: mean (solid) and maximum (dashed) answered wait."""
    from callqueue.planning.policies import LABELS, wait_series

    fig, axes = _figure(len(tiers), 2.3 * len(tiers) + 0.8)
    x = _hours(intervals)
    series = {(p, t): wait_series(res, t, intervals) for p, res in results.items() for t in tiers}
    used = [i for i in range(intervals) if any(mean[i] is not None for mean, _ in series.values())]
    for ax, tier in zip(axes, tiers, strict=True):
        for policy in results:
            mean, peak = series[(policy, tier)]
            colour = _COLOURS.get(policy)
            ax.plot(x, [float("nan") if v is None else v for v in mean], color=colour, lw=1.6,
                    label=f"{LABELS.get(policy, policy)}: mean")
            ax.plot(x, [float("nan") if v is None else v for v in peak], color=colour, lw=0.9, ls="--",
                    label=f"{LABELS.get(policy, policy)}: max")
        ax.set_ylabel("wait (s)")
        ax.set_title(tier, loc="left", fontsize=10)
        ax.grid(alpha=0.3)
    if used:
        axes[-1].set_xlim(min(used) / 4, (max(used) + 1) / 4)
    axes[-1].set_xlabel("time of day (h), by the quarter hour the caller joined the queue")
    axes[0].legend(fontsize=7, ncol=3, loc="upper left")
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def plan_chart(plan: StaffingPlan, path: str | Path, title: str) -> Path:
    """Agents per interval (Erlang C and planned) over the forecast calls, and the simulated service levels."""
    fig, (top, bottom) = _figure(2, 7.5)
    rows = plan.intervals
    x = _hours(len(rows))
    width = 0.25 * 0.9
    calls_ax = top.twinx()
    calls_ax.bar(x, [p.calls for p in rows], width=width, color="#dddddd", label="forecast calls")
    calls_ax.set_ylabel("calls per quarter hour")
    top.set_zorder(calls_ax.get_zorder() + 1)
    top.patch.set_visible(False)
    top.step(x, [p.erlang_agents for p in rows], where="mid", color="#7f7f7f", ls="--", label="Erlang C")
    top.step(x, [p.agents for p in rows], where="mid", color="#1f77b4", lw=1.8, label="planned (simulated)")
    top.set_ylabel("agents")
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    for k, (tier, target) in enumerate(plan.targets.items()):
        colour = _TIER_COLOURS[k % len(_TIER_COLOURS)]
        values = [p.service_level.get(tier) for p in rows]
        bottom.plot(x, [float("nan") if v is None else v for v in values], marker=".", lw=0.8, color=colour,
                    label=f"{tier} (target {target.goal:.0%} in {target.within_s:g} s)")
        bottom.axhline(target.goal, color=colour, lw=0.8, ls=":")
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("simulated service level")
    bottom.set_xlabel("time of day (h)")
    bottom.legend(fontsize=7, ncol=2, loc="lower left")
    bottom.grid(alpha=0.3)
    busy = [p.index for p in rows if p.calls > 0 or p.agents > 0]
    if busy:
        bottom.set_xlim(min(busy) / 4, (max(busy) + 1) / 4)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)
