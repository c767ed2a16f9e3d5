# `make demo` serves the demo web app on http://127.0.0.1:8000; `make test` runs
# every Rust and Python test. Both create .venv and install what they need on
# first use (`make test` also the browser and the servers its tests drive,
# where it may).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo quickstart test test-rust test-python system-packages lint bench develop clean

$(STAMP): requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# Builds the extension (release mode, as users get it) into the virtualenv.
develop: $(STAMP)
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/maturin develop --release --quiet

demo: develop
	$(BIN)/python examples/webapp/app.py

# Walks through every example of the README.
quickstart: develop
	$(BIN)/python examples/quickstart.py

test: test-rust test-python

test-rust: system-packages
	cargo test --workspace --exclude pysessionmanager --all-targets --features sessionmanager-core/conformance
	cargo test --workspace --exclude pysessionmanager --doc --features sessionmanager-core/conformance

system-packages:
	tools/ensure-system-packages

test-python: develop system-packages
	$(BIN)/python -m pytest
	$(BIN)/python -m mypy.stubtest pysessionmanager._native --allowlist tests/stubtest-allowlist.txt

lint: $(STAMP)
	tools/check-line-width
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --features sessionmanager-core/conformance -- -D warnings
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: develop
	cargo bench -p sessionmanager-core --bench memory_store
	cargo run --release -q -p sessionmanager-core --example footprint -- 1000000
	$(BIN)/python benches/python/bench_memory.py

clean:
	rm -rf $(VENV) target
