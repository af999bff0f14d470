"""Prometheus and Grafana in docker-compose.yml, validated as the compose file is (no Docker engine here):
Prometheus's own checker (`promtool`, which `make test` takes out of Debian's prometheus package) reads the
configuration, the alert rules, their unit tests and every query of the dashboard; and every metric a rule or
a panel names is one the services export, as a real scrape of both shows."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import Harness
from tests.metrics import (
    GRAFANA,
    PROMETHEUS,
    PROMETHEUS_OWN,
    Scrape,
    dashboard,
    load,
    named_metrics,
    panel_queries,
    panels,
    rules,
    scrape,
)
from tests.support import ROOT

PROMTOOL = ROOT / ".venv" / "bin" / "promtool"
ALERTS = {
    "OutboxEventsOlderThanAMinute",
    "DeadLettersWaiting",
    "ConsumerLagGrowing",
    "HighErrorRate",
    "ServiceDown",
    "MetricsDatabaseUnreachable",
}


@pytest.fixture(scope="module")
def promtool() -> Path:
    """Its absence fails the tests rather than skipping them."""
    assert PROMTOOL.exists(), (
        f"{PROMTOOL} is missing: `make promtool` takes it from Debian's prometheus package"
    )
    return PROMTOOL


def run(promtool: Path, *args: str, stdin: str | None = None, cwd: Path = PROMETHEUS) -> str:
    result = subprocess.run(
        [str(promtool), *args], input=stdin, capture_output=True, text=True, cwd=cwd, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_the_prometheus_configuration_and_rules_are_valid(promtool: Path) -> None:
    run(promtool, "check", "config", "prometheus.yml")
    run(promtool, "check", "rules", "alerts.yml")
    assert {rule["alert"] for rule in rules()} == ALERTS
    for rule in rules():
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_each_alert_fires_when_it_should_and_not_before(promtool: Path) -> None:
    """deploy/prometheus/alerts.test.yml: the outbox over a minute, dead letters above zero, lag growing for
    ten minutes, errors above 5% for five, a replica or its database away."""
    tested = {
        t["alertname"]
        for case in load(PROMETHEUS / "alerts.test.yml")["tests"]
        for t in case["alert_rule_test"]
    }
    assert tested == ALERTS
    assert "SUCCESS" in run(promtool, "test", "rules", "alerts.test.yml")


def test_the_check_catches_a_broken_rule(promtool: Path, tmp_path: Path) -> None:
    broken = {
        "groups": [{"name": "x", "rules": [{"alert": "Broken", "expr": "sum by (job (canbao_enrollments)"}]}]
    }
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    result = subprocess.run(
        [str(promtool), "check", "rules", "broken.yml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode != 0


def test_every_dashboard_query_is_valid_promql(promtool: Path, tmp_path: Path) -> None:
    """Each panel's query, checked by Prometheus's parser as a recording rule."""
    recorded = [{"record": f"canbao:panel_{i}", "expr": expr} for i, expr in enumerate(panel_queries())]
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": recorded}]}))
    run(promtool, "check", "rules", "panels.yml", cwd=tmp_path)


def test_the_dashboard_is_provisioned_with_its_data_source() -> None:
    board = dashboard()
    [source] = load(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    [provider] = load(GRAFANA / "provisioning" / "dashboards" / "canbao.yml")["providers"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    assert board["uid"]
    assert board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["expr"] and t["datasource"]["uid"] == source["uid"] for t in panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    titles = " ".join(p["title"] for p in panels())
    for subject in ("Enrolled", "Payments per minute", "Outbox", "Consumer lag", "Error"):
        assert subject in titles
    [variable] = board["templating"]["list"]
    assert variable["name"] == "coverage_year"
    compose = load(ROOT / "docker-compose.yml")
    assert (
        f"./deploy/grafana/dashboards:{provider['options']['path']}:ro"
        in compose["services"]["grafana"]["volumes"]
    )


def test_compose_scrapes_every_replica_over_the_monitoring_network() -> None:
    compose = load(ROOT / "docker-compose.yml")
    services = compose["services"]
    config = load(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in services["grafana"]["volumes"]
    subnet = compose["networks"]["monitoring"]["ipam"]["config"][0]["subnet"]
    jobs = {job["job_name"]: job["dns_sd_configs"][0] for job in config["scrape_configs"]}
    assert set(jobs) == {"registry", "collection"}
    for name, port in (("registry", 8001), ("collection", 8002)):
        service = services[name]
        # One address per replica: DNS service discovery of the compose service's name.
        assert (jobs[name]["names"], jobs[name]["type"], jobs[name]["port"]) == ([name], "A", port)
        assert f":{port}" in service["ports"][0]
        assert "monitoring" in service["networks"]
        allowed = service["environment"][f"{name.upper()}_METRICS_ALLOWED_NETWORKS"]
        assert subnet in allowed
        assert json.loads(allowed.replace(subnet, "10.89.0.0/24"))  # the JSON the setting reads
    assert services["prometheus"]["networks"] == ["monitoring"]
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]  # not published beyond the host
    assert "GF_SECURITY_ADMIN_PASSWORD" in services["grafana"]["environment"]


async def test_every_metric_in_the_rules_and_the_dashboard_is_exported(
    registry: Harness, collection: Harness
) -> None:
    scrapes = {"registry": await scrape(registry.client), "collection": await scrape(collection.client)}
    named = named_metrics([rule["expr"] for rule in rules()]) | named_metrics(panel_queries())
    assert {
        "canbao_outbox_oldest_unpublished_age_seconds",
        "canbao_payments_total",
        "canbao_enrollments",
    } <= named
    missing = {m for m in named - PROMETHEUS_OWN if not any(s.exports(m) for s in scrapes.values())}
    assert not missing, missing
    # Each service reads its own database figures (in this one process both share the process's counters).
    assert scrapes["registry"].exports("canbao_enrollments")
    assert not scrapes["collection"].exports("canbao_enrollments")
    assert scrapes["collection"].exports("canbao_bills")


async def test_the_metrics_pass_prometheus_lint(
    promtool: Path, registry: Harness, collection: Harness
) -> None:
    for harness in (registry, collection):
        response = await harness.client.get("/metrics")
        assert response.status_code == 200
        Scrape.of(response.text)  # parses as Prometheus's text format
        assert run(promtool, "check", "metrics", stdin=response.text).strip() == ""
