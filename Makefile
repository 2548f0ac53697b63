# seqlab: `make demo` reproduces the lecture on IMDb, `make test` runs the test suite.
# Both create .venv and install torch==2.13.0 before the package (a bare `torch` would pull a CUDA build).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A local copy of aclImdb_v1.tar.gz; by default the one beside the checkout if present, else seqlab downloads it.
IMDB ?= $(abspath $(wildcard ../shared/data/aclImdb_v1.tar.gz))
ARCHIVE_OPTION := $(if $(IMDB),--archive $(IMDB))

.PHONY: setup demo test test-fast bench bench-keras-setup bench-vs-keras clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/python -c 'from seqlab.models import native; native.main()'  # compiles the CPU loops once (~30 s), so no run waits for it
	touch $@

demo: setup
	$(BIN)/seqlab compare rnn lstm $(ARCHIVE_OPTION) --out runs/lecture

test: setup
	$(if $(IMDB),SEQLAB_IMDB_ARCHIVE=$(IMDB)) $(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

bench: setup
	$(if $(IMDB),SEQLAB_IMDB_ARCHIVE=$(IMDB)) $(BIN)/python bench/lecture.py

# TensorFlow for the side-by-side benchmark lives in its own environment, never in seqlab's.
bench-keras-setup: .venv-bench/.installed

.venv-bench/.installed:
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --disable-pip-version-check tensorflow-cpu==2.21.0 numpy
	touch $@

bench-vs-keras: setup bench-keras-setup
	$(if $(IMDB),SEQLAB_IMDB_ARCHIVE=$(IMDB)) $(BIN)/python bench/vs_keras.py

clean:
	rm -rf $(VENV) .venv-bench runs .pytest_cache
