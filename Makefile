# gis-service: `make demo` (install, start PostGIS, load 石峰区, serve on :8000) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
SCALE ?= district

.PHONY: demo test lint bench system install serve db-up clean help

help:
	@echo "make demo   - install everything, start PostGIS, load the 石峰区 demo, serve http://$(HOST):$(PORT)"
	@echo "make test   - install everything and run lint + the test suite against a throw-away PostGIS"
	@echo "make lint   - ruff, ruff format --check, mypy --strict, import-linter"
	@echo "make bench  - demo load times and the import benchmark vs ogr2ogr (writes benchmarks/)"

system:
	@scripts/install-system.sh

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# The web map's JavaScript (and the style validator the tests use), from the npm registry.
WEB_STAMP := web/node_modules/.installed-$(shell cat web/package-lock.json | md5sum | cut -c1-12)
$(WEB_STAMP):
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	@touch $@

install: system $(STAMP) $(WEB_STAMP)

db-up: install
	$(BIN)/gis-service db up
	$(BIN)/gis-service db migrate

demo: db-up
	$(BIN)/gis-service demo load --scale $(SCALE)
	$(BIN)/gis-service serve --host $(HOST) --port $(PORT)

serve: db-up
	$(BIN)/gis-service serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check gis_service etl tests scripts benchmarks
	$(BIN)/ruff format --check gis_service etl tests scripts benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install lint
	$(BIN)/pytest

bench: install
	@command -v ogr2ogr >/dev/null || { [ "$$(id -u)" -eq 0 ] && apt-get install -y -qq gdal-bin >/dev/null || sudo apt-get install -y -qq gdal-bin >/dev/null; }
	$(BIN)/python benchmarks/bench_demo_load.py
	$(BIN)/python benchmarks/bench_import.py

# Vector tiles vs tipg on the city demo (tipg in its own venv so its pins never touch ours).
TIPG_VENV ?= /tmp/tipg-venv
BENCH_SCALE ?= city
.PHONY: bench-tiles
bench-tiles: install
	@test -x $(TIPG_VENV)/bin/python || { $(PYTHON) -m venv $(TIPG_VENV) && $(TIPG_VENV)/bin/pip install -q 'tipg>=1.0' 'uvicorn[standard]'; }
	$(BIN)/python benchmarks/bench_tiles.py --scale $(BENCH_SCALE) --tipg-python $(TIPG_VENV)/bin/python

# Spatial queries over HTTP (locate, nearest, area, 10k batch) with wrk; QUERY_SCALE=district|city.
QUERY_SCALE ?= district
.PHONY: bench-query
bench-query: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" -eq 0 ] && apt-get install -y -qq wrk >/dev/null || sudo apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python benchmarks/bench_query.py --scale $(QUERY_SCALE)

# Grid partitioning vs spopt/GeoDa/METIS/KaHIP/GerryChain (grid-bench; anchors in their own venv).
GRID_BENCH ?= /work/shared/bench/grid-bench
GRID_BENCH_VENV ?= /tmp/gridbench/venv
.PHONY: bench-grids
bench-grids: install
	$(BIN)/python -m pip install -q -e '.[bench]'
	@test -x $(GRID_BENCH_VENV)/bin/python || { $(PYTHON) -m venv $(GRID_BENCH_VENV) && $(GRID_BENCH_VENV)/bin/pip install -q spopt libpysal geopandas shapely scikit-learn networkx pymetis kahip pygeoda gerrychain psutil; }
	GRID_BENCH=$(GRID_BENCH) GRID_BENCH_PY=$(GRID_BENCH_VENV)/bin/python $(BIN)/python benchmarks/bench_grids.py

clean:
	-$(BIN)/gis-service db down
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The 隐患 ledger: list, one workflow step, monthly report and notice at 1,056 and ~106,000 隐患.
.PHONY: bench-hazards
bench-hazards: install
	$(BIN)/python benchmarks/bench_hazards.py

# Hazard overlays and impact: 50 km² impact, city-wide raster footprint, raster tiles/s (wrk),
# zonal statistics vs rasterstats. IMPACT_SCALE=district|city; the loaded demo is kept in
# IMPACT_KEEP and reused by the next run.
IMPACT_SCALE ?= city
IMPACT_KEEP ?= /tmp/impact-bench
.PHONY: bench-impact
bench-impact: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" -eq 0 ] && apt-get install -y -qq wrk >/dev/null || sudo apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python benchmarks/bench_impact.py --scale $(IMPACT_SCALE) --keep $(IMPACT_KEEP)

# The web map's first map on screen (cold and warm browser, software GL) on the district demo.
.PHONY: bench-web
bench-web: install
	$(BIN)/python benchmarks/bench_web.py
