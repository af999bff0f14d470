#!/bin/bash
# The broker answers an authenticated client.
config=$(bash /opt/canbao/kafka/admin-client.sh)
/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092 --command-config "$config" > /dev/null
