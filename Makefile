# The two quick-start commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test lint typecheck install test-deps clean manifests

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make run: serve on the embedded default (self-signed certs in certs/, state from examples/state)
## and show a developer's manifest being reviewed and denied.
run: install
	VENV=$(VENV) scripts/run-demo

## make test: install what the tests need, then lint, type-check and run every test tier.
test: install test-deps lint typecheck
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check webhook tests bench fuzz
	$(BIN)/ruff format --check webhook tests bench fuzz
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy --strict webhook

test-deps:
	scripts/install-test-deps

## make manifests: render deploy/base/webhook.yaml from deploy/base/config.yaml (its
## namespaceSelectors list the exempt namespaces); tests/unit/test_deploy.py fails until this
## has been run after a change of either the config's exemptions or the template.
manifests: install
	$(BIN)/guardrail manifests webhook --config deploy/base/config.yaml --out deploy/base/webhook.yaml

## make fuzz: run each fuzz target (atheris: manifests, config, selector) for FUZZ_SECONDS
## (default 60) from its seed corpus in fuzz/corpus; findings land in fuzz/findings.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: install
	$(BIN)/pip install --quiet atheris
	$(BIN)/python -m fuzz.run --seconds $(FUZZ_SECONDS)

## make bench: SPEC §6 benchmarks (installs wrk and kopf when missing; the API-server part
## uses the e2e servers built by `make test`); prints a table, JSON in bench/results/.
## BENCH_ARGS passes flags to bench/run.py, e.g. BENCH_ARGS="--only http decision".
.PHONY: bench
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## make bench-scale: SPEC §6 "Scale" against a real API server holding 100,000 namespaces and
## 300,000 policies (bench/scale.py; the e2e servers built by `make test`); 11 minutes on a quiet machine, up to 30 on
## 2 shared cores. SCALE_ARGS passes flags, e.g. SCALE_ARGS="--namespaces 20000 --workers 2".
.PHONY: bench-scale
bench-scale: install
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/scale.py $(SCALE_ARGS)

## make bench-soak: SPEC §6's soak, 10 minutes at 200 reviews/s of the live cache of a real API
## server holding 100,000 namespaces under 100 policy changes a second (bench/soak.py --live;
## the e2e servers built by `make test`); about 14 minutes. SOAK_ARGS passes flags.
.PHONY: bench-soak
bench-soak: install
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/soak.py --live --namespaces 100000 --minutes 10 --rate 200 --churn-rate 100 $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
