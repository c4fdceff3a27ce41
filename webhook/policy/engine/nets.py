"""How much of each address family a list of CIDRs (minus exceptions) covers.

An unnamed outside address (SPEC 2.5) is matched by address criteria only when they cover
every IPv4 or every IPv6 address (`0.0.0.0/0`, or `0.0.0.0/1` + `128.0.0.0/1`). Criteria that
leave out less than 1 % of a family (`0.0.0.0/0` except a few ranges) are "near all": the
engine calls their match unknown, since which outside address is meant is not named, and
restrict-allow-all lists them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from webhook.policy.engine.core import Tri

NEAR_ALL_FRACTION = 0.01
_SIZE = {4: 1 << 32, 6: 1 << 128}

Intervals = list[tuple[int, int]]  # sorted, disjoint, half-open [start, end)


@dataclass(frozen=True, slots=True)
class Coverage:
    """The fraction of IPv4 and IPv6 addresses matched; readable=False if a CIDR is invalid."""

    readable: bool
    v4: float
    v6: float
    # Exact, since a float rounds "all of IPv6 but one address" up to 1.0.
    whole_v4: bool = False
    whole_v6: bool = False

    @property
    def whole_family(self) -> bool:
        return self.readable and (self.whole_v4 or self.whole_v6)

    @property
    def near_all(self) -> bool:
        """Leaves out something, but less than 1 % of some family."""
        return (
            self.readable
            and not self.whole_family
            and max(self.v4, self.v6) > 1.0 - NEAR_ALL_FRACTION
        )

    def match(self) -> Tri:
        """Whether an unnamed outside address is matched: yes, no, or not known."""
        if not self.readable or self.near_all:
            return None
        return self.whole_family


EVERYTHING = Coverage(True, 1.0, 1.0, whole_v4=True, whole_v6=True)
NOTHING = Coverage(True, 0.0, 0.0)
UNREADABLE = Coverage(False, 0.0, 0.0)


def _network(text: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not isinstance(text, str):
        return None
    try:
        # Host bits are allowed by the API servers ("10.0.0.1/0" is everything).
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _union(intervals: Iterable[tuple[int, int]]) -> Intervals:
    merged: Intervals = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _subtract(base: Intervals, cut: Intervals) -> Intervals:
    result: Intervals = []
    for start, end in base:
        pos = start
        for cut_start, cut_end in cut:
            if cut_end <= pos or cut_start >= end:
                continue
            if cut_start > pos:
                result.append((pos, cut_start))
            pos = max(pos, cut_end)
            if pos >= end:
                break
        if pos < end:
            result.append((pos, end))
    return result


def _span(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int]:
    start = int(network.network_address)
    return start, start + network.num_addresses


def coverage(
    blocks: Sequence[tuple[object, Sequence[object]]] | None,
    not_nets: Sequence[object] = (),
) -> Coverage:
    """What `blocks` (each a CIDR and its exceptions) minus `not_nets` cover.

    `blocks` None means "no address criterion" (every address), as a Calico rule without
    `nets`. Any unreadable CIDR makes the whole answer unreadable.
    """
    per_family: dict[int, Intervals] = {}
    for family, size in _SIZE.items():
        per_family[family] = [(0, size)] if blocks is None else []
    if blocks is not None:
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for cidr, excepts in blocks:
            network = _network(cidr)
            if network is None:
                return UNREADABLE
            cut: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
            for item in excepts:
                excluded = _network(item)
                if excluded is None:
                    return UNREADABLE
                cut[excluded.version].append(_span(excluded))
            family = network.version
            spans[family].extend(_subtract([_span(network)], _union(cut[family])))
        per_family = {family: _union(spans[family]) for family in _SIZE}
    removed: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    for item in not_nets:
        network = _network(item)
        if network is None:
            return UNREADABLE
        removed[network.version].append(_span(network))
    covered: dict[int, int] = {}
    for family in _SIZE:
        left = _subtract(per_family[family], _union(removed[family]))
        covered[family] = sum(end - start for start, end in left)
    return Coverage(
        True,
        covered[4] / _SIZE[4],
        covered[6] / _SIZE[6],
        whole_v4=covered[4] == _SIZE[4],
        whole_v6=covered[6] == _SIZE[6],
    )
