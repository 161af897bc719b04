"""One paging shape for every list: a ``Page`` of ``items`` from ``offset`` (at most
``limit``) and the ``total`` that match. The page is cut in SQL (a count and one
``LIMIT/OFFSET`` query), so a list that grows costs the same per page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from provisioner import validation
from provisioner.read.models import Page

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def bounds(limit: int | None, offset: int) -> tuple[int | None, int]:
    """``limit`` (None: all, for the faces that show a whole list) and ``offset``, checked."""
    if limit is not None:
        limit = validation.positive_int("limit", limit, maximum=MAX_LIMIT)
    return limit, validation.positive_int("offset", offset, minimum=0)


def page(
    session: Session,
    stmt: Select[Any],
    view: Callable[[Any], T],
    *,
    limit: int | None,
    offset: int = 0,
    rows: bool = False,
) -> Page[T]:
    """The page of ``stmt`` (which carries its own order) from ``offset``; ``view``
    makes each item of an entity (``rows``: of a whole result row, for joins)."""
    limit, offset = bounds(limit, offset)
    counted = select(func.count()).select_from(stmt.order_by(None).subquery())
    total = int(session.scalar(counted) or 0)
    cut = stmt.offset(offset)
    if limit is not None:
        cut = cut.limit(limit)
    found: Sequence[Any] = session.execute(cut).all() if rows else session.scalars(cut).all()
    return Page[T](
        items=[view(r) for r in found],
        total=total,
        limit=limit if limit is not None else total,
        offset=offset,
    )


def of(items: Sequence[T], *, limit: int | None, offset: int = 0) -> Page[T]:
    """A page of a list already in memory (a short one: a reseller's packages)."""
    limit, offset = bounds(limit, offset)
    end = None if limit is None else offset + limit
    return Page[T](
        items=list(items[offset:end]),
        total=len(items),
        limit=limit if limit is not None else len(items),
        offset=offset,
    )


def contains(column: Any, q: str | None) -> list[Any]:
    """A case-blind "contains ``q``" condition on ``column`` (none for an empty ``q``)."""
    if not q or not q.strip():
        return []
    return [func.lower(column).contains(q.strip().lower(), autoescape=True)]
