#!/bin/bash
# Writes the admin's client properties (SASL/SCRAM-SHA-512) and prints their path, for the Kafka tools.
set -euo pipefail
: "${KAFKA_ADMIN_PASSWORD:?}"
config=/tmp/admin-client.properties
cat > "$config" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$KAFKA_ADMIN_PASSWORD";
PROPERTIES
echo "$config"
