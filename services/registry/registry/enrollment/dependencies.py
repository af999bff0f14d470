from typing import Annotated

from fastapi import Depends, Request

from registry.enrollment.service import Registry


def get_registry(request: Request) -> Registry:
    state = request.app.state
    return Registry(policies=state.policies, exclusions=state.exclusion_lookup, clock=state.clock)


RegistryContext = Annotated[Registry, Depends(get_registry)]
