# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test bench lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/audit demo

JS := clients/js

# The JavaScript client (clients/js): installed from its lock file, built, tested.
$(JS)/node_modules/.package-lock.json: $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund

test: $(STAMP) $(JS)/node_modules/.package-lock.json
	$(BIN)/python -m pytest -n 2 --dist loadfile
	cd $(JS) && npm run build && npm test

# The figures of README's "Speed" table; bench/pg.py and bench/snapshot.py are run by hand.
bench: $(STAMP) $(JS)/node_modules/.package-lock.json
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/detect.py
	$(BIN)/python bench/precision.py
	$(BIN)/python bench/instrument.py
	$(BIN)/python bench/serve.py --seconds 5 --clients 1 --workers 2
	$(BIN)/python bench/serve.py --seconds 5 --clients 2 --workers 2
	$(BIN)/python bench/serve.py --seconds 5 --clients 4 --workers 2
	cd $(JS) && npm run build && npm run bench

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(JS)/node_modules $(JS)/dist
	rm -rf $(VENV) *.egg-info .pytest_cache audit.duckdb demo*.duckdb demo*.html
