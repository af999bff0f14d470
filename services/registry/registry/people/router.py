from typing import Annotated

from fastapi import APIRouter, Query

from registry.people import service
from registry.people.errors import IdentityReviewClosed, IdentityReviewNotFound
from registry.people.models import IdentityReviewState
from registry.people.schemas import IdentityDecision, IdentityReviewList, IdentityReviewOut
from shared.auth import AREA_ERRORS, CurrentAccess, Role, allow
from shared.db import DbSession, RowId
from shared.errors import error_responses

router = APIRouter(prefix="/v1/identity-reviews", tags=["people"])


@router.get(
    "",
    summary="Identity reviews (身份核查): provisional records another resident made, replaced by the person",
    description="A person who enrolled with their own verified identity under a name other than the one "
    "another resident had recorded for their ID number: the verified name took effect at once; staff of the "
    "region review the case and the resident who created the record.",
    dependencies=[allow(Role.STAFF)],
)
async def list_reviews(
    session: DbSession,
    access: CurrentAccess,
    state: Annotated[IdentityReviewState | None, Query()] = IdentityReviewState.OPEN,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> IdentityReviewList:
    reviews = await service.reviews(session, state=state, regions=access.regions_filter(), limit=limit)
    for review in reviews:
        access.touch(None, f"identity-review:{review.id}")
    return IdentityReviewList(items=[IdentityReviewOut.of(r) for r in reviews])


@router.post(
    "/{review_id}/decision",
    summary="Decide an identity review: the verified name stands, or the earlier one is restored",
    responses=error_responses(IdentityReviewNotFound, IdentityReviewClosed, *AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def decide_review(
    review_id: RowId, body: IdentityDecision, session: DbSession, access: CurrentAccess
) -> IdentityReviewOut:
    review = await service.review(session, review_id)
    if review.region_code is not None:
        access.require_region(review.region_code)
    access.touch(None, f"identity-review:{review.id}")
    return IdentityReviewOut.of(await service.decide(session, review, body))
