from typing import Annotated

from fastapi import Depends, FastAPI, Request

from registry.enrollment.service import Registry


def get_registry_of(app: FastAPI) -> Registry:
    state = app.state
    return Registry(policies=state.policies, exclusions=state.exclusion_lookup, clock=state.clock)


def get_registry(request: Request) -> Registry:
    return get_registry_of(request.app)


RegistryContext = Annotated[Registry, Depends(get_registry)]
