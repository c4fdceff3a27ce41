"""The endpoint a Pod (or a workload's pod template) creates, as the engine judges it."""

from __future__ import annotations

from collections.abc import Mapping

from webhook.policy.engine.core import Endpoint, Labels
from webhook.policy.model import Namespace, Obj


def endpoint_of(namespace: Namespace, pod: Obj) -> Endpoint:
    """The endpoint of a Pod or pod template (`{metadata, spec}`): its labels, exactly, and
    its service account (`spec.serviceAccountName`, else the deprecated
    `spec.serviceAccount`, else `default`, which the ServiceAccount admission plugin sets).

    Host-network pods are not subject to network policy at all; callers skip them first.
    """
    meta = pod.get("metadata") if isinstance(pod, Mapping) else None
    raw = meta.get("labels") if isinstance(meta, Mapping) else None
    labels = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
    spec = pod.get("spec") if isinstance(pod, Mapping) else None
    account = "default"
    if isinstance(spec, Mapping):
        for field in ("serviceAccountName", "serviceAccount"):
            value = spec.get(field)
            if isinstance(value, str) and value:
                account = value
                break
    return Endpoint.of(namespace, Labels.exactly(labels), account)


def is_host_network(pod: Obj) -> bool:
    spec = pod.get("spec") if isinstance(pod, Mapping) else None
    return isinstance(spec, Mapping) and spec.get("hostNetwork") is True
