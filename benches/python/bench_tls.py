"""What TLS costs per call: pysessionmanager on Redis and PostgreSQL, plain
text against TLS to the same server, one thread.

    .venv/bin/python benches/python/bench_tls.py [--quick] [--repeats N]

Starts one redis-server with a plain and a TLS port, and one PostgreSQL with
``ssl=on``, with certificates made by the tests' helper (a P-256 CA and
server certificate). TLS is ``rediss://…?ssl_ca_certs=…`` and
``sslmode=verify-full``; plain is ``redis://`` and ``sslmode=disable``.
Connections are reused, so the handshake is paid once per connection;
the runs are interleaved, medians of ``--repeats``.
"""

from __future__ import annotations

import datetime
import platform
import sys
import tempfile
from pathlib import Path

from bench_memory import cpu_name  # this folder: the CPU model from /proc/cpuinfo
from workloads import Pysessionmanager, Runs, arguments, interleaved, ops_per_second, print_runs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
from ports import free_port  # noqa: E402
from servers_postgres import tls_server  # noqa: E402
from servers_redis import RedisServer  # noqa: E402
from tls_pki import Pki  # noqa: E402

WORKLOADS = ("create", "get")
COUNTS = {"create": 10_000, "get": 20_000}


def main() -> None:
    args = arguments(__doc__).parse_args()
    scale = 10 if args.quick else 1
    folder = Path(tempfile.mkdtemp(prefix="bench-tls-"))
    pki = Pki.make(folder / "pki")
    tls_port = free_port()
    (folder / "redis").mkdir()
    redis = RedisServer(
        folder / "redis",
        *("--tls-port", str(tls_port), "--tls-cert-file", str(pki.server_cert)),
        *("--tls-key-file", str(pki.server_key), "--tls-ca-cert-file", str(pki.ca)),
        *("--tls-auth-clients", "no"),
    )
    redis.start()
    postgres, server_pki = tls_server()
    postgres.start()
    urls = {
        "redis, plain": redis.url(prefix="plain:"),
        "redis, TLS": f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={pki.ca}&prefix=tls:",
        "postgres, plain": postgres.url(sslmode="disable"),
        "postgres, TLS": postgres.url(sslmode="verify-full", sslrootcert=server_pki.ca),
    }
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{when}, {cpu_name()}, Python {platform.python_version()}, one thread")
    print("\n| store | workload | plain ops/s | TLS ops/s | TLS / plain |")
    print("|---|---|---:|---:|---:|")
    runs: Runs = {}
    try:
        for store in ("redis", "postgres"):
            for workload in WORKLOADS:
                n = COUNTS[workload] // scale
                plain, tls = interleaved(
                    runs,
                    workload,
                    [f"{store}, plain", f"{store}, TLS"],
                    args.repeats,
                    lambda w, impl, n=n: ops_per_second(Pysessionmanager(urls[impl]), w, n),
                )
                print(
                    f"| {store} | {workload} | {plain:,.0f} | {tls:,.0f} | {tls / plain:.2f} |",
                    flush=True,
                )
        print_runs(runs)
    finally:
        redis.stop()
        postgres.remove()


if __name__ == "__main__":
    main()
