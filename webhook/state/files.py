"""Cluster state read from manifests: `serve --state PATH` and `check`.

Holds what a cluster built from these manifests would hold for the policies: its Namespaces
and network policies. A namespaced policy without `metadata.namespace` lands in "default",
which is where `kubectl apply -f` would put it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from webhook.manifests import Manifest, load_paths
from webhook.policy.model import Obj
from webhook.policy.objects import NAMESPACED_FLAVORS, flavor_of
from webhook.state.index import IndexedState

DEFAULT_NAMESPACE = "default"

PathArg = str | os.PathLike[str]


def load_state(paths: PathArg | Sequence[PathArg]) -> IndexedState:
    """Read the Namespaces and network policies of files and directories (ManifestError if bad)."""
    return state_from_objects(read_state_objects(paths))


def read_state_objects(paths: PathArg | Sequence[PathArg]) -> list[dict[str, Any]]:
    """The state's objects, for a caller that swaps them in at once (`replace_all` on reload)."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    result = load_paths([os.fspath(p) for p in paths], stdin=None)
    return state_objects(result.manifests)


def state_from_objects(objs: Iterable[Obj]) -> IndexedState:
    """An index of objects already read (the live cluster's, listed once)."""
    state = IndexedState()
    with state.batch():  # each namespace's record encoded once
        for obj in objs:
            state.upsert(obj)
    return state


def state_from_manifests(manifests: Iterable[Manifest]) -> IndexedState:
    return state_from_objects(state_objects(manifests))


def state_objects(manifests: Iterable[Manifest]) -> list[dict[str, Any]]:
    """The Namespaces and network policies among manifests, namespaced ones given a namespace."""
    found: list[dict[str, Any]] = []
    for manifest in manifests:
        obj = manifest.obj
        if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
            found.append(obj)
            continue
        flavor = flavor_of(obj)
        if flavor is None:
            continue
        if flavor in NAMESPACED_FLAVORS:
            obj = with_default_namespace(obj)
        found.append(obj)
    return found


def with_default_namespace(
    obj: dict[str, Any], namespace: str = DEFAULT_NAMESPACE
) -> dict[str, Any]:
    """obj with metadata.namespace set (a copy) when it has none; obj itself otherwise."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and meta.get("namespace"):
        return obj
    base_meta = meta if isinstance(meta, dict) else {}
    return {**obj, "metadata": {**base_meta, "namespace": namespace}}
