"""Prometheus metrics of session managers.

With `prometheus_client` installed, register a collector::

    from prometheus_client import REGISTRY
    from pysessionmanager.contrib.prometheus import SessionCollector

    REGISTRY.register(SessionCollector(manager))

Without it, `exposition(manager)` renders the same metrics as Prometheus'
text format, for a `/metrics` route of your own. The package itself never
requires `prometheus_client`.

Metrics (every one labelled `store`: the manager's store URL, password
hidden, or the name given with the manager):

- `pysessionmanager_sessions_created_total`
- `pysessionmanager_sessions_ended_total{reason}`: `logout`, `evicted`,
  `ended_with_user`
- `pysessionmanager_sessions_rotated_total`
- `pysessionmanager_sessions_expired_total`: removed by purges and by the
  store's sweeper in this process
- `pysessionmanager_write_retries_total`
- `pysessionmanager_errors_total{kind}`
- `pysessionmanager_operation_duration_seconds{operation}` (a histogram)
- `pysessionmanager_live_sessions`: the store's live sessions, read at each
  scrape (left out of a scrape when the store cannot answer)

Counters are per process, like every Prometheus client's: a server with
several worker processes is scraped per worker, or aggregated by the
sum over its `instance` label.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from pysessionmanager import SessionManager
from pysessionmanager.aio import AsyncSessionManager

__all__ = ["SessionCollector", "exposition", "families"]

PREFIX = "pysessionmanager_"

AnyManager = Union[SessionManager, AsyncSessionManager]


@dataclass
class Family:
    """One metric family, independent of any client library."""

    name: str  # without the `_total` of counters
    kind: str  # "counter", "gauge" or "histogram"
    help: str
    labels: tuple[str, ...]
    # counter and gauge: (label values, value)
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)
    # histogram: (label values, cumulative buckets, sum)
    histograms: list[tuple[tuple[str, ...], list[tuple[float, int]], float]] = field(
        default_factory=list
    )


Named = tuple[str, SessionManager]


def _named(managers: Iterable[AnyManager | tuple[str, AnyManager]]) -> list[Named]:
    """Each manager with the name its series are labelled with."""
    out = []
    for entry in managers:
        name, manager = entry if isinstance(entry, tuple) else (None, entry)
        if isinstance(manager, AsyncSessionManager):
            manager = manager.manager
        if not isinstance(manager, SessionManager):
            raise TypeError(
                "expected a SessionManager, an AsyncSessionManager or a (name, manager) pair, "
                f"got {type(manager).__name__}"
            )
        out.append((manager.store if name is None else str(name), manager))
    return out


def families(managers: Iterable[AnyManager | tuple[str, AnyManager]]) -> list[Family]:
    """The metrics of `managers` (each a manager, or a `(name, manager)` pair
    whose name labels its series) as plain families."""
    created = Family("sessions_created", "counter", "Sessions created.", ("store",))
    ended = Family(
        "sessions_ended",
        "counter",
        "Sessions ended before their time, by reason.",
        ("store", "reason"),
    )
    rotated = Family(
        "sessions_rotated", "counter", "Sessions moved to a new session id.", ("store",)
    )
    expired = Family(
        "sessions_expired", "counter", "Expired sessions removed by purges and sweeps.", ("store",)
    )
    retries = Family(
        "write_retries",
        "counter",
        "Compare-and-set writes tried again after another writer changed the session.",
        ("store",),
    )
    errors = Family(
        "errors", "counter", "Errors session operations raised, by kind.", ("store", "kind")
    )
    latency = Family(
        "operation_duration_seconds",
        "histogram",
        "Time session operations took, in seconds.",
        ("store", "operation"),
    )
    live = Family("live_sessions", "gauge", "Live sessions in the store.", ("store",))
    for name, manager in _named(managers):
        stats = manager.stats()
        if stats is not None:
            created.samples.append(((name,), stats["created"]))
            ended.samples.extend(((name, reason), n) for reason, n in stats["ended"].items())
            rotated.samples.append(((name,), stats["rotated"]))
            expired.samples.append(((name,), stats["expired"]))
            retries.samples.append(((name,), stats["retries"]))
            errors.samples.extend(((name, kind), n) for kind, n in stats["errors"].items())
            for operation, figures in stats["latency"].items():
                latency.histograms.append(
                    ((name, operation), figures["buckets"], figures["sum_seconds"])
                )
        try:
            live.samples.append(((name,), manager.count()))
        except (ConnectionError, OSError):
            pass  # a scrape still reports the counters while the store is away
    return [created, ended, rotated, expired, retries, errors, latency, live]


def _filled(found: list[Family]) -> Iterator[Family]:
    """The families with samples (none are counted with metrics off)."""
    return (f for f in found if f.samples or f.histograms)


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def exposition(*managers: AnyManager | tuple[str, AnyManager]) -> str:
    """The metrics of `managers` in Prometheus' text format (version 0.0.4),
    for a `/metrics` route; needs no client library."""
    lines: list[str] = []
    for family in _filled(families(managers)):
        name = PREFIX + family.name
        lines.append(f"# HELP {name}{'_total' if family.kind == 'counter' else ''} {family.help}")
        lines.append(f"# TYPE {name}{'_total' if family.kind == 'counter' else ''} {family.kind}")
        suffix = "_total" if family.kind == "counter" else ""
        for values, value in family.samples:
            lines.append(f"{name}{suffix}{_labels(family.labels, values)} {_number(value)}")
        for values, buckets, total in family.histograms:
            for bound, count in buckets:
                le = 'le="' + _number(bound) + '"'
                lines.append(f"{name}_bucket{_labels(family.labels, values, le)} {count}")
            lines.append(f"{name}_sum{_labels(family.labels, values)} {_number(total)}")
            lines.append(f"{name}_count{_labels(family.labels, values)} {buckets[-1][1]}")
    return "\n".join(lines) + "\n"


class SessionCollector:
    """A `prometheus_client` collector of `managers`' metrics: register it
    with a registry (`REGISTRY.register(SessionCollector(manager))`).

    Each argument is a manager or a `(name, manager)` pair; the name (by
    default the store URL, password hidden) labels its series as `store`.
    """

    def __init__(self, *managers: AnyManager | tuple[str, AnyManager]) -> None:
        self._managers = _named(managers)

    def describe(self) -> list[Any]:
        # Described as nothing, so registering never reads the store.
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        makers: Mapping[str, Any] = {
            "counter": CounterMetricFamily,
            "gauge": GaugeMetricFamily,
            "histogram": HistogramMetricFamily,
        }
        for family in _filled(families(self._managers)):
            make = makers[family.kind]
            metric = make(PREFIX + family.name, family.help, labels=list(family.labels))
            for values, value in family.samples:
                metric.add_metric(list(values), value)
            for values, buckets, total in family.histograms:
                metric.add_metric(
                    list(values), [(_number(bound), count) for bound, count in buckets], total
                )
            yield metric
