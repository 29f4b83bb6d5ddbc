"""The parity rule of conversion/parity.py, on synthetic outputs (clause 3: judged against float64)."""

import numpy as np

from conversion.parity import judge_by_float64


def _case(ours_err, official_err, bar=1e-5, within=None):
    """One [1, 1, 2] probability output per input; the float64 output is (0.5, 0.5). ``within``: the verdict
    of clauses 1-2 (default: ours and official agree to ``bar``)."""
    exact = [np.array([[[0.5, 0.5]]]) for _ in ours_err]
    outs = [(e + np.array([[[a, -a]]])).astype(np.float32) for e, a in zip(exact, ours_err)]
    refs = [(e + np.array([[[b, -b]]])).astype(np.float32) for e, b in zip(exact, official_err)]
    if within is None:
        within = [abs(a - b) <= bar for a, b in zip(ours_err, official_err)]
    items = [{"within": w} for w in within]
    return items, refs, outs, exact


def test_without_an_official_float64_graph_the_fp32_outputs_are_held_to_the_accuracy_cap():
    # input 0: we are 8x farther from float64 than the runtime there: luck of the rounding, within the cap
    items, *arrays = _case([4e-4, 1e-6, 1e-6], [5e-5, 2.5e-4, 1e-6], within=[False, True, True])
    summary = judge_by_float64(items, *arrays)
    assert items[0]["within"] and summary["passed"] and not summary["official_graph_in_float64"]
    assert abs(items[0]["ours_vs_float64"] - 4e-4) < 1e-6 and abs(items[0]["official_vs_float64"] - 5e-5) < 1e-6
    assert abs(summary["official_max"] - 2.5e-4) < 1e-6
    assert "ours_vs_float64" not in items[1]  # inputs that passed clauses 1-2 keep their verdict


def test_our_fp32_error_beyond_the_cap_fails():
    items, *arrays = _case([2e-3, 1e-6], [5e-5, 1e-6])
    judge_by_float64(items, *arrays, {0: arrays[2][0]}, accuracy_cap=1e-3)
    assert not items[0]["within"]


def test_without_an_official_float64_graph_a_runtime_far_from_ours_cannot_excuse_a_disagreement():
    # the official runtime looks 2e-3 "off" from our float64 on that input: the functions differ
    items, *arrays = _case([1e-6, 1e-6], [2e-3, 1e-6])
    judge_by_float64(items, *arrays, accuracy_cap=1e-3)
    assert not items[0]["within"]


def test_the_official_graph_in_float64_must_compute_our_function():
    """Ours is as accurate as the runtime on every line, but the two float64 functions differ by 3e-5 on the
    failing input: a (small) conversion error, not rounding."""
    items, refs, outs, exact = _case([4e-4, 1e-6], [5e-5, 2.5e-4], within=[False, True])
    official_exact = {0: exact[0] + np.array([[[3e-5, -3e-5]]])}
    judge_by_float64(items, refs, outs, exact, official_exact)
    assert not items[0]["within"] and abs(items[0]["float64_vs_official_float64"] - 3e-5) < 1e-9
    items, refs, outs, exact = _case([4e-4, 1e-6], [5e-5, 2.5e-4], within=[False, True])
    judge_by_float64(items, refs, outs, exact, {0: exact[0] + 2e-6})
    assert items[0]["within"]


def test_a_systematically_less_accurate_conversion_fails_on_the_median():
    ours = [3e-5] * 9 + [1e-4]
    official = [1e-6] * 9 + [2e-4]
    items, *arrays = _case(ours, official, bar=0)
    summary = judge_by_float64(items, *arrays)
    assert all(i["within"] for i in items)  # each line alone is within the cap
    assert not summary["passed"] and summary["ours_median"] > 2 * summary["official_median"] + 1e-5
