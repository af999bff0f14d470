"""Reading a `GET /metrics` answer the way Prometheus does, for the tests of the figures it shows."""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ROOT

# What no label may carry: an 18-character ID number, a mainland mobile number, a record's UUID.
ID_NUMBER = re.compile(r"[1-9]\d{16}[\dXx]")
MOBILE = re.compile(r"1[3-9]\d{9}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}


@dataclass(frozen=True)
class Scrape:
    """One scrape: every sample by name and labels, and the names of the series its families describe."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    series: frozenset[str]
    sample_names: frozenset[str]

    @classmethod
    def of(cls, text: str) -> "Scrape":
        samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        series = set()
        for family in text_string_to_metric_families(text):
            # The names a query can use, whether or not any series exists yet (a counter nothing moved).
            series |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(samples, frozenset(series), frozenset(name for name, _ in samples))

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when the series is not there (a counter nothing has moved yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, found), v in self.samples.items() if n == name and wanted <= found)

    def label_values(self) -> set[str]:
        return {value for _, labels in self.samples for _, value in labels}

    def exports(self, name: str) -> bool:
        """Whether a query may name `name`: a series this scrape described (`_total`, `_bucket`…)."""
        return name in self.series or name in self.sample_names


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape.of(response.text)


def personal_labels(found: Scrape, *values: str) -> set[str]:
    """Label values carrying personal data or a record id: ID or mobile numbers, UUIDs, the given names."""
    return {
        label
        for label in found.label_values()
        if ID_NUMBER.search(label)
        or MOBILE.search(label)
        or UUID.search(label)
        or any(v in label for v in values)
    }


# What Prometheus and Grafana are given (deploy/), and the metrics their queries name.
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "canbao.json"
# Series Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up"}
METRIC = re.compile(r"\b(canbao_[a-z0-9_]+|up)\b(?!\s*\()")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [rule for group in load(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def panel_queries() -> list[str]:
    """Every panel's query as Prometheus would get it, the dashboard's variable given a value."""
    return [t["expr"].replace("$coverage_year", "2024") for p in panels() for t in p["targets"]]


def named_metrics(expressions: list[str]) -> set[str]:
    """The metrics the expressions name (label values in quotes are not metric names)."""
    return {m for expr in expressions for m in METRIC.findall(re.sub(r'"[^"]*"', '""', expr))}
