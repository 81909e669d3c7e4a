"""Administration: organizations and API keys (operators, within their subtree)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from yixian.registry.entrypoints import schemas as s
from yixian.registry.entrypoints.dependencies import Api
from yixian.registry.service_layer import handlers, queries

router = APIRouter(tags=["administration"])


@router.post("/v1/organizations", status_code=201)
async def create_organization(body: s.NewOrganization, api: Api) -> JSONResponse:
    """Add an organization under one in your subtree (operators)."""
    return await api.command(
        "organization.create",
        None,
        lambda uow: handlers.create_organization(uow, **body.model_dump()),
    )


@router.get("/v1/organizations")
async def list_organizations(api: Api) -> JSONResponse:
    """The organizations of your subtree, by path, with how each secretary is reached: the
    organizations an arrival can be assigned to (every role)."""
    return await api.read(queries.organizations)


@router.patch("/v1/organizations/{org_id}")
async def update_organization(org_id: UUID, body: s.OrganizationUpdate, api: Api) -> JSONResponse:
    """Change an organization's name or how its secretary is reached (mail, phone, SMS,
    webhook): only the fields sent change, null removes a contact (JSON merge patch;
    `application/json` or `application/merge-patch+json`). Audited with each changed
    field's before and after (operators of a subtree that holds it)."""
    return await api.command(
        "organization.update",
        str(org_id),
        lambda uow: handlers.update_organization(uow, org_id, changes=body.sent()),
    )


@router.post("/v1/api-keys", status_code=201)
async def issue_api_key(body: s.NewApiKey, api: Api) -> JSONResponse:
    """Issue an API key bound to a role and an organization subtree (operators)."""
    return await api.command(
        "api_key.issue", None, lambda uow: handlers.issue_api_key(uow, **body.model_dump())
    )


@router.get("/v1/api-keys")
async def list_api_keys(api: Api) -> JSONResponse:
    """The API keys of your subtree, revoked ones too; never a secret (operators)."""
    return await api.read(queries.api_keys)


@router.post("/v1/api-keys/{key_id}/revoke")
async def revoke_api_key(key_id: UUID, api: Api) -> JSONResponse:
    """Revoke an API key of your subtree; it fails at once. Revoking again changes nothing;
    the root organization's last active operator key cannot be revoked (operators)."""
    return await api.command(
        "api_key.revoke", str(key_id), lambda uow: handlers.revoke_api_key(uow, key_id)
    )
