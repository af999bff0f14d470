from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from registry.accounts.dependencies import viewer_of
from registry.context import RegistryContext
from registry.dashboard import service
from registry.policy.errors import PolicyNotFound
from shared.auth import AREA_ERRORS, CurrentAccess, Role, allow
from shared.db import DbSession
from shared.errors import error_responses
from shared.fields import CoverageYearQuery, RegionCodeQuery

router = APIRouter(tags=["dashboard"])

# The figures are not kept by caches (the back button after signing out shows nothing) nor framed by others.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


@router.get(
    "/dashboard",
    summary="The operators' dashboard (参保工作看板), in Chinese",
    description="Without a region and year: the policies to choose from. With them: coverage per district "
    "or township against the target, subsidised groups against 应保尽保, payments per day, and screening "
    "follow-up per township, as of `as_of` (today when left out). Browsers sign in at `/sign-in`: the "
    "session cookie is accepted as a bearer token is.",
    response_class=HTMLResponse,
    responses=error_responses(
        PolicyNotFound,
        *AREA_ERRORS,
        extra={
            303: {"description": "A browser without a (live) sign-in: to the sign-in page, and back after"}
        },
    ),
    dependencies=[allow(Role.STAFF)],
)
async def dashboard(
    request: Request,
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
    region_code: RegionCodeQuery | None = None,
    coverage_year: CoverageYearQuery | None = None,
    as_of: Annotated[date | None, Query()] = None,
) -> HTMLResponse:
    if region_code is None or coverage_year is None:
        regions = access.regions_filter()
        policies = sorted(
            (p for p in registry.policies.all() if regions is None or {r.code for r in p.regions} & regions),
            key=lambda p: (p.coverage_year, p.policy_id),
            reverse=True,
        )
        return templates.TemplateResponse(
            request,
            "index.html",
            {"policies": policies, "viewer": viewer_of(request, access)},
            headers=PAGE_HEADERS,
        )
    access.require_region(region_code)
    built = await service.build(session, registry, region_code, coverage_year, as_of=as_of)
    return templates.TemplateResponse(
        request, "dashboard.html", {"d": built, "viewer": viewer_of(request, access)}, headers=PAGE_HEADERS
    )
