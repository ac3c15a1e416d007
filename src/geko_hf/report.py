"""Human-readable efficiency report: passes and tokens actually trained vs the same epochs on full data."""

from __future__ import annotations

from .buckets import BUCKET_NAMES


def format_report(report: dict) -> str:
    full = report["full_data"]
    rows = [
        ("forward sample passes", report["forward_sample_passes"], full["forward_sample_passes"]),
        ("backward sample passes", report["backward_sample_passes"], full["backward_sample_passes"]),
        ("model forward calls", report["model_forward_calls"], full["model_forward_calls"]),
        ("supervised tokens", report["supervised_tokens"], full["supervised_tokens"]),
    ]
    bar = "=" * 72
    lines = [bar, "  GEKO efficiency report (counted, not estimated)", bar,
             f"  {'':26}{'GEKO':>12}{'full data':>12}{'saved':>10}"]
    for name, used, ref in rows:
        saved = 100.0 * (1 - used / ref) if ref else 0.0
        lines.append(f"  {name:26}{used:>12,}{ref:>12,}{saved:>9.1f}%")
    lines.append(f"  samples: {report['num_samples']:,}   epochs: {report['epochs']:g}   pruned: {report['pruned']:,}")
    skipped = report.get("observations_skipped", {})
    if any(skipped.values()):
        lines.append(f"  passes without an observation: {skipped['no_supervised_token']:,} with no supervised token, "
                     f"{skipped['non_finite']:,} with a non-finite loss (trained, not recorded)")
    lines.append("")
    lines.append(f"  {'epoch':>5} {'phase':>12} {'passes':>8} " + " ".join(f"{n:>7}" for n in BUCKET_NAMES))
    for r in report["history"]:
        lines.append(f"  {r['epoch']:>5} {r['phase']:>12} {r['sample_passes']:>8} "
                     + " ".join(f"{r[n]:>7}" for n in BUCKET_NAMES))
    lines.append("  (bucket counts are the partition at the END of each epoch, which plans the next one)")
    lines.append(bar)
    return "\n".join(lines)
