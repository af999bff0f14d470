#!/bin/bash
# Start the broker with SASL users from the environment. Passwords: letters and digits (they are written into
# JAAS lines). The storage is formatted once, with the SCRAM users of the admin and of each service.
set -euo pipefail
: "${KAFKA_ADMIN_PASSWORD:?}" "${KAFKA_REGISTRY_PASSWORD:?}" "${KAFKA_COLLECTION_PASSWORD:?}" "${KAFKA_CLUSTER_ID:?}"
config=/tmp/server.properties
cp /opt/canbao/kafka/server.properties "$config"
admin="username=\"admin\" password=\"$KAFKA_ADMIN_PASSWORD\""
{
  echo "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required $admin;"
  echo "listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required $admin user_admin=\"$KAFKA_ADMIN_PASSWORD\";"
} >> "$config"
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  /opt/kafka/bin/kafka-storage.sh format --config "$config" --cluster-id "$KAFKA_CLUSTER_ID" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$KAFKA_ADMIN_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=registry,password=$KAFKA_REGISTRY_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=collection,password=$KAFKA_COLLECTION_PASSWORD]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$config"
