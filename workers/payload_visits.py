"""Payload walks only where they can change a payload.

Why: for every workflow activation, temporalio 1.35 walks the activation's protobuf three times
before the workflow runs (external-storage references, external storage, payload codec) and the
completion three times after it, calling the data converter on every payload sequence it finds.
With no payload codec and no external storage each of those calls returns its payloads unchanged
(``DataConverter._decode_payload_has_effect`` is the SDK's own name for that condition), so the
walks are pure cost: 7.9 % of a busy worker's samples holding the interpreter lock (py-spy, 50
conversations at once, ``bench/README.md``), against about 4 % for running the workflow code itself.

What changes: ``decode_activation`` and ``encode_completion`` return at once when the converter
they are given has neither a codec nor external storage; otherwise the SDK's functions run, as
before. Daemonflow configures neither, so its workers never walk; a worker given a codec (the
runner test's recording codec) walks exactly as the SDK does. Payloads are still converted to and
from Python values by the workflow instance, which these walks never did.

It replaces two functions of the SDK's ``temporalio.bridge.worker`` module, which its workflow worker
looks up at each activation. temporalio is pinned (``pyproject.toml``); ``tests/test_workflow_runner.py``
fails if an upgrade stops calling them there (the walks would come back, nothing worse), and checks
that a worker with a codec still walks every payload.
"""

from __future__ import annotations

import temporalio.bridge.worker as bridge_worker
from temporalio.converter import DataConverter
from temporalio.converter._extstore import StorageOperationMetrics

_sdk_decode = bridge_worker.decode_activation
_sdk_encode = bridge_worker.encode_completion


def _walks_change_nothing(data_converter: DataConverter) -> bool:
    return data_converter.payload_codec is None and data_converter.external_storage is None


async def decode_activation(activation, data_converter: DataConverter, decode_headers: bool,
                            storage_concurrency_limit: int) -> StorageOperationMetrics:
    if _walks_change_nothing(data_converter):
        return StorageOperationMetrics()
    return await _sdk_decode(activation, data_converter, decode_headers, storage_concurrency_limit)


async def encode_completion(completion, data_converter: DataConverter, encode_headers: bool,
                            storage_concurrency_limit: int) -> StorageOperationMetrics:
    if _walks_change_nothing(data_converter):
        return StorageOperationMetrics()
    return await _sdk_encode(completion, data_converter, encode_headers, storage_concurrency_limit)


def install() -> None:
    """Idempotent; the composition root calls it before it builds a worker."""
    bridge_worker.decode_activation = decode_activation
    bridge_worker.encode_completion = encode_completion
