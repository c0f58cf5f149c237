"""Evaluation outputs: the printed table, scores.json, and the quality–latency plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

__all__ = ["format_table", "write_scores", "plot_quality_latency"]

# Columns of the printed / Markdown table: (row key, header, format).
_COLUMNS = (
    ("setting", "setting", "{}"),
    ("n_sentences", "n", "{}"),
    ("BLEU", "BLEU", "{:.2f}"),
    ("chrF", "chrF", "{:.2f}"),
    ("WER", "WER", "{:.2f}"),
    ("AL", "AL", "{:.2f}"),
    ("LAAL", "LAAL", "{:.2f}"),
    ("DAL", "DAL", "{:.2f}"),
    ("AP", "AP", "{:.3f}"),
    ("AL_CA", "AL_CA", "{:.0f}"),
    ("LAAL_CA", "LAAL_CA", "{:.0f}"),
    ("s_per_sentence", "s/sent", "{:.2f}"),
    ("real_time_factor", "RTF", "{:.2f}"),
    ("cpu_real_time_factor", "CPU-RTF", "{:.3f}"),
    ("compute_ratio", "×offline", "{:.2f}"),
    ("token_ratio", "tok×offline", "{:.2f}"),
)


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return "–"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return fmt.format(value)


def format_table(rows: Sequence[dict[str, Any]], markdown: bool = False) -> str:
    """Rows as an aligned text table (or a Markdown table); columns no row has are left out."""
    columns = [c for c in _COLUMNS if any(c[0] in row for row in rows)]
    cells = [[header for _, header, _ in columns]]
    cells += [[_cell(row, key, fmt) for key, _, fmt in columns] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in cells]
        lines.insert(1, "|" + "|".join("---" for _ in columns) + "|")
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in cells)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_scores(path: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> None:
    """scores.json: {"meta": how the run was made, "rows": one score row per setting} (NaN → null)."""
    Path(path).write_text(json.dumps(_json_safe({"meta": meta, "rows": list(rows)}), indent=2,
                                     ensure_ascii=False) + "\n", encoding="utf-8")


_SHORT = {"low_bound": "L", "top_bound": "U", "delta": "δ", "alpha": "α"}


def _varying_params(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Parameter names whose values differ between a policy's settings (what labels its points)."""
    keys = list(dict.fromkeys(k for row in rows for k in row.get("params", {})))
    return [k for k in keys if len({repr(row.get("params", {}).get(k)) for row in rows}) > 1]


def plot_quality_latency(
    rows: Sequence[dict[str, Any]], path: Path, quality: str = "BLEU", latency: str = "AL", title: str = ""
) -> None:
    """A PNG with one quality–latency curve per policy (points sorted by latency); a policy with a
    single setting (offline) is one marker."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=100)
    policies = list(dict.fromkeys(row["policy"] for row in rows))
    for policy in policies:
        points = sorted(
            (row[latency], row[quality], row["setting"]) for row in rows
            if row["policy"] == policy and row.get(latency) is not None and row.get(quality) is not None
            and not math.isnan(row[latency]) and not math.isnan(row[quality])
        )
        if not points:
            continue
        xs, ys, labels = zip(*points)
        ax.plot(xs, ys, marker="o", linestyle="-" if len(xs) > 1 else "none", label=policy)
        names = _varying_params([row for row in rows if row["policy"] == policy])
        for x, y, label in points:
            row = next(r for r in rows if r["setting"] == label)
            short = ",".join(str(row.get("params", {}).get(key)) for key in names)
            if short:
                ax.annotate(f"{'/'.join(_SHORT.get(k, k) for k in names)}={short}" if len(names) == 1 else short,
                            (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(f"{latency} (source words)")
    ax.set_ylabel(quality)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    legend_note = "; ".join(
        f"{p}: " + "/".join(_SHORT.get(k, k) for k in _varying_params([r for r in rows if r["policy"] == p]))
        for p in policies if len(_varying_params([r for r in rows if r["policy"] == p])) > 1
    )
    if legend_note:
        ax.text(0.01, 0.01, f"point labels — {legend_note}", transform=ax.transAxes, fontsize=7, alpha=0.7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
