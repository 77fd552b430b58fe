# Two commands do everything: `make reports` (run every notebook into reports/) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PROFILE ?= full

.PHONY: setup reports test lab bench clean

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

clean:
	rm -rf $(VENV) build *.egg-info
