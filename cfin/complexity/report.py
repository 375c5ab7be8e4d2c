"""Every convention, memory and latency side by side: one JSON-ready dict and its readable table."""
from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from cfin.complexity.conventions import (CONVENTIONS, OFFICIAL_FULL, PAPER_PRINTED, TRAIN_BATCH, TRAIN_PATCH, UNIT,
                                         convention, default_lr_size, size_label)
from cfin.complexity.counts import Counts
from cfin.config import CFINConfig


def parse_conventions(names) -> tuple[str, ...]:
    """``"paper,full"`` or a list -> validated names in CONVENTIONS order; ``"all"`` -> every one."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(names)
    if names == ["all"]:
        return tuple(CONVENTIONS)  # a network that a convention cannot count drops it (build_report)
    for n in names:
        convention(n)
    return tuple(n for n in CONVENTIONS if n in names)


def build_report(config, lr_size: tuple[int, int], conventions=tuple(CONVENTIONS),
                 device: torch.device | None = None, measure: bool = True, runs: int = 20, warmup: int = 3,
                 dtype: str = "float32", train_batch: int = TRAIN_BATCH, train_patch: int = TRAIN_PATCH,
                 training_memory: bool = True, progress: bool = True) -> tuple[dict, dict[str, Counts]]:
    """The complexity report at LR ``lr_size``: (JSON-ready dict, Counts by convention).

    ``config``: a :class:`CFINConfig`, or a peer network from :func:`cfin.peers.build` (build it on
    the meta device: counts need no weights, and memory and latency build their own). A
    convention that cannot count the network (``own`` for CFIN) is left out and named.
    """
    from cfin.complexity import count
    from cfin.complexity.conventions import applies
    from cfin.complexity.counts import scale_of

    s = scale_of(config)
    peer = getattr(config, "peer", None)
    not_applicable = [n for n in conventions if not applies(n, config)]
    conventions = tuple(n for n in conventions if n not in not_applicable)
    measuring = measure and device is not None
    stages = tqdm(total=len(conventions) + (2 + training_memory if measuring else 0), desc="complexity",
                  unit="stage", disable=not progress, leave=False)
    counts: dict[str, Counts] = {}
    for name in conventions:
        stages.set_postfix_str(name)
        counts[name] = count(config, lr_size, name)
        stages.update(1)
    h, w = lr_size
    report = {
        "model": peer or "cfin",
        "scale": s,
        "input": [1, 3, h, w],
        "output": [1, 3, h * s, w * s],
        "unit": UNIT,
        "conventions": {n: c.to_dict() for n, c in counts.items()},
        "labels": {n: c.label for n, c in counts.items()},
    }
    if not_applicable:
        report["not_applicable"] = {n: ("CFIN's own rule is the paper convention" if peer is None
                                        else "this method has no counting rule of its own here")
                                    for n in not_applicable}
    default = tuple(lr_size) == default_lr_size(s)
    if peer is not None:
        from cfin.peers import spec

        p = spec(peer)
        report["peer"] = {"title": p.title, "paper": p.paper, "source": str(p.source),
                          "trained_range": p.trained_range, "printed_counting": p.printed_counting}
    else:
        report["config"] = config.to_dict()
    if peer is None and s in PAPER_PRINTED:
        report["paper_printed"] = dict(PAPER_PRINTED[s], at_input=[1, 3, *default_lr_size(s)],
                                       applies=default and _is_preset(config), same_model=_is_preset(config),
                                       source="paper Table I / II; torchsummaryX on the official code "
                                              "(REFERENCE.md, Counting)")
        report["official_full"] = dict(OFFICIAL_FULL[s], at_input=[1, 3, *default_lr_size(s)],
                                       applies=default and _is_preset(config))
    if measuring:
        from cfin.complexity.latency import measure_latency
        from cfin.complexity.memory import measure_memory

        t0 = time.perf_counter()
        stages.set_postfix_str("inference memory")
        memory = {"inference": measure_memory(config, device, "inference", lr_size, 1, dtype)}
        stages.update(1)
        if training_memory:
            stages.set_postfix_str("training memory")
            memory["training"] = measure_memory(config, device, "training", (train_patch, train_patch),
                                                train_batch, dtype)
            stages.update(1)
        report["memory"] = memory
        stages.set_postfix_str("latency")
        report["latency"] = measure_latency(config, device, lr_size, 1, runs, warmup, dtype, progress)
        stages.update(1)
        report["measure_seconds"] = round(time.perf_counter() - t0, 2)
    else:
        report["memory"] = report["latency"] = {"skipped": "not measured (counts only; --measure measures them)"}
    from cfin.provenance import environment

    report["environment"] = environment(device if device is not None else "cpu")
    stages.close()
    return report, counts


def _is_preset(config: CFINConfig) -> bool:
    from cfin.config import PRESETS

    base = PRESETS.get(f"x{config.scale}")
    if base is None:
        return False
    # the implementation switches do not change what is counted
    return base.replace(mask_eval=config.mask_eval, cgm_impl=config.cgm_impl) == config


def breakdown_rows(counts: dict[str, Counts], depth: int | None = None) -> list[dict]:
    """Per-module params and Multi-Adds under each convention that has them, ModuleList indices merged."""
    order: list[str] = []
    table: dict[str, dict] = {}
    for name in ("full", "paper", *[n for n in counts if n not in ("full", "paper")]):
        c = counts.get(name)
        if c is None or not c.per_module:
            continue
        for row in c.breakdown(depth):
            if row.name not in table:
                order.append(row.name)
                table[row.name] = {"module": row.name, "kind": row.kind, "calls": row.calls}
            t = table[row.name]
            if row.calls and not t["calls"]:
                t["calls"] = row.calls
            t[f"{name}_params"] = row.params
            t[f"{name}_multi_adds"] = row.multi_adds
    have = [n for n in counts if counts[n].per_module]
    for t in table.values():
        for n in have:
            t.setdefault(f"{n}_params", 0)
            t.setdefault(f"{n}_multi_adds", 0)
        if len(t["kind"].split("/")) > 2:
            t["kind"] = "(mixed)"
    return [table[n] for n in order]


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M'; G with two decimals as the paper prints Multi-Adds."""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"


def _mib(n: int) -> str:
    """Bytes in MiB, the unit of nvidia-smi and of the paper's "GPU Memory" column."""
    return f"{n / 2 ** 20:,.0f} MiB"


def render_table(report: dict, breakdown: list[dict] | None = None) -> str:
    """The report as a readable text table (every number with its convention's label)."""
    s, (b, _, h, w) = report["scale"], report["input"]
    title = report["peer"]["title"] if "peer" in report else "CFIN"
    lines = [f"{title} x{s} complexity: input {size_label((h, w), s, b)}; operations in {report['unit']} "
             f"(multiply-accumulates, the paper's Multi-Adds; FLOPs = 2 x MACs)"]
    if "peer" in report:
        lines.append(f"rebuilt from {report['peer']['source']}; {report['peer']['paper']}")
        if report["peer"]["printed_counting"]:
            lines.append(f"its printed counts: {report['peer']['printed_counting']}")
    lines.append("")
    conv = report["conventions"]
    name_w = max([len(n) for n in conv] + [12])
    lines.append(f"{'convention':<{name_w}}  {'params':>11}  {'Multi-Adds':>9}  {'exact MACs':>17}  {'time':>6}")
    for n, c in conv.items():
        lines.append(f"{n:<{name_w}}  {c['params']:>11,}  {human(c['multi_adds']):>9}  {c['multi_adds']:>17,}  "
                     f"{c['seconds']:>5.1f}s")
    pp = report.get("paper_printed")
    if pp and pp["same_model"]:  # the paper's numbers are for the paper's model only
        where = "this input" if pp["applies"] else f"the paper's x{s} model at {pp['at_input'][2]}x{pp['at_input'][3]}"
        lines.append(f"{'(printed)':<{name_w}}  {pp['table'][0]:>11}  {pp['table'][1]:>9}  "
                     f"paper table; torchsummaryX on the official code: {pp['params']:,} / "
                     f"{pp['multi_adds_G']:.2f}G ({where})")
        of = report["official_full"]
        lines.append(f"{'(official)':<{name_w}}  {of['params']:>11,}  {of['multi_adds_G']:>8.1f}G  "
                     f"everything the official forward uses/computes ({where}); it registers "
                     f"{of['registered_params']:,} params")
    for n, why in report.get("not_applicable", {}).items():
        lines.append(f"{n:<{name_w}}  {'-':>11}  {'-':>9}  not applicable: {why}")
    lines += ["", "What each convention counts:"]
    for n, c in conv.items():
        lines.append(f"  [{n}] {c['label']}")
        if c.get("by_operator"):
            lines.append("      by operator: " + ", ".join(f"{k} {human(v)}" for k, v in c["by_operator"].items()))
        for note in c["notes"]:
            lines.append(f"      note: {note}")
        if c["skipped"]:
            shown = ", ".join(c["skipped"][:14]) + (f", ... ({len(c['skipped'])} in all)"
                                                      if len(c["skipped"]) > 14 else "")
            lines.append(f"      skipped: {shown}")
    mem, lat = report["memory"], report["latency"]
    lines.append("")
    if "skipped" in mem:
        lines.append(f"Memory and latency: {mem['skipped']}")
    else:
        lines.append("Memory (peak):")
        for mode, m in mem.items():
            extra = f", reserved {_mib(m['peak_reserved_bytes'])}" if "peak_reserved_bytes" in m else ""
            lines.append(f"  {mode:<9} {_mib(m['peak_bytes']):>10} peak, {_mib(m['call_bytes']):>10} "
                         f"above baseline{extra}  [{m['what']}; {m['device']}, {m['dtype']}, input "
                         f"{'x'.join(map(str, m['input']))}]")
        lines.append(f"  method: {next(iter(mem.values()))['method']}")
        lines.append("  the paper's 'GPU Memory' (CFIN x4 11419M) is a training figure: compare the training row")
        lines.append(f"Latency: median {lat['median_ms']:.1f} ms, IQR {lat['iqr_ms']:.1f} ms "
                     f"(q1 {lat['q1_ms']:.1f}, q3 {lat['q3_ms']:.1f}, "
                     f"min {lat['min_ms']:.1f}, max {lat['max_ms']:.1f}) "
                     f"over {lat['runs']} runs after {lat['warmup']} warm-up  [{lat['device']}, {lat['dtype']}, "
                     f"input {'x'.join(map(str, lat['input']))}, {lat['timer']}]")
    env = report.get("environment", {})
    if env:
        lines.append(f"Environment: {env.get('device_name')}, torch {env.get('torch')}, commit {env.get('git_commit')}")
    if breakdown:
        lines += ["", render_breakdown(breakdown, conv)]
    return "\n".join(lines)


def render_breakdown(rows: list[dict], conventions: dict) -> str:
    """Per-module table: params and Multi-Adds under each convention with per-module data."""
    names = [n for n in ("paper", "full", "fvcore") if rows and f"{n}_params" in rows[0]]
    full_total = conventions.get("full", {}).get("multi_adds") or 0
    mod_w = max(len(r["module"]) for r in rows)
    kind_w = max(len(r["kind"]) for r in rows)
    head = f"{'module':<{mod_w}}  {'kind':<{kind_w}}  {'calls':>5}"
    for n in names:
        head += f"  {n + ' params':>14}  {n + ' MACs':>11}"
    if full_total:
        head += f"  {'% of full':>9}"
    out = ["Where the Multi-Adds go (own share of each module; ModuleList instances merged as '*'; calls: "
           "forward calls of the modules a row holds, summed over its instances and, cut by --depth, over "
           "its submodules):", head]
    for r in rows:
        line = f"{r['module']:<{mod_w}}  {r['kind']:<{kind_w}}  {r['calls']:>5}"
        for n in names:
            line += f"  {r[f'{n}_params']:>14,}  {human(r[f'{n}_multi_adds']):>11}"
        if full_total:
            line += f"  {100 * r.get('full_multi_adds', 0) / full_total:>8.2f}%"
        out.append(line)
    total = f"{'total':<{mod_w}}  {'':<{kind_w}}  {'':>5}"
    for n in names:
        total += f"  {conventions[n]['params']:>14,}  {human(conventions[n]['multi_adds']):>11}"
    out.append(total)
    return "\n".join(out)


__all__ = ["build_report", "breakdown_rows", "render_table", "render_breakdown", "parse_conventions", "human"]
