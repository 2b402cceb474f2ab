#!/bin/sh
# One-shot (temporalio/admin-tools): the namespace Daemonflow runs in. Its search attributes
# (DaemonflowAgent, DaemonflowState, ...) are registered by every worker at start, when missing.
set -eu
NAMESPACE=${DAEMONFLOW_NAMESPACE:-default}
ADDRESS=${TEMPORAL_ADDRESS:-temporal:7233}
until temporal operator cluster health --address "$ADDRESS"; do echo "waiting for Temporal at $ADDRESS"; sleep 3; done
temporal operator namespace describe -n "$NAMESPACE" --address "$ADDRESS" >/dev/null 2>&1 \
  || temporal operator namespace create -n "$NAMESPACE" --address "$ADDRESS"
echo "namespace $NAMESPACE ready"
