"""N get_session calls on 1,000 sessions, for instruction counts that stay
the same from run to run on a noisy machine. Run under callgrind for two
N and divide the difference by their difference (docs/BENCHMARKS.md):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benches/python/count_get_instructions.py 2000 [store URL]
"""

import sys

from pysessionmanager import SessionManager

n = int(sys.argv[1])
url = sys.argv[2] if len(sys.argv) > 2 else "memory://?sweep_interval_ms=0"
m = SessionManager(store=url)
sids = [
    m.create_session(f"u{i}", {"role": "member", "theme": "dark", "visits": i}) for i in range(1000)
]
get = m.get_session
for i in range(n):
    get(sids[i % 1000])
m.close()
