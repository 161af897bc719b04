"""API tokens: list, create (the token is shown once) and revoke. Admin only.

A new token lives for its role's default lifetime (``token_days_*`` in the config) unless
``days`` is given (0: never expires). A revoked token answers 401 from the next request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from provisioner import auth
from provisioner.api.deps import AdminDep, PagingDep, SessionDep
from provisioner.http_threads import Route
from provisioner.read import tokens
from provisioner.read.models import Page, TokenCreatedOut, TokenOut
from provisioner.schemas import Ref, Role, text
from provisioner.validation import MAX_INT

router = APIRouter(route_class=Route, prefix="/tokens", tags=["tokens"])

Label = text(128)  # the api_tokens.name column


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    reseller: Ref | None = Field(None, description="the reseller a reseller token acts for")
    customer: Ref | None = Field(None, description="the customer a customer token acts for")
    name: Label = Field("", description="a label; admin tokens act as admin:NAME in the audit")
    days: int | None = Field(
        None,
        ge=0,
        le=auth.MAX_DAYS,
        description="lifetime in days (0: never expires); default: the role's",
    )


@router.get("")
def list_tokens(session: SessionDep, admin: AdminDep, paging: PagingDep) -> Page[TokenOut]:
    """Every token, oldest first, a page at a time: owner, expiry, last use (to the
    minute), status."""
    return tokens.list_(session, admin, limit=paging.limit, offset=paging.offset)


@router.post("", status_code=201)
def create_token(body: TokenCreate, session: SessionDep, admin: AdminDep) -> TokenCreatedOut:
    """Make a token; ``token`` is in this response only (just its hash is stored)."""
    row, token = auth.issue_token(
        session,
        role=body.role,
        reseller=body.reseller,
        customer=body.customer,
        name=body.name,
        days=body.days,
        actor=admin.actor,
    )
    return tokens.created(session, row, token)


@router.delete("/{token_id}", status_code=204)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=MAX_INT)], session: SessionDep, admin: AdminDep
) -> None:
    """Revoke a token: it answers 401 from now on (404 for an unknown id)."""
    auth.revoke_token(session, admin.actor, token_id)
