"""The hypothesis model test of test_model.py, against the PostgreSQL store:
random sequences of every operation, each compared with the pure-Python model
(data compared exactly, key order and float round-trips included)."""

from __future__ import annotations

import pytest
import test_model  # the model; imported as a module so its TestCases are not collected twice
from hypothesis import settings
from needs import in_ci
from servers_postgres import MISSING, bin_dir, shared_server


class PostgresModel(test_model.SessionModel):
    limit = 2
    default_absolute = 150.0

    def store_url(self) -> str:
        # A fresh schema per example; the manager's clock is the model's.
        return shared_server().fresh_schema_url(sweep_interval_ms=0)


TestPostgres = pytest.mark.skipif(bin_dir() is None and not in_ci(), reason=MISSING)(
    PostgresModel.TestCase
)
TestPostgres.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
