"""The rate grammar as tables."""

from __future__ import annotations

import pytest

from provisioner.rates import (
    RateError,
    canonical_rate_limit,
    format_rate,
    parse_rate,
    parse_rate_limit,
)


@pytest.mark.parametrize(
    ("text", "bps"),
    [("512k", 512_000), ("10M", 10_000_000), ("1G", 1_000_000_000), ("64000", 64_000),
     ("1.5M", 1_500_000), (2048, 2048)],
)  # fmt: skip
def test_parse_rate(text: str | int, bps: int) -> None:
    assert parse_rate(text) == bps


@pytest.mark.parametrize("bad", ["fast", "10Mb", "-1", "", "1.0000001k", "10 M/s"])
def test_parse_rate_refuses(bad: str) -> None:
    with pytest.raises(RateError, match="invalid rate"):
        parse_rate(bad)


@pytest.mark.parametrize(
    ("bps", "text"), [(10_000_000, "10M"), (512_000, "512k"), (1_500_000, "1500k"), (1234, "1234")]
)
def test_format_rate(bps: int, text: str) -> None:
    assert format_rate(bps) == text


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("5M/10M", "5000000/10000000"),
        ("5M", "5M/5M"),
        ("2M/10M 4M/20M 1M/8M 10/10", "2000k/10M 4M/20M 1M/8M 10s/10s"),
        ("2M/10M 0/0 0/0 0/0 8", "2M/10M"),
    ],
)
def test_equal_spellings_are_canonical(a: str, b: str) -> None:
    assert canonical_rate_limit(a) == canonical_rate_limit(b)


def test_full_grammar_round_trips() -> None:
    text = "2M/10M 4M/20M 1M/8M 10/10 5 1M/2M"
    rl = parse_rate_limit(text)
    assert (rl.up, rl.down, rl.burst_up, rl.burst_down) == (
        2_000_000,
        10_000_000,
        4_000_000,
        20_000_000,
    )
    assert (rl.threshold_up, rl.threshold_down, rl.burst_time, rl.priority) == (
        1_000_000,
        8_000_000,
        10,
        5,
    )
    assert (rl.min_up, rl.min_down) == (1_000_000, 2_000_000)
    assert rl.render() == text


# ---- found in review ----------------------------------------------------------


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
