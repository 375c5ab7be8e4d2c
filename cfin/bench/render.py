"""A ``cfin bench`` report as a text table."""
from __future__ import annotations

from cfin.complexity.breakdown import render_breakdown


def render(report: dict) -> str:
    """The report as a text table."""
    env = report["environment"]
    lines = [f"cfin bench: x{report['scale']} {report['mode']} (mask_eval {report['mask_eval']}), "
             f"batch {report['batch']} x 3 x "
             f"{report['lr_size'][0]}x{report['lr_size'][1]} LR, {report['runs']} runs after "
             f"{report['warmup']} warm-up, {env['device_name']}, torch {env['torch']}",
             f"network: {report['network']}",
             f"allocator: {report['allocator']['name']} {report['allocator'].get('settings', '')}",
             f"{'path':<18}{'median s':>10}{'IQR s':>9}{'min s':>9}{'peak MB':>10}{'x floor':>9}  equality"]
    for name, e in report["paths"].items():
        eq = "reference"
        if "max_abs_diff" in e:
            eq = f"max|diff| {e['max_abs_diff']:.2e}"
            if "grad_rel_diff" in e:
                eq += f", grad rel {e['grad_rel_diff']:.2e}"
            eq += "" if e["equal"] else "  (differs: not the same function at these tolerances)"
        peak = "-" if e.get("peak_mb") is None else f"{e['peak_mb']:.0f}"
        lines.append(f"{name:<18}{e['median_s']:>10.3f}{e['iqr_s']:>9.3f}{e['min_s']:>9.3f}{peak:>10}"
                     f"{e['over_floor']:>9.2f}  {eq}")
    fl = report["floor"]
    lines.append(f"compute floor: {fl['multi_adds'] / 1e9:.1f}G MACs / {fl['peak']['peak_macs_per_s'] / 1e9:.0f}G "
                 f"MAC/s = {report['floor_s']:.3f} s (matmul {fl['peak']['matmul']['shape']}: "
                 f"{fl['peak']['matmul']['macs_per_s'] / 1e9:.0f}G MAC/s; conv3x3 {fl['peak']['conv3x3']['shape']}: "
                 f"{fl['peak']['conv3x3']['macs_per_s'] / 1e9:.0f}G MAC/s)")
    paired = fl.get("paired")
    if paired and paired["macs_per_s_rounds"]:
        rates = paired["macs_per_s_rounds"]
        over = ", ".join(f"{name} {e['over_floor_paired']:.2f}x" for name, e in report["paths"].items()
                         if "over_floor_paired" in e)
        lines.append(f"paired floor ({paired['kernel']} timed around each round, {min(rates) / 1e9:.0f}-"
                     f"{max(rates) / 1e9:.0f}G MAC/s): median over rounds {over}")
    noise = report["paths"]["faithful"].get("float32_noise")
    if noise:
        lines.append(f"float32 noise ({noise['method']}): max|diff| {noise['max_abs_diff']:.2e}"
                     + (f", grad rel {noise['grad_rel_diff']:.2e}" if "grad_rel_diff" in noise else ""))
    issue = [f"{name} {e['host_issue_median_s'] * 1e3:.1f} ms ({e['host_issue_share']:.2f})"
             for name, e in report["paths"].items() if "host_issue_median_s" in e]
    if issue:
        lines.append("host time to issue a call (median; its share of the call's GPU time, near 1: bound by the "
                     "host's launches): " + ", ".join(issue))
    for name, e in report["paths"].items():
        if e.get("precision", "float32") != "float32":
            own = fl["by_precision"][e["precision"]]
            lines.append(f"{name}: {e['precision']} peak {own['peak_macs_per_s'] / 1e9:.0f}G MAC/s, floor "
                         f"{own['floor_s']:.4f} s; {e['over_own_floor']:.2f}x its own floor")
    for name, e in report["paths"].items():
        if "breakdown" in e:
            lines.extend(render_breakdown(name, e["breakdown"], fl["peak"]["peak_macs_per_s"]))
        elif "breakdown_skipped" in e:
            lines.append(f"{name}: no breakdown ({e['breakdown_skipped']})")
    mem = "n/a" if report["memory_ratio"] is None else f"{report['memory_ratio']:.2f}"
    lines.append(f"speedup (faithful / fast): {report['speedup']:.2f}x; memory fast / faithful: {mem}")
    if report.get("tensor_memory_ratio") is not None:
        held = ", ".join(f"{name} {e['tensor_peak_mb']:.0f}" for name, e in report["paths"].items()
                         if e.get("tensor_peak_mb") is not None)
        lines.append(f"live tensors at the peak (MB, torch's CPU allocator, a second call): {held}; "
                     f"fast / faithful: {report['tensor_memory_ratio']:.2f}")
    if "checkpoint_memory_ratio" in report:
        ck = report["checkpoint_memory_ratio"]
        ckt = report.get("checkpoint_tensor_memory_ratio")
        lines.append(f"fast+checkpoint: speedup {report['checkpoint_speedup']:.2f}x, memory / faithful: "
                     f"{'n/a' if ck is None else f'{ck:.2f}'}"
                     + ("" if ckt is None else f" (live tensors {ckt:.2f})"))
    return "\n".join(lines)
