"""What the registry's rules consult besides the database, and the dependency that hands it to a request."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from registry.exclusion.service import ExclusionLookup
from registry.policy.book import PolicyBook
from shared.clock import Clock


@dataclass(frozen=True)
class Registry:
    """The policies, the exclusion lookup and the clock: loaded once at start-up, shared by every domain."""

    policies: PolicyBook
    exclusions: ExclusionLookup
    clock: Clock


def get_registry_of(app: FastAPI) -> Registry:
    state = app.state
    return Registry(policies=state.policies, exclusions=state.exclusion_lookup, clock=state.clock)


async def get_registry(request: Request) -> Registry:
    # async: FastAPI runs a plain function dependency on a worker thread, a hop for nothing here.
    return get_registry_of(request.app)


RegistryContext = Annotated[Registry, Depends(get_registry)]
