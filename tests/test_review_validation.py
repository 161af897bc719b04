"""Review findings on input rules: every refusal names the field and the reason."""

from __future__ import annotations

import pytest

from provisioner import validation
from provisioner.errors import ValidationError


@pytest.mark.parametrize(
    "value",
    ["1e30", "99999999999999999999999999999", "1e100000000", "10000000000", "-1e30"],
)
def test_a_huge_price_is_refused_with_the_field(value: str) -> None:
    # Quantizing these to cents exceeds decimal's precision (InvalidOperation): that must
    # be a field error, not an internal error.
    with pytest.raises(ValidationError) as exc:
        validation.price("customer_price", value)
    assert exc.value.field == "customer_price"
