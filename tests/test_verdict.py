"""The verdict rule: Student's t on paired differences (prefixtune.verdict)."""

import math

import pytest

from prefixtune.verdict import paired_t


def test_three_pairs_use_t_with_two_degrees_of_freedom():
    v = paired_t([1.0, 2.0, 3.0], "prefix", "finetune")
    # mean 2, sd 1, se 1/sqrt(3); t(0.975, 2) = 4.3027: half-width 2.484
    assert v.n == 3 and v.mean == 2.0
    assert (v.low, v.high) == pytest.approx((2 - 4.302653 / math.sqrt(3), 2 + 4.302653 / math.sqrt(3)), abs=1e-5)
    assert v.text.startswith("not resolved: no difference beyond noise")  # 2 standard errors would have called it a finding


def test_a_clear_difference_either_way_and_too_few_pairs():
    assert paired_t([3.0, 3.2, 2.9, 3.1], "prefix", "finetune").text.startswith("holds: prefix ahead on this proxy")
    assert paired_t([-3.0, -3.2, -2.9], "prefix", "finetune").text.startswith("reversed: finetune ahead on this proxy")
    pending = paired_t([1.0, 2.0])
    assert pending.text == "pending (2 of 3 pairs)" and math.isnan(pending.low)
