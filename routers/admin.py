"""Admin endpoints (``Authorization: Bearer $SWITCHBOARD_ADMIN_KEY``): API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.errors import AuthenticationError, NotFound, PermissionDenied
from app.http.json_body import StrictJSONRoute
from app.pipeline.access import bearer, same_secret
from app.state import KEY_PREFIX, ApiKeyRecord, new_key
from routers.deps import ServicesDep


async def require_admin(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    admin = services.settings.admin_key
    if admin is None:
        raise PermissionDenied("admin endpoints are off: set SWITCHBOARD_ADMIN_KEY")
    token = bearer(authorization)
    if token is None:
        raise AuthenticationError("admin key required: 'Authorization: Bearer <admin key>'")
    if same_secret(token, admin.get_secret_value()):
        return
    if token.startswith(KEY_PREFIX):  # a caller's own API key: known, but not allowed here
        raise PermissionDenied("an API key is not the admin key")
    raise AuthenticationError("invalid admin key")


router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    route_class=StrictJSONRoute,
)


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    budget_usd: float | None = Field(default=None, ge=0)


async def _view(services: ServicesDep, record: ApiKeyRecord) -> dict[str, Any]:
    return record.model_dump() | {"spend_usd": await services.store.spend(record.id)}


@router.post("/keys", status_code=201)
async def create_key(body: NewKey, services: ServicesDep) -> JSONResponse:
    key_id, key = new_key()
    record = ApiKeyRecord(id=key_id, **body.model_dump())
    await services.store.create_key(record, key)
    return JSONResponse(record.model_dump() | {"key": key}, status_code=201)


@router.get("/keys")
async def list_keys(services: ServicesDep) -> dict[str, Any]:
    return {"object": "list", "data": [r.model_dump() for r in await services.store.list_keys()]}


@router.get("/keys/{key_id}")
async def get_key(key_id: str, services: ServicesDep) -> dict[str, Any]:
    record = await services.store.get_key(key_id)
    if record is None:
        raise NotFound(f"no key {key_id!r}", code="key_not_found")
    return await _view(services, record)


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, services: ServicesDep) -> dict[str, Any]:
    if not await services.store.delete_key(key_id):
        raise NotFound(f"no key {key_id!r}", code="key_not_found")
    return {"id": key_id, "deleted": True}


@router.post("/profiles/reset")
async def reset_profiles(services: ServicesDep) -> dict[str, Any]:
    """Forget all feedback: every worker returns to the built profiles."""
    await services.store.clear_feedback()
    await services.feedback.sync(force=True)
    return {"reset": True}
