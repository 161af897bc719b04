"""What the panels' lists share: the page number and the links around it, the query
string that keeps a list's filters, and a CSV export of what a list shows (the same
filters, every page, streamed so a long list never sits in memory whole)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import StreamingResponse

PAGE_SIZE = 25


def filters_of(request: Request, names: Iterable[str]) -> dict[str, str]:
    """The list's filters from the query string, trimmed (absent: empty)."""
    return {k: request.query_params.get(k, "").strip() for k in names}


def number_of(request: Request) -> int:
    """The page asked for (1 for anything that is not a page number)."""
    try:
        return max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return 1


def query(filters: Mapping[str, Any], **extra: Any) -> str:
    """A query string of the filters that are set (and ``extra``)."""
    return urlencode({**{k: v for k, v in filters.items() if v}, **extra})


def paging(
    base: str, filters: Mapping[str, str], number: int, total: int, size: int = PAGE_SIZE
) -> dict[str, Any]:
    """The pager's context: this page, how many, the links before and after, the CSV."""

    def link(n: int) -> str:
        return f"{base}?{query(filters, page=n)}"

    return {
        "number": number,
        "pages": max(1, -(-total // size)),
        "total": total,
        "prev_url": link(number - 1) if number > 1 else None,
        "next_url": link(number + 1) if number * size < total else None,
        "csv_url": f"{base}.csv?{query(filters)}",
    }


def csv_response(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> StreamingResponse:
    """``rows`` as a CSV download, written as they come."""

    def lines() -> Iterator[str]:
        buf = io.StringIO()
        out = csv.writer(buf)
        out.writerow(header)
        for row in rows:
            out.writerow(["" if v is None else v for v in row])
            if buf.tell() > 64_000:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
