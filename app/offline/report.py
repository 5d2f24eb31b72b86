"""Evaluation reports: the numbers (report.json), the table (report.md), the plot (PNG)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.offline import evaluation as ev
from app.selection.labelled import Labelled
from app.selection.utility import PRESETS, choose_batch

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Matrix = ev.Matrix


@dataclass
class Report:
    prompts: int
    models: list[str]
    has_costs: bool
    singles: list[ev.Point]
    oracle: ev.Point
    router: list[ev.Point]
    knn: list[ev.Point]
    presets: dict[str, ev.Point]
    knn_best: ev.Point
    metrics: dict[str, float | None] = field(default_factory=dict)
    task_accuracy: dict[str, dict[str, float]] = field(default_factory=dict)

    def markdown(self) -> str:
        def row(label: str, p: ev.Point, bold: bool = False) -> str:
            quality = f"**{p.quality:.4f}**" if bold else f"{p.quality:.4f}"
            return f"| {label} | {quality} | {f'{p.cost:.6f}' if self.has_costs else '-'} |"

        lines = [f"Prompts: {self.prompts}; models: {len(self.models)}.", ""]
        if not self.has_costs:
            lines += ["The data has no costs: quality only.", ""]
        lines += ["| policy | quality | cost per query (USD) |", "|---|---|---|"]
        lines += [row(f"single: {p.label}", p) for p in sorted(self.singles, key=_by_cost)]
        lines.append(row("oracle (best per prompt)", self.oracle))
        lines.append(row("plain kNN, most accurate", self.knn_best))
        lines += [row(f"**Switchboard `{n}`**", p, True) for n, p in self.presets.items()]
        lines += ["", "| metric | value |", "|---|---|"]
        for key, value in self.metrics.items():
            lines.append(f"| {key} | {'n/a' if value is None else f'{value:.4f}'} |")
        if self.task_accuracy:
            tasks = sorted(next(iter(self.task_accuracy.values())))
            lines += ["", "Per task (the `task` field is used for this table only):", "",
                      "| policy | " + " | ".join(tasks) + " | task mean |",
                      "|---|" + "---|" * (len(tasks) + 1)]  # fmt: skip
            for policy, by_task in self.task_accuracy.items():
                cells = " | ".join(f"{by_task[t]:.4f}" for t in tasks)
                lines.append(f"| {policy} | {cells} | {np.mean([by_task[t] for t in tasks]):.4f} |")
        return "\n".join(lines)

    def write(self, out: Path) -> list[str]:
        """Writes report.md, report.json and, with matplotlib installed, the plot; their names."""
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text("# Routing evaluation\n\n" + self.markdown() + "\n")
        (out / "report.json").write_text(json.dumps(asdict(self), indent=2))
        written = ["report.md", "report.json"]
        if plottable():
            plot(self, out / "cost_quality.png")
            written.append("cost_quality.png")
        return written


def _by_cost(point: ev.Point) -> float:
    return point.cost


def _task_accuracy(data: Labelled, picks: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    tasks = sorted(set(data.tasks))
    if len(tasks) < 2:
        return {}
    rows = np.arange(len(data.prompts))
    out = {}
    for policy, pick in picks.items():
        got = data.scores[rows, pick]
        out[policy] = {
            t: float(np.mean([g for g, k in zip(got, data.tasks, strict=True) if k == t]))
            for t in tasks
        }
    return out


def build_report(
    data: Labelled, router: tuple[Matrix, Matrix], knn: tuple[Matrix, Matrix]
) -> Report:
    """Score out-of-sample predictions ``(quality, cost)`` of the router and the kNN baseline."""
    costs = data.costs if data.has_costs else np.zeros_like(data.scores)
    weights = ev.sweep_weights(costs)
    router_curve = ev.curve(router[0], router[1], data.scores, costs, weights)
    knn_curve = ev.curve(knn[0], knn[1], data.scores, costs, weights)
    singles = ev.singles(data.scores, costs, data.models)
    eligible = np.isfinite(data.scores)
    rows = np.arange(len(data.prompts))
    presets, picks = {}, {}
    for name, weight in PRESETS.items():
        pick = choose_batch(router[0], router[1], weight, eligible)
        picks[f"Switchboard {name}"] = pick
        presets[name] = ev.Point(
            float(np.mean(costs[rows, pick])), float(np.mean(data.scores[rows, pick])), name
        )
    knn_pick = choose_batch(knn[0], knn[1], 0.0, eligible)
    picks["plain kNN"] = knn_pick
    knn_best = ev.Point(
        float(np.mean(costs[rows, knn_pick])), float(np.mean(data.scores[rows, knn_pick])), "kNN"
    )
    best = max(singles, key=lambda p: p.quality)
    for j, p in enumerate(singles):
        picks[f"single {p.label}"] = np.full(len(rows), j)
    report = Report(len(rows), data.models, data.has_costs, singles, ev.oracle(data.scores, costs),
                    router_curve, knn_curve, presets, knn_best)  # fmt: skip
    report.metrics = _metrics(report, best)
    if len(set(data.tasks)) > 1:
        report.metrics |= _task_metrics(data, router[0], costs, weights, report, best)
    report.task_accuracy = _task_accuracy(data, picks)
    return report


def _task_metrics(
    data: Labelled,
    quality: Matrix,
    costs: Matrix,
    weights: np.ndarray,
    report: Report,
    best: ev.Point,
) -> dict[str, float | None]:
    """What the router knows inside a task, and, with costs, the per-task label bound."""
    auc = ev.within_task_auc(quality, data.scores, data.tasks)
    metrics: dict[str, float | None] = {"within-task AUC of predicted quality (0.5 = none)": auc}
    if data.has_costs:
        bound = ev.task_mix_curve(data.scores, costs, data.tasks, weights)
        low, high = min(p.cost for p in report.singles), max(p.cost for p in report.singles)
        metrics |= {
            "router quality at half best single's cost": ev.quality_at_cost(
                report.router, best.cost / 2
            ),
            "bound, per-task mix on true labels: quality at half best single's cost": (
                ev.quality_at_cost(bound, best.cost / 2)
            ),
            "bound, per-task mix on true labels: AIQ": ev.aiq(bound, low, high),
        }
    return metrics


def _metrics(report: Report, best: ev.Point) -> dict[str, float | None]:
    low = min(p.cost for p in report.singles)
    high = max(p.cost for p in report.singles)
    top = max(report.router, key=lambda p: p.quality)
    metrics: dict[str, float | None] = {
        "router quality, most accurate setting": top.quality,
        "best single model quality": best.quality,
    }
    if report.has_costs:
        metrics |= {
            "AIQ router": ev.aiq(report.router, low, high),
            "AIQ plain kNN": ev.aiq(report.knn, low, high),
            "AIQ single-model hull (random mixes)": ev.aiq(report.singles, low, high),
            "router quality at best single's cost": ev.quality_at_cost(report.router, best.cost),
            "router cost at best single's quality (USD)": ev.cost_at_quality(
                report.router, best.quality
            ),
            "best single model cost (USD)": best.cost,
        }
    if len(report.models) == 2:
        metrics |= _two_model(report)
    return metrics


def _two_model(report: Report) -> dict[str, float | None]:
    weak, strong = sorted(report.singles, key=lambda p: p.quality)
    cost_span = strong.cost - weak.cost
    share = np.array(
        [(p.cost - weak.cost) / cost_span if cost_span else 0.0 for p in report.router]
    )
    quality = np.array([p.quality for p in report.router])
    out: dict[str, float | None] = {"APGR": ev.apgr(share, quality, weak.quality, strong.quality)}
    for x in (0.2, 0.5, 0.8):
        out[f"CPT({x:.0%})"] = ev.cpt(share, quality, weak.quality, strong.quality, x)
    return out


def plottable() -> bool:
    """Whether matplotlib (the ``offline`` extra) is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot(report: Report, path: Path) -> None:
    """The cost-quality chart; without cost data, a bar chart of quality per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    if report.has_costs:
        _cost_quality(report, ax)
    else:
        policies = [(p.label.split("/")[-1], p.quality) for p in report.singles]
        policies += [("plain kNN", report.knn_best.quality), ("oracle", report.oracle.quality)]
        policies += [(f"Switchboard {n}", p.quality) for n, p in report.presets.items()][:1]
        labels, values = zip(*sorted(policies, key=lambda lv: lv[1]), strict=True)
        colours = ["tab:blue" if lb.startswith("Switchboard") else "grey" for lb in labels]
        ax.barh(labels, values, color=colours)
        ax.set_xlabel("mean quality (the data has no costs)")
        ax.set_title("Quality: Switchboard vs. baselines")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cost_quality(report: Report, ax: Axes) -> None:
    for name, points, style in (
        ("Switchboard", report.router, "-o"),
        ("plain kNN", report.knn, "--s"),
    ):
        top = ev.hull(points)
        ax.plot([p.cost for p in top], [p.quality for p in top], style, label=name, markersize=3)
    mix = ev.hull(report.singles)
    ax.plot(
        [p.cost for p in mix], [p.quality for p in mix], ":", color="grey", label="random mixes"
    )
    for p in report.singles:
        ax.scatter(p.cost, p.quality, color="black", s=14)
        ax.annotate(p.label.split("/")[-1], (p.cost, p.quality), fontsize=7)
    ax.scatter(
        report.oracle.cost, report.oracle.quality, marker="*", s=120, color="gold", label="oracle"
    )
    ax.set_xlabel("mean cost per query (USD)")
    ax.set_ylabel("mean quality")
    ax.set_xscale("log")
    ax.legend(loc="lower right")
    ax.set_title("Cost-quality: Switchboard vs. baselines (hulls over a cost-weight sweep)")
