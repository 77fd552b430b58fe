# Two commands do everything: `make reports` (run every notebook into reports/) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PROFILE ?= full

.PHONY: setup reports test lab bench clean peers

setup: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints-cpu.txt -e '.[dev]'
	touch $(STAMP)

reports: setup
	$(VENV)/bin/recsys-lab reports --profile $(PROFILE)

test: setup
	$(PY) -m pytest

# JupyterLab bound to 127.0.0.1 with a token (fresh each time, shown in the URL it prints);
# --allow-root only when run as root (the usual case in containers). Override: LAB_PORT=8899,
# LAB_TOKEN=..., LAB_ARGS="--no-browser".
LAB_PORT  ?= 8888
LAB_TOKEN ?= $(shell $(PYTHON) -c "import secrets; print(secrets.token_hex(24))")
LAB_ARGS  ?=
lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 \
		--ServerApp.port=$(LAB_PORT) --IdentityProvider.token=$(LAB_TOKEN) \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# RecBole 1.2.1 and cornac for benchmarks/peers.py, in their own venv (never in .venv). ray 2.6,
# RecBole's tuning dependency, imports only with setuptools < 81; the other shims are applied at
# run time by benchmarks/peers/compat.py.
PEERS := .venv-peers
peers: $(PEERS)/.installed-stamp

$(PEERS)/.installed-stamp: constraints-cpu.txt
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet -c constraints-cpu.txt recbole==1.2.1 cornac==3.0.1 torch 'setuptools<81'
	touch $@

clean:
	rm -rf $(VENV) .venv-peers build *.egg-info
