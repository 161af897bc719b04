"""HTML forms into the request bodies the API takes (``provisioner.schemas``).

A form sends every field as text; the API's body models turn it into the same types a JSON
client sends (so "30" is the number 30), and a field of the wrong type is refused beside
that field, in the service's words where it has them. The rules themselves stay in the
registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

from provisioner.errors import ValidationError


def body(
    model: type[pydantic.BaseModel],
    form: Mapping[str, str],
    fields: Iterable[str],
    *,
    current: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The fields of ``form`` as ``model`` reads them, as a registry write takes them.

    New rows (``current`` None): an empty field is left out (the registry's default).
    Changes: only fields that differ from ``current`` are sent, and an emptied field is
    sent as None (the API's ``null``: clear it)."""
    data: dict[str, Any] = {}
    for f in fields:
        if f not in form:
            continue
        value = form[f]
        if current is None:
            if value != "":
                data[f] = value
        elif value != _text(current.get(f)):
            data[f] = value if value != "" else None
    try:
        parsed = model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else None
        raise ValidationError(_reason(first), field=field) from None
    return {k: v for k, v in parsed.model_dump(exclude_unset=True).items() if k in data}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _reason(error: Any) -> str:
    kind = str(error.get("type", ""))
    if kind.startswith("int"):
        return "must be a whole number"
    if kind.startswith("bool"):
        return "must be yes or no"
    return str(error.get("msg", "is not valid"))


def text_of(row: Any, fields: Iterable[str]) -> dict[str, str]:
    """A read model's fields as a form shows them."""
    data = row.model_dump() if hasattr(row, "model_dump") else dict(row)
    return {f: _text(data.get(f)) for f in fields}
