"""The paper's tables as data: every row builds and trains, every count holds its tolerance.

The count regression runs the paper's rule (cfin.complexity, meta device) at the paper's
1280 x 720 output; the forward/backward runs on a 12 x 12 LR input.
"""
import dataclasses
import json
import re

import pytest
import torch

import cfin
from ablations.fit import all_searches, cfin_heads
from ablations.printed import Columns, count, metric, metrics
from cfin.bench.equality import differences
from cfin.cli import main as cli_main
from cfin.complexity import count as complexity_count
from cfin.complexity.conventions import default_lr_size
from cfin.complexity.tables import render_table_complexity, table_complexity
from cfin.config import CONV_BLOCKS, CFINConfig
from cfin.errors import CFINError
from cfin.tables import TABLE_MODULES, all_tables, get_table
from numerics import GRAD_RTOL, OUT_ATOL, check, noise_bound

TABLES = all_tables()
ROWS = [(t.id, r) for t in TABLES for r in t.rows]
REPRODUCIBLE = [(t, r) for t, r in ROWS if not r.quoted]
CONFIGS = list(dict.fromkeys(r.config for _, r in REPRODUCIBLE))  # distinct configs, in order


def _paper_count(cfg):
    c = complexity_count(cfg, default_lr_size(cfg.scale), "paper")
    return c.params, c.multi_adds


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.conv_block}-{c.n_feats}-{len(c.heads)}")
def test_every_row_builds_runs_and_every_parameter_gets_a_gradient(cfg):
    torch.manual_seed(0)
    model = cfin.CFIN(cfg).train()
    x = torch.rand(1, 3, 12, 12) * 255
    y = model(x)
    assert y.shape == (1, 3, 12 * cfg.scale, 12 * cfg.scale)
    assert torch.isfinite(y).all()
    y.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"


@pytest.mark.numerics
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.conv_block}-{c.n_feats}-{len(c.heads)}")
def test_every_row_computes_the_same_function_on_the_fast_path(cfg):
    """``run_all.py --impl fast`` trains and evaluates each row by the fast path: outputs (one
    image, channels-last on the CPU) within 1e-3 of the faithful ones on the 0-255 scale, and
    gradients (a batch of two) within a relative 1e-4; or, where float32 itself is further from
    the exact function, within NOISE_FACTOR x the faithful path's own float32 error (against
    float64, ``tests/numerics.py``). With random weights the rows without a Transformer stage
    reach outputs of 3e5, where float32 rounding alone moves the faithful path by 0.2.
    Noiseless masks: a hard Gumbel sample can flip a pixel whose logits tie within rounding
    (tests/test_fast_path.py)."""
    def models(**changes):
        torch.manual_seed(0)
        ref = cfin.CFIN(cfg.replace(**changes))
        fast, exact = cfin.CFIN(cfg.replace(**changes).with_impl("fast")), cfin.CFIN(cfg.replace(**changes))
        fast.load_state_dict(ref.state_dict())
        exact.load_state_dict(ref.state_dict())
        return ref, fast, exact.double()

    def l1_pass(model, x):
        out = model.train()(x)
        out.sub(128).abs().mean().backward()
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]
        model.zero_grad(set_to_none=True)
        return out.detach(), grads

    gen = torch.Generator().manual_seed(1)
    ref, fast, exact = models(mask_eval="argmax")
    x = torch.rand(1, 3, 9, 11, generator=gen) * 255
    with torch.no_grad():
        want, got, true = ref.eval()(x), fast.eval()(x), exact.eval()(x.double())
    noise = differences((want, None), (true, None))["max_abs_diff"]
    check("ablation row, fast vs faithful: outputs", (got - want).abs().max(), noise_bound(OUT_ATOL, noise), noise)
    ref, fast, exact = models(mask="softmax")
    x = torch.rand(2, 3, 9, 11, generator=gen) * 255
    want = l1_pass(ref, x)
    noise = differences(want, l1_pass(exact, x.double()))["grad_rel_diff"]
    deviation = differences(l1_pass(fast, x), want)["grad_rel_diff"]
    check("ablation row, fast vs faithful: gradients, relative", deviation, noise_bound(GRAD_RTOL, noise), noise)


@pytest.mark.parametrize("table_id,row", [(t, r) for t, r in REPRODUCIBLE if r.paper.params or r.paper.multi_adds],
                         ids=lambda v: v if isinstance(v, str) else v.id)
def test_paper_rule_count_within_the_rows_tolerance(table_id, row):
    params, multi_adds = _paper_count(row.config)
    tol = row.tolerance
    if row.paper.params:
        assert abs(params / row.paper.params - 1) <= tol.params, \
            f"Table {table_id} {row.id}: {params:,} params vs printed {row.paper.params:,}"
    if row.paper.multi_adds:
        assert abs(multi_adds / row.paper.multi_adds - 1) <= tol.multi_adds, \
            f"Table {table_id} {row.id}: {multi_adds:,} Multi-Adds vs printed {row.paper.multi_adds:,}"


# "857,266 / 38.05G under the paper's rule (+0.6%, +0.7%)": a count a note states and its deviations
_STATED_COUNT = re.compile(r"(\d{1,3}(?:,\d{3})+) / (\d+\.(\d+))G[^()]*\(([+-]\d+\.(\d+))%, ([+-]\d+\.(\d+))%\)")


# counts a row's note states for a variant of that row, not for any row: (table, row, params) -> the change
_NOTE_VARIANTS = {("VI", "CFIN+GConv", 209_107): {"gconv_groups": 3}}


def _note_count_problems(table) -> list[str]:
    """What is wrong with the "params / Multi-Adds (+dP%, +dM%)" counts the notes of ``table`` state:
    each must be the paper-rule count of a row with those params (or of a variant of the note's row
    listed in :data:`_NOTE_VARIANTS`) and its deviation from that row's printed numbers, to the
    digits shown. A count no row has is a problem too (a typo), not skipped."""
    rows = [r for r in table.reproducible_rows if r.paper.params and r.paper.multi_adds]
    counted = {r.id: _paper_count(r.config) for r in rows}
    problems = []
    for owner, text in [(None, table.notes), *((r, r.note) for r in rows)]:
        for m in _STATED_COUNT.finditer(text):
            params = int(m[1].replace(",", ""))
            variant = _NOTE_VARIANTS.get((table.id, owner and owner.id, params))
            matched = [(owner, _paper_count(owner.config.replace(**variant)))] if variant else \
                [(r, counted[r.id]) for r in rows if counted[r.id][0] == params]
            if not matched:
                problems.append(f"Table {table.id}: a note states {m[0]!r}, but no row has {params:,} params "
                                f"under the paper's rule ({', '.join(f'{c[0]:,}' for c in counted.values())})")
            for row, (measured_params, multi_adds) in matched:
                stated = (params, float(m[2]), float(m[4]), float(m[6]))
                measured = (measured_params, round(multi_adds / 1e9, len(m[3])),
                            round((measured_params / row.paper.params - 1) * 100, len(m[5])),
                            round((multi_adds / row.paper.multi_adds - 1) * 100, len(m[7])))
                if stated != measured:
                    problems.append(f"Table {table.id} {row.id}: the note states {m[0]!r}; measured "
                                    f"{measured[0]:,} / {measured[1]}G ({measured[2]:+}%, {measured[3]:+}%)")
    return problems


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.id)
def test_counts_stated_in_notes_are_the_measured_ones(table):
    """Every "params / Multi-Adds (+dP%, +dM%)" a note states is a row's paper-rule count (or a
    listed variant's) and its deviation from the printed numbers, to the digits shown: the notes
    are typed, the counts are measured."""
    problems = _note_count_problems(table)
    assert not problems, "\n".join(problems)


def test_a_stated_count_no_row_has_fails_the_note_check():
    """A typo in a note's count (178,572 for the KV row's 178,527) is the count of no row: the
    check above must fail on it, not skip it."""
    table = get_table("VII")
    typo = dataclasses.replace(table, rows=tuple(
        dataclasses.replace(r, note=r.note.replace("178,527", "178,572")) for r in table.rows))
    assert "178,572" in typo.row("KV").note
    problems = _note_count_problems(typo)
    assert len(problems) == 1 and "178,572" in problems[0]


def test_table_vii_cross_reading_against_the_printed_rounding():
    """Table VII prints 177.5K without Cross and 177.8K with it: a difference in (0.2K, 0.4K) once
    the rounding is undone. With the one CFGT of the fitted skeleton, switching the second CGA's
    CGM to k = 1 alone takes 132 paper-rule params, outside it; switching the IGP's k = 3 CGM too
    (the paper's IGP "also adopts the idea of cross receptive fields"), the KV row's reading, takes
    264, inside it."""
    table = get_table("VII")
    kv, cga_only, both = (complexity_count(cfg, default_lr_size(4), "paper").params for cfg in (
        table.row("KV").config, table.row("KV+Cross").config.replace(cga_kernels=(1, 1)),
        table.row("KV+Cross").config))
    low = table.row("KV+Cross").paper.params - 50 - (table.row("KV").paper.params + 50)   # the printed bounds
    assert (both - cga_only, both - kv) == (132, 264)
    assert not low < both - cga_only < low + 200 and low < both - kv < low + 200
    assert table.row("KV").config.igp_kernels == table.row("KV").config.cga_kernels == (1, 1)
    assert "IGP" in table.notes and "(0.2K, 0.4K)" in table.notes


def test_widened_tolerances_are_explained():
    default = cfin.tables.Tolerance()
    for tid, row in REPRODUCIBLE:
        if (row.tolerance.params, row.tolerance.multi_adds) != (default.params, default.multi_adds):
            assert "Outside the 2%/3% target" in row.note, f"Table {tid} {row.id}: widened tolerance without a note"


def test_tables_are_well_formed():
    assert [t.id for t in TABLES] == list(TABLE_MODULES)
    for t in TABLES:
        assert t.title and t.notes and t.recipe == "paper" and t.datasets
        assert len({r.id for r in t.rows}) == len(t.rows), f"Table {t.id}: duplicate row ids"
        for r in t.rows:
            assert (r.config is None) == r.quoted, f"Table {t.id} {r.id}: quoted rows have no config and vice versa"
            assert set(r.paper.metrics) <= set(t.datasets), f"Table {t.id} {r.id}: {set(r.paper.metrics)}"
            for psnr, ssim in r.paper.metrics.values():
                assert 20 < psnr < 45 and (ssim is None or 0.7 < ssim < 1)
            if t.scale is not None and r.config is not None:
                assert r.config.scale == t.scale


def test_table_one_reproduces_the_presets_and_quotes_the_rest():
    t = get_table("I")
    for s in (2, 3, 4):
        assert t.row(f"x{s} CFIN").config == cfin.preset(s) and not t.row(f"x{s} CFIN").self_ensemble
        assert t.row(f"x{s} CFIN+").self_ensemble
    assert t.row("x4 FDIWN").quoted and t.row("x4 FDIWN").paper.params == 664_000
    assert t.row("x2 MemNet").paper.multi_adds is None and "Manga109" not in t.row("x2 MemNet").paper.metrics
    assert len(t.reproducible_rows) == 6


def test_printed_numbers_parse_exactly():
    assert count("177.8K") == 177_800 and count("4.1105G") == 4_110_500_000
    assert count("6.21538G") == 6_215_380_000 and count("1592K") == 1_592_000 and count("-") is None
    assert metric("32.49 / 0.8985") == (32.49, 0.8985) and metric("31.63") == (31.63, None)
    assert metrics(("Set5", "Manga109"), ["31.70/0.8876", "-"]) == {"Set5": (31.70, 0.8876)}
    with pytest.raises(CFINError, match="ends in K, M or G"):
        count("177.8")


def test_a_row_reads_its_printed_values_by_column():
    """Columns in the paper's order (Table VIII prints Memory after the PSNRs); a line with a value
    missing is an error, and a misspelled Row field is not swallowed."""
    columns = Columns("params", "multi_adds", "Set5", "Manga109", "memory")
    row = columns.row("CFGT-0", None, "630K 28.0G 32.11 30.29 3551M", note="quoted")
    assert row.quoted and (row.paper.params, row.paper.multi_adds, row.paper.memory_mb) == (630_000, 28 * 10 ** 9, 3551)
    assert row.paper.metrics == {"Set5": (32.11, None), "Manga109": (30.29, None)}
    assert row.paper.printed == {"params": "630K", "multi_adds": "28.0G", "memory_mb": "3551M"}
    assert not columns.row("CFGT-0", cfin.preset(4, num_cfgt=0), "630K 28.0G 32.11 30.29 3551M").quoted
    with pytest.raises(CFINError, match="expected 5 printed values"):
        columns.row("CFGT-0", None, "630K 28.0G 32.11 30.29")
    with pytest.raises(TypeError, match="notes"):
        columns.row("CFGT-0", None, "630K 28.0G 32.11 30.29 3551M", notes="a typo of note")


def test_unknown_table_or_row_lists_the_valid_ones():
    with pytest.raises(CFINError, match=r"unknown table 'XI'; valid: I, II, III, IV, V, V-A.2, VI, VII"):
        get_table("XI")
    assert get_table("vii").id == "VII"
    with pytest.raises(CFINError, match=re.escape("unknown row of Table VII 'Cross+KV'; valid: Cross, KV, KV+Cross")):
        get_table("VII").row("Cross+KV")


def test_complexity_table_json_shape(capsys):
    result = table_complexity("VIII")
    assert result["table"] == "VIII" and [r["id"] for r in result["rows"]] == ["CFGT-0", "CFGT-4", "CFGT-8"]
    cfgt8 = result["rows"][2]
    assert cfgt8 == {"id": "CFGT-8", "quoted": False, "paper": {"params": 699_000, "multi_adds": 31_200_000_000},
                     "printed": {"params": "699K", "multi_adds": "31.2G"},
                     "ours": {"paper": {"params": 698_826, "multi_adds": cfgt8["ours"]["paper"]["multi_adds"]},
                              "full": {"params": 3_382_410, "multi_adds": cfgt8["ours"]["full"]["multi_adds"]}}}
    assert round(cfgt8["ours"]["paper"]["multi_adds"] / 1e9, 2) == 31.18
    assert all(isinstance(v, int) for r in result["rows"] for c in r["ours"].values() for v in c.values())
    assert "CFGT-4" in render_table_complexity(result)
    # quoted rows: printed numbers only, and a rebuilt network's counts (cfin.peers); a key is left out where
    # nothing is printed
    rows = {r["id"]: r for r in table_complexity("IX")["rows"]}
    assert rows["RFDN"] == {"id": "RFDN", "quoted": True, "paper": {"params": 550_000, "multi_adds": 31_600_000_000},
                            "printed": {"params": "550K", "multi_adds": "31.6G"}}
    assert rows["PAN"]["peer"] == "pan" and rows["PAN"]["ours"]["paper"] == {"params": 272_419,
                                                                           "multi_adds": 28_163_635_200}
    table_i = render_table_complexity(table_complexity("I"))
    assert "printed Params" in table_i and "171.0G" in table_i  # as printed, not 171.0000G
    assert "multi_adds" not in {r["id"]: r for r in table_complexity("X")["rows"]}["Pure-CNN"]["paper"]
    # the command line
    assert cli_main(["complexity", "--table", "VII", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["table"] == "VII" and out["rows"][2]["id"] == "KV+Cross" and out["rows"][2]["paper"]["params"] == 177_800
    assert cli_main(["complexity", "--table", "XII"]) == 2
    assert "unknown table 'XII'; valid: I, II" in capsys.readouterr().err


def test_every_search_contains_its_tables_config_and_builds_rows_from_switches():
    searches = all_searches()
    assert searches
    for tid, s in searches:
        point = {k: (s.base.num_blocks if k == "blocks" else getattr(s.base, k)) for k in s.grid}
        assert all(point[k] in s.grid[k] for k in s.grid), f"{s.name}: the table's config is not a grid point"
        assert s.candidate(point) == s.base, s.name
        for t, r in s.targets:
            row = get_table(t).row(r)
            assert s.base.replace(**s.switch(row.config)) == row.config, f"{s.name}: {t}/{r}"
    mask = next(s for _, s in searches if s.name == "mask")
    assert mask.switch(get_table("III").row("no mask").config) == {"mask": "none"}
    cgm = next(s for _, s in searches if s.name == "CGM skeleton")
    assert cgm.switch(get_table("VII").row("KV").config) == {"cga_kernels": (1, 1), "igp_kernels": (1, 1)}


def test_cfin_heads_follow_the_x4_pattern():
    assert cfin_heads(8) == cfin.preset(4).heads
    assert cfin_heads(3, 72) == (8, 12, 12) and cfin_heads(1, 48) == (8,)


def test_switches_change_the_network_as_documented():
    tiny = cfin.preset("tiny", heads=(2, 4, 2, 4))  # 4 CT blocks, 2 CIAMs
    body = cfin.CFIN(tiny.replace(num_cfgt=2)).body
    assert len(body.cfgts) == 2 and len(body.expands) == len(body.squeezes) == 1 and len(body.convs) == 2
    body = cfin.CFIN(tiny.replace(num_cfgt=3)).body
    assert len(body.cfgts) == 3 and len(body.expands) == 2
    body = cfin.CFIN(tiny.replace(conv_stage=False)).body
    assert len(body.convs) == 0 and len(body.cfgts) == 4 and len(body.expands) == 2
    assert cfin.CFIN(tiny.replace(num_cfgt=0)).body.cfgts is None
    cfgt = cfin.CFIN(tiny.replace(cga_kernels=(1, 3))).body.cfgts[0]
    assert (cfgt.cga1.qkv.k, cfgt.cga2.qkv.k) == (1, 3) and (cfgt.igp.fc1.k, cfgt.igp.fc2.k) == (1, 3)
    igp = cfin.CFIN(tiny.replace(igp_kernels=(1, 1))).body.cfgts[0].igp
    assert (igp.fc1.k, igp.fc2.k) == (1, 1)
    with pytest.raises(cfin.CFINError, match=r"igp_kernels must be two odd kernel sizes from 1, 3, 5, 7, got \(1, 2\)"):
        tiny.replace(igp_kernels=(1, 2))
    mixer = cfin.CFIN(tiny.replace(token_mixer="gconv", gconv_groups=2)).body.cfgts[0].cga1.qkv
    assert isinstance(mixer, torch.nn.Conv2d) and mixer.groups == 2
    assert isinstance(cfin.CFIN(tiny.replace(token_mixer="linear")).body.cfgts[0].igp.fc1, torch.nn.Linear)
    ciam = cfin.CFIN(tiny.replace(mask="none", ciam_branch=False)).body.convs[0]
    assert ciam.rifu1.mask is None and ciam.up is None


def test_channel_linear_is_a_1x1_conv():
    torch.manual_seed(0)
    lin = cfin.CFIN(cfin.preset("tiny", token_mixer="linear")).body.cfgts[0].igp.fc1
    x = torch.randn(2, lin.in_features, 5, 7)
    ref = torch.nn.functional.conv2d(x, lin.weight[:, :, None, None], lin.bias)
    torch.testing.assert_close(lin(x), ref)


@pytest.mark.parametrize("changes,match", [
    (dict(num_cfgt=9), "num_cfgt must be None or an int from 0 to the number of CT blocks"),
    (dict(num_cfgt=True), "num_cfgt must be None or an int"),
    (dict(transformer=False, num_cfgt=4), "needs the Transformer stage"),
    (dict(conv_stage=False, num_cfgt=4), "every CT block needs its Transformer stage"),
    (dict(conv_stage=False, transformer=False), "every CT block needs its Transformer stage"),
    (dict(conv_stage="no"), "conv_stage must be True or False"),
    (dict(token_mixer="gconv", gconv_groups=5), "dim divisible by gconv_groups"),
    (dict(gconv_groups=0), "gconv_groups must be a positive int"),
])
def test_new_switches_are_validated(changes, match):
    with pytest.raises(CFINError, match=match):
        cfin.preset(4, **changes)


def test_config_conv_blocks_match_the_registry():
    from cfin.models.blocks import REGISTRY

    assert list(CONV_BLOCKS) == list(REGISTRY)
    assert set(get_table("V").row(f"CFIN+{b.upper()}").config.conv_block for b in CONV_BLOCKS) == set(CONV_BLOCKS)


def test_variant_configs_round_trip_through_json():
    for cfg in CONFIGS:
        assert CFINConfig.from_dict(json.loads(json.dumps(dataclasses.asdict(cfg)))) == cfg
