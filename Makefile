# Quickstart targets: each creates the virtual environment (.venv) when it is missing.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: setup bench test test-fast docs docs-setup clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

## Train and evaluate the default strategies on the centres stream (built-in synthetic data).
bench: $(STAMP)
	$(VENV)/bin/pemma-bench run --stream centers

## The test suite (what CI runs).
test: $(STAMP)
	$(VENV)/bin/python -m pytest

## The inner-loop subset: every test that trains no network and runs no whole benchmark (tests/conftest.py).
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow"

## The documentation site, built into site/ (installs the docs extra; .ci/docs also checks the generated pages).
$(DOCS_STAMP): $(STAMP)
	$(VENV)/bin/pip install --quiet -e ".[test,docs]"
	touch $(DOCS_STAMP)

docs-setup: $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) results/.cache site
