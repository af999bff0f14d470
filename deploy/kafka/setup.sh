#!/bin/bash
# One-shot, after the broker is healthy: create the topics and grant the ACLs of acls.txt (idempotent).
set -euo pipefail
config=$(bash /opt/canbao/kafka/admin-client.sh)
bootstrap=kafka:9092
for topic in registry.enrollments.v1 collection.payments.v1 registry.enrollments.v1.dlq collection.payments.v1.dlq; do
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$bootstrap" --command-config "$config" --create \
    --if-not-exists --topic "$topic" --partitions "${KAFKA_TOPIC_PARTITIONS:-6}" --replication-factor 1
done
grep -v '^#' /opt/canbao/kafka/acls.txt | while read -r principal operations resource name; do
  [ -n "$principal" ] || continue
  arguments=()
  for operation in ${operations//,/ }; do arguments+=(--operation "$operation"); done
  /opt/kafka/bin/kafka-acls.sh --bootstrap-server "$bootstrap" --command-config "$config" --add \
    --allow-principal "User:$principal" "${arguments[@]}" "--$resource" "$name"
done
