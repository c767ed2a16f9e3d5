"""pysessionmanager on a Redis Cluster against the same on one Redis server, with
redis-py's RedisCluster (raw SET EX / GET) in the same run.

    .venv/bin/pip install -r benches/python/requirements-bench.txt
    .venv/bin/python benches/python/bench_redis_cluster.py [--quick]

Starts a standalone redis-server and a cluster of 3 masters and 3 replicas (the tests'
harness), all without persistence on loopback. As the design notes (section 5) say, the
servers that answer and the client are pinned to the same CPU, so that what is measured is
the client and the servers' work, not wakeups crossing vCPUs; the replicas run on the other
CPU, as they would on machines of their own (replicating every write is the cluster's
cost, not a client's). One thread: create / get / update, each
store and peer interleaved; then 1 and 8 threads sharing one manager (or client).
"""

from __future__ import annotations

import datetime
import itertools
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import redis
from bench_memory import cpu_name
from bench_redis import SERVER_CPU as CPU
from bench_redis import RedisPy, redis_benchmark
from threaded import ops_per_second
from workloads import LIVE, Pysessionmanager, Runs, arguments, interleaved, print_runs
from workloads import ops_per_second as workload_ops_per_second

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
from servers_redis import RedisServer  # noqa: E402
from servers_redis_cluster import RedisCluster  # noqa: E402

IMPLS = ("standalone", "cluster", "redis-py cluster")
WORKLOADS = ("create", "get", "update")
COUNTS = (20_000, 40_000, 20_000)  # ops per measurement; --quick divides by 10
PINNED = ["taskset", "-c", str(CPU)]


class RawCluster(RedisPy):
    """redis-py's RedisCluster, used as bench_redis.py uses redis.Redis: SET key JSON EX /
    GET + json.loads; update = GET + SET."""

    def __init__(self, port: int) -> None:
        self.r = redis.RedisCluster(host="127.0.0.1", port=port)
        self.close = self.r.close


class Servers:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
        (self.folder / "one").mkdir()
        self.one = RedisServer(self.folder / "one", launcher=PINNED)
        self.one.start()
        self.cluster = RedisCluster(self.folder / "cluster")
        for node in self.cluster.nodes:
            node.launcher = PINNED
        self.cluster.start()
        other = max(os.sched_getaffinity(0) - {CPU}, default=CPU)
        for port in self.cluster.replicas():
            pid = redis.Redis(port=port).info("server")["process_id"]
            os.sched_setaffinity(pid, {other})

    def make(self, impl: str) -> object:
        if impl == "standalone":
            return Pysessionmanager(f"redis://127.0.0.1:{self.one.port}/0")
        if impl == "cluster":
            return Pysessionmanager(self.cluster.url())
        return RawCluster(self.cluster.seeds[0])

    def flush(self) -> None:
        self.one.client().flushall()
        for port in self.cluster.masters():
            redis.Redis(port=port).flushall()

    def stop(self) -> None:
        self.one.stop()
        self.cluster.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def threaded(servers: Servers, impl: str, op: str, threads: int, seconds: float) -> float:
    servers.flush()
    s = servers.make(impl)
    live = [s.create(f"user{i}") for i in range(LIVE)]  # type: ignore[attr-defined]

    def make_op(t: int) -> Callable[[], None]:
        if op == "create":
            return lambda: s.create(f"user{t}")  # type: ignore[attr-defined]
        ids = itertools.cycle(live[t * 7919 % LIVE :] + live[: t * 7919 % LIVE])
        return lambda: s.get(next(ids))  # type: ignore[attr-defined]

    rate, _ = ops_per_second(threads, seconds, make_op)
    s.close()  # type: ignore[attr-defined]
    return rate


def main() -> None:
    p = arguments(__doc__)
    p.add_argument("--seconds", type=float, default=2.0, help="per threaded measurement")
    args = p.parse_args()
    scale = 10 if args.quick else 1
    os.sched_setaffinity(0, {CPU})
    servers = Servers()
    server_version = servers.one.client().info("server")["redis_version"]

    def one_run(workload: str, impl: str) -> float:
        servers.flush()
        n = COUNTS[WORKLOADS.index(workload)] // scale
        return workload_ops_per_second(servers.make(impl), workload, n)

    for workload in WORKLOADS:  # warm-up, untimed
        for impl in IMPLS:
            servers.flush()
            workload_ops_per_second(servers.make(impl), workload, 200)

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"""# pysessionmanager on Redis Cluster vs one Redis server

- Python {platform.python_version()}; Redis {server_version} (no persistence), loopback TCP
- Machine: {cpu_name()} ({platform.machine()}), os.cpu_count() = {os.cpu_count()}
- Date: {now}
- Pinning: the standalone redis-server, the 3 masters and the client on CPU {CPU}; the 3
  replicas on the other CPU
- pysessionmanager {version("pysessionmanager")}: SessionManager(expiration_time=3600,
  store="redis://…" or "redis+cluster://3 masters"); redis-py {version("redis")} RedisCluster
  with SET key JSON EX 3600 / GET + json.loads; update = GET + SET
- Median of {args.repeats} runs after an untimed warm-up; implementations interleaved
""")
    print("## One thread\n")
    print("| workload (ops/s) | standalone | cluster | redis-py RedisCluster |", end="")
    print(" cluster cost / standalone | cluster / redis-py |\n|---|---:|---:|---:|---:|---:|")
    runs: Runs = {}
    for workload in WORKLOADS:
        one, cluster, raw = interleaved(runs, workload, IMPLS, args.repeats, one_run)
        rates = f"{one:,.0f} | {cluster:,.0f} | {raw:,.0f}"
        cells = f"{rates} | {one / cluster:.2f} | {cluster / raw:.2f}"
        print(f"| {workload} | {cells} |", flush=True)

    n = 100_000 // scale
    one = redis_benchmark(servers.one.port, 1, n)
    many = redis_benchmark(servers.cluster.seeds[0], 1, n, "--cluster")
    print(
        f"\nServer ceiling, redis-benchmark -c 1 (pinned like the servers): one server SET"
        f" {one['SET']:,.0f}/s, GET {one['GET']:,.0f}/s; the cluster (--cluster) SET"
        f" {many['SET']:,.0f}/s, GET {many['GET']:,.0f}/s.\n"
    )

    print("\n## 1 and 8 threads sharing one manager\n")
    print("| op | standalone 1 | standalone 8 | cluster 1 | cluster 8 | cluster 8 / standalone 8 |")
    print("|---|---:|---:|---:|---:|---:|")
    for op in ("get", "create"):
        rates = {
            (impl, threads): threaded(servers, impl, op, threads, args.seconds / scale)
            for impl in ("standalone", "cluster")
            for threads in (1, 8)
        }
        cells = " | ".join(
            f"{rates[impl, t]:,.0f}" for impl in ("standalone", "cluster") for t in (1, 8)
        )
        ratio = rates["cluster", 8] / rates["standalone", 8]
        print(f"| {op} | {cells} | {ratio:.2f} |", flush=True)

    print_runs(runs)
    servers.stop()


if __name__ == "__main__":
    main()
