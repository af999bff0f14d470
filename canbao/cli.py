"""`canbao`: the operator's command line."""

import json
from pathlib import Path

import typer

from canbao import stack
from shared.events import COLLECTION_PAYMENTS, EVENT_TYPES, REGISTRY_ENROLLMENTS, Envelope

app = typer.Typer(help="Canbao (参保) operator commands", no_args_is_help=True)


@app.command()
def run(
    broker: bool = typer.Option(
        True, help="Start the embedded broker; --no-broker uses *_KAFKA_BOOTSTRAP_SERVERS"
    ),
) -> None:
    """Start the broker, migrate both databases, start both services; Ctrl-C stops everything."""
    raise typer.Exit(stack.run(with_broker=broker))


@app.command()
def broker() -> None:
    """Start only the embedded Kafka-protocol broker (CANBAO_BROKER_HOST/PORT) until Ctrl-C."""
    settings = stack.StackSettings()
    process = stack.start_broker(settings.broker_host, settings.broker_port, None)
    typer.echo(f"broker listening on {settings.bootstrap}")
    try:
        process.wait()
    except KeyboardInterrupt:
        stack.stop(process, "broker")


@app.command()
def schemas(
    out: Path = typer.Option(Path("docs/events"), help="Directory for the JSON Schema files"),
) -> None:
    """Export the JSON Schema of the event envelope and of every event payload."""
    out.mkdir(parents=True, exist_ok=True)
    documents = {"envelope": Envelope.model_json_schema()}
    for event_type, model in EVENT_TYPES.items():
        documents[event_type] = model.model_json_schema()
    for name, schema in documents.items():
        (out / f"{name}.schema.json").write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
    typer.echo(
        f"wrote {len(documents)} schemas to {out} (topics: {REGISTRY_ENROLLMENTS}, {COLLECTION_PAYMENTS})"
    )
