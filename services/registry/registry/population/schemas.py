from pydantic import BaseModel, Field


class TownshipPopulation(BaseModel):
    township: str = Field(description="未填乡镇 for people reported without one")
    registered: int


class PopulationSummary(BaseModel):
    """户籍人口 per township, counted from the household-registration data loaded for the year."""

    region_code: str
    coverage_year: int
    rows: list[TownshipPopulation]
    total: int
