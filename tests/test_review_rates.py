"""Review findings on the rate grammar: decimal rates are exact, as RouterOS's are."""

from __future__ import annotations

import pytest

from provisioner.rates import RateError, parse_rate


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("1.001M", 1_001_000),  # float: 1000999.9999999999, refused as "not whole"
        ("1.003k", 1003),
        ("2.017G", 2_017_000_000),
        ("9007199254740993", 9_007_199_254_740_993),  # float would round it silently
    ],
)
def test_decimal_rates_parse_exactly(text: str, bps: int) -> None:
    assert parse_rate(text) == bps


def test_a_fraction_of_a_bit_is_still_refused() -> None:
    with pytest.raises(RateError, match="not a whole number"):
        parse_rate("1.0001k")
