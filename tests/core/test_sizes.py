"""Size accounting, Keras-free."""

import math

import pytest

from tuner_prune.core import metrics as sizes


def test_information_limit_is_values_plus_mask_entropy():
    assert sizes.information_limit_bytes(100, 5) == pytest.approx(
        5 + math.log2(math.comb(100, 5)) / 8)
    # The article's MLP at 95 %: about 178 KB, as the issue states.
    assert sizes.information_limit_bytes(2_073_600, 103_680) == pytest.approx(177_913, abs=1)


def test_block_limit_counts_the_mask_over_blocks():
    assert sizes.information_limit_bytes(160, 16, block=16) == pytest.approx(
        16 + math.log2(10) / 8)
    assert sizes.information_limit_bytes(160, 0) == 0
