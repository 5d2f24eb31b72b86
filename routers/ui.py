"""The operator console: ``/ui`` pages, its static files, and the ``/ui/api`` views it polls.

With ``SWITCHBOARD_ADMIN_KEY`` set, ``/ui`` answers a login form until the admin key is posted
to ``/ui/login``; the session then lives in an HttpOnly, SameSite=Strict cookie scoped to
``/ui`` (``app.ui.session``), ``Secure`` when the request came over https (directly or through a
trusted proxy), and ``/ui/api`` calls other than GET need its CSRF token in ``x-csrf-token``.
``/ui/logout`` ends the session in the shared store, for every worker. Without an admin key the
console is open and key management is off, as the admin endpoints are. Errors of ``/ui/api``
use the OpenAI error envelope.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from pydantic import JsonValue

from app.errors import AuthenticationError, NotFound, PermissionDenied
from app.http.json_body import StrictJSONRoute
from app.pipeline.access import same_secret
from app.ui import pages, session
from app.ui.catalog_view import catalog_status
from routers.admin import NewKey
from routers.deps import ServicesDep

router = APIRouter(prefix="/ui", include_in_schema=False)
_SAFE_METHODS = frozenset({"GET", "HEAD"})


def _admin_key(services: ServicesDep) -> str | None:
    admin = services.settings.admin_key
    return admin.get_secret_value() if admin is not None else None


async def _session(
    request: Request, services: ServicesDep, admin: str | None
) -> session.Session | None:
    if admin is None:
        return None
    return await session.current(services.store, request.cookies.get(session.COOKIE), admin)


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/ui", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")  # fmt: skip


def _login(request: Request, error: str = "", status_code: int = 200) -> HTMLResponse:
    token = session.login_token()
    response = pages.login_page(token, error, status_code)
    _set_cookie(response, request, session.LOGIN_COOKIE, token, session.LOGIN_FORM_S)
    return response


@router.get("")
async def console(request: Request, services: ServicesDep) -> HTMLResponse:
    admin = _admin_key(services)
    current = await _session(request, services, admin)
    if admin and current is None:
        return _login(request)
    return pages.console_page(
        csrf=current.csrf if current else "",
        default_preset=services.settings.default_preset,
        keys_enabled=admin is not None,
        logged_in=current is not None,
    )


@router.post("/login", response_model=None)
async def login(
    request: Request,
    services: ServicesDep,
    key: Annotated[str, Form(max_length=1000)],
    csrf: Annotated[str, Form(max_length=200)],
) -> HTMLResponse | RedirectResponse:
    admin = _admin_key(services)
    if admin is None:
        return RedirectResponse("/ui", status_code=303)
    if not same_secret(csrf, request.cookies.get(session.LOGIN_COOKIE)):
        return _login(request, "The form expired. Please try again.", 403)
    if not session.is_admin_key(key, admin):
        return _login(request, "That is not the admin key.", 401)
    cookie, _ = await session.start(services.store, admin)
    response = RedirectResponse("/ui", status_code=303)
    _set_cookie(response, request, session.COOKIE, cookie, session.SESSION_S)
    response.delete_cookie(session.LOGIN_COOKIE, path="/ui")
    return response


@router.post("/logout")
async def logout(
    request: Request, services: ServicesDep, csrf: Annotated[str, Form(max_length=200)]
) -> RedirectResponse:
    current = await _session(request, services, _admin_key(services))
    if current is None or not same_secret(csrf, current.csrf):
        raise PermissionDenied("not logged in, or a wrong CSRF token", code="csrf_failed")
    await services.store.drop_session(current.nonce)
    response = RedirectResponse("/ui", status_code=303)
    response.delete_cookie(session.COOKIE, path="/ui")
    return response


@router.get("/static/{name}")
async def static_file(name: Annotated[str, PathParam(max_length=100)]) -> FileResponse:
    found = pages.asset(name)
    if found is None:
        raise NotFound(f"no console asset {name!r}")
    return found


async def require_session(request: Request, response: Response, services: ServicesDep) -> None:
    """Console API access: the session cookie, plus its CSRF token for unsafe methods."""
    response.headers["Cache-Control"] = "no-store"
    admin = _admin_key(services)
    if admin is None:
        return
    current = await _session(request, services, admin)
    if current is None:
        raise AuthenticationError("log in to the console first", code="session_required")
    if request.method not in _SAFE_METHODS and not same_secret(
        request.headers.get("x-csrf-token"), current.csrf
    ):
        raise PermissionDenied("missing or wrong x-csrf-token header", code="csrf_failed")


api = APIRouter(prefix="/api", dependencies=[Depends(require_session)])


@api.get("/decisions")
async def decisions(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    model: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, JsonValue]:
    entries: list[JsonValue] = list(await services.decision_log.recent(limit, model or None))
    return {"object": "list", "data": entries, "models": list[JsonValue](services.catalog.ids)}


@api.get("/savings")
async def savings(services: ServicesDep) -> dict[str, JsonValue]:
    return await services.decision_log.savings()


@api.get("/catalog")
async def catalog(services: ServicesDep) -> dict[str, JsonValue]:
    rows = catalog_status(services.catalog, services.availability, services.latency,
                          services.estimator.sources)  # fmt: skip
    return {"object": "list", "data": rows}


def _keys_enabled(services: ServicesDep) -> None:
    if services.settings.admin_key is None:
        raise PermissionDenied("key management is off: set SWITCHBOARD_ADMIN_KEY")


keys = APIRouter(prefix="/keys", dependencies=[Depends(_keys_enabled)], route_class=StrictJSONRoute)


@keys.get("")
async def list_keys(services: ServicesDep) -> dict[str, JsonValue]:
    records: list[JsonValue] = [r.model_dump() for r in await services.store.list_keys()]
    return {"object": "list", "data": records}


@keys.post("", status_code=201)
async def create_key(body: NewKey, services: ServicesDep) -> JSONResponse:
    record, key = await services.store.issue_key(
        body.name, rpm=body.rpm, tpm=body.tpm, budget_usd=body.budget_usd
    )
    return JSONResponse(record.model_dump() | {"key": key}, status_code=201,
                        headers={"Cache-Control": "no-store"})  # fmt: skip


@keys.delete("/{key_id}")
async def revoke_key(
    key_id: Annotated[str, PathParam(pattern=r"^key_[0-9a-f]{1,64}$")], services: ServicesDep
) -> dict[str, JsonValue]:
    if not await services.store.delete_key(key_id):
        raise NotFound(f"no key {key_id!r}", code="key_not_found")
    return {"id": key_id, "deleted": True}


api.include_router(keys)
router.include_router(api)
