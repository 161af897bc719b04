"""References: how a user names a row, in a URL, a body field or a CLI argument.

A reference is the row's name, or explicitly ``id:N``. Never a guess between the two: a
guess let "2" mean the package named "2" to one caller and the package with id 2 to
another, and let a scope check pass on one row while the write bound the other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.orm import Session

from provisioner.errors import NotFound

ID_PREFIX = "id:"
MAX_NAME = 255  # longer than any name column
NO_ID = 2**63  # larger than any id


def id_of(ref: str) -> int | None:
    """The id an explicit ``id:N`` reference names, else None (a name)."""
    ref = str(ref)
    if ref.startswith(ID_PREFIX):
        return number(ref[len(ID_PREFIX) :])
    return None


def number(digits: str) -> int | None:
    """The id an all-digit string (ASCII digits only) is, else None. Past any database
    integer it is just large (``NO_ID``), never thousands of digits long."""
    if not (digits.isascii() and digits.isdigit()):
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 19 else NO_ID


def refers_to(ref: str, name: str, id_: int) -> bool:
    """Whether ``ref`` names this row: by its name, or explicitly by ``id:N``.

    One form each, never a guess: "2" is the row *named* "2", whatever row has id 2.
    """
    return id_of(ref) == id_ if id_of(ref) is not None else str(ref) == name


def lookup(session: Session, model: Any, ref: str, field: str = "name") -> Any:
    """The row ``ref`` names (see ``refers_to``), or None."""
    wanted = id_of(ref)
    if wanted is not None and wanted < 2**31:
        return session.get(model, wanted)  # the identity map first
    return session.scalar(select(model).where(matching(model, ref, field)))


def matching(model: Any, ref: str, field: str = "name") -> ColumnElement[bool]:
    """``ref`` as a WHERE clause on ``model`` (see ``refers_to``)."""
    by_id, value = as_param(ref)
    if value is None:
        return false()
    return model.id == value if by_id else getattr(model, field) == value  # type: ignore[no-any-return]


def as_param(ref: str) -> tuple[bool, Any]:
    """(by id, value) of ``ref`` (see ``refers_to``), for a statement built once with a
    bound parameter (``activation._resolve``); value None when it can name no row."""
    wanted = id_of(ref)
    if wanted is not None:
        # Larger than any database integer: nothing has that id (and no overflow error).
        return True, (wanted if wanted < 2**31 else None)
    ref = str(ref)
    if "\0" in ref or len(ref) > MAX_NAME:
        return False, None  # no name has NUL (PostgreSQL would refuse to compare it) or is so long
    return False, ref


def get_by_name(session: Session, model: Any, name: str, field: str = "name") -> Any:
    """The row ``name`` refers to (its name, or ``id:N``); 404 otherwise."""
    obj = lookup(session, model, name, field)
    if obj is None:
        raise NotFound(f"no {model.__tablename__.rstrip('s').replace('_', ' ')} named {name!r}")
    return obj
