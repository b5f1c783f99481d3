# Two commands for a newcomer: `make book` and `make test`. Everything else is optional.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0  # CPU build; chapter 3 runs it, the gradient tests compare against it
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help venv sysdeps sysdeps-test vendor book pdf serve test test-pyodide-numpy bench lab exercises notebooks lock clean

help:
	@echo "make book       build the HTML book (every notebook executed) into _build/html"
	@echo "make serve      serve the built book on localhost, as in-browser Python needs (PORT=8000 picks the port)"
	@echo "make test       run the whole test suite (unit, notebooks, book build, browser)"
	@echo "make pdf        the whole book as one PDF, in _build/pdf/"
	@echo "make bench      benchmarks, printed as ratios against references measured in the same run"
	@echo "make lab        JupyterLab in which the chapters open as notebooks"
	@echo "make exercises  your copies of the exercise notebooks, without solutions, in my_exercises/"
	@echo "make notebooks  .ipynb copies of chapters and exercises in _notebooks/"

# The environment: created when missing, reinstalled when the lock file or pyproject changes.
LABEXT := assets/jupyterlab-glue
$(STAMP): requirements.lock pyproject.toml assets/jupyterlab-overrides.json $(wildcard $(LABEXT)/*.json $(LABEXT)/static/*)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@$(PY) -c "import setuptools" 2>/dev/null || $(PY) -m pip install -q "setuptools>=61"
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH)
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	@cp assets/jupyterlab-overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	@# JupyterLab shows the chapters' glued numbers (assets/jupyterlab-glue, a prebuilt extension
	@# written by hand), and names the kernel "Python 3" as the chapters do (a save keeps them).
	@mkdir -p $(VENV)/share/jupyter/labextensions && rm -rf $(VENV)/share/jupyter/labextensions/bpcourse-glue
	@cp -r $(LABEXT) $(VENV)/share/jupyter/labextensions/bpcourse-glue
	@$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	@touch $@

venv: $(STAMP)

# Debian packages: graphviz draws computational graphs, chromium runs the browser tests,
# bubblewrap is the grader's sandbox (tested).
# Installed when missing (as root, e.g. in CI); otherwise we say what to install.
define apt_need
	@missing=""; for pair in $(1); do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	  else echo "please install the Debian packages:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi
endef

sysdeps:
	$(call apt_need,dot:graphviz)

sysdeps-test:
	$(call apt_need,dot:graphviz chromium:chromium bwrap:bubblewrap)

# MathJax and the widget manager (tools/fetch_vendor.sh), then Pyodide and the wheels the book's
# code needs in the browser (tools/fetch_pyodide.py). Both into _vendor/, and quiet when warm.
vendor:
	@tools/fetch_vendor.sh
	@$(PYTHON) tools/fetch_pyodide.py

# The execution cache does not see changes to bplib, bpcourse or the locked packages, so it is
# dropped whenever either changes, with Sphinx's saved doctrees (else Sphinx would not read, and
# so not execute, a page whose own source did not change); an unchanged rebuild reuses both. The in-page runner's files
# (bpcourse/browser.py, live.js, worker.js, live.css) run only in the reader's browser: a change
# there rebuilds the pages without executing the notebooks again.
EXECUTED = $(filter-out bpcourse/browser.py,$(wildcard bpcourse/*.py)) bpcourse/lab.js
book: venv sysdeps vendor
	@hash=$$(cat bplib/*.py $(EXECUTED) requirements.lock | sha256sum | cut -c1-16); \
	if [ "$$(cat _build/.inputs-hash 2>/dev/null)" != "$$hash" ]; then rm -rf _build/.jupyter_cache _build/.doctrees; fi; \
	mkdir -p _build && echo "$$hash" > _build/.inputs-hash
	@# The local Sphinx extensions and their files shape every page, but Sphinx rewrites only the
	@# pages whose sources changed: when they change, every page is read and written again (the
	@# notebooks' outputs still come from the cache).
	@hash=$$(cat tools/*.py tools/static/* | sha256sum | cut -c1-16); \
	if [ "$$(cat _build/.extensions-hash 2>/dev/null)" != "$$hash" ]; then rm -rf _build/.doctrees; fi; \
	echo "$$hash" > _build/.extensions-hash
	@# Training loops show a progress bar in JupyterLab; the build stays quiet (tests set it too).
	@# A failed build drops Sphinx's saved doctrees: else the next build would take the failed
	@# pages as read, skip them and report success.
	BPLIB_NO_PROGRESS=1 $(BIN)/jupyter-book build . -W -n --keep-going || { rm -rf _build/.doctrees; exit 1; }
	@echo "The book is at $(CURDIR)/_build/html/index.html"

# The whole book as one PDF: built as a single HTML page (the notebooks' outputs come from the
# execution cache that `make book` filled) and printed by Debian's Chromium (tools/book_pdf.py).
PDF := _build/pdf/backpropagation-from-the-ground-up.pdf
pdf: book
	BPLIB_NO_PROGRESS=1 $(BIN)/jupyter-book build . --builder singlehtml -W -n --keep-going > _build/singlehtml.log 2>&1 \
	  || { tail -40 _build/singlehtml.log; exit 1; }
	$(PY) tools/book_pdf.py _build/singlehtml $(PDF)

# Browsers load Pyodide's modules only over http(s), never from file://: this serves the built book
# on 127.0.0.1 (a free port unless PORT is given) and prints the address to open.
PORT ?= 0
serve:
	@$(PYTHON) tools/serve_book.py _build/html --port $(PORT)

test: venv sysdeps-test vendor
	$(PY) -m pytest
	$(MAKE) --no-print-directory test-pyodide-numpy

# The book's code also runs in the reader's browser, on Pyodide 0.27.7, whose numpy is 2.0.2 and
# matplotlib 3.8.4 (with pyparsing 3.1.2). The library's and the learner checks' unit tests run
# once more against exactly those, in an environment of their own (the lock, those three changed).
PYODIDE_VENV := .venv-pyodide-numpy
PYODIDE_PINS := numpy==2.0.2 matplotlib==3.8.4 pyparsing==3.1.2
$(PYODIDE_VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(PYODIDE_VENV)/bin/python || $(PYTHON) -m venv $(PYODIDE_VENV)
	@grep -vE '^(numpy|matplotlib|pyparsing)==' requirements.lock > $(PYODIDE_VENV)/requirements.txt
	$(PYODIDE_VENV)/bin/python -m pip install -q -r $(PYODIDE_VENV)/requirements.txt $(PYODIDE_PINS) 2>&1 \
	  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	$(PYODIDE_VENV)/bin/python -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

test-pyodide-numpy: $(PYODIDE_VENV)/.installed
	@# PyTorch joins the comparisons here too when the main environment has it (as in CI).
	@if $(PY) -c "import torch" 2>/dev/null && ! $(PYODIDE_VENV)/bin/python -c "import torch" 2>/dev/null; then \
	  $(PYODIDE_VENV)/bin/python -m pip install -q torch==$$($(PY) -c "import torch; print(torch.__version__.split('+')[0])"); fi
	BPLIB_EXPECT_VERSIONS="$(PYODIDE_PINS)" $(PYODIDE_VENV)/bin/python -m pytest -m "not book and not browser and not jupyter"

# glibc maps each large array afresh by default, and the page faults that follow depend on the
# order of frees, not on the code being measured; fixed thresholds make the ratios repeatable.
bench: export MALLOC_MMAP_THRESHOLD_ = 1073741824
bench: export MALLOC_TRIM_THRESHOLD_ = 1073741824
bench: venv sysdeps-test book
	$(PY) bench/train_step.py
	$(PY) bench/scalar_step.py
	$(PY) bench/labs.py
	$(PY) bench/checks.py
	$(PY) bench/grade.py
	$(PY) bench/browser.py

# JupyterLab opens the .md chapters as notebooks (jupytext is the default viewer for markdown,
# set by assets/jupyterlab-overrides.json, copied into the environment by the venv step), rendered
# by jupyterlab-myst, with their glued values (assets/jupyterlab-glue). Saving one keeps its
# header as written (tools/jupyter_keep_header.py), so running a chapter does not rewrite it.
# tools/jupyter_nodelay.py turns off Nagle's algorithm on kernel websockets: without it a live
# lab's round trip waits ~40 ms for a delayed TCP acknowledgement. Kernels listen on Unix
# sockets, which no other program can take from them (see bpcourse/kernel.py).
lab: venv sysdeps exercises
	PYTHONPATH=tools $(BIN)/jupyter lab --ServerApp.jpserver_extensions="{'jupyter_nodelay': True}" \
	  --ContentsManager.pre_save_hook=jupyter_keep_header.keep_header \
	  --KernelManager.transport=ipc \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

# Learners' own copies of the exercise notebooks, without the solutions, in my_exercises/
# (git-ignored). A copy that already exists is never overwritten: it holds your work.
exercises: venv
	@rm -rf _build/student && $(PY) -m bpcourse.grade release exercises --out _build/student >/dev/null
	@mkdir -p my_exercises && for f in _build/student/*.md; do \
	  [ -e my_exercises/$$(basename $$f) ] || cp $$f my_exercises/; done
	@echo "your exercise notebooks are in my_exercises/ (copies you already had were kept)"

# Unexecuted .ipynb copies, e.g. to hand out or to open where jupytext is not installed.
notebooks: venv
	@for f in chapters/*.md exercises/*.md; do \
	  [ -e "$$f" ] || continue; mkdir -p _notebooks/$$(dirname $$f); \
	  $(BIN)/jupytext --quiet --to ipynb --output _notebooks/$${f%.md}.ipynb $$f; done
	@echo "notebooks written to _notebooks/"

# Regenerate the lock file from requirements.in in a throwaway environment.
lock:
	rm -rf /tmp/bplib-lock-venv && $(PYTHON) -m venv /tmp/bplib-lock-venv
	/tmp/bplib-lock-venv/bin/pip install -q -r requirements.in
	{ echo "# Exact versions installed by the Makefile. Generated by 'make lock' from requirements.in; do not edit by hand."; \
	  /tmp/bplib-lock-venv/bin/pip freeze --exclude-editable; } > requirements.lock

clean:
	rm -rf _build _notebooks
