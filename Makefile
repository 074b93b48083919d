# Cairn: `make run` sets everything up and starts the app; `make test` sets up and runs the tests.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export OMP_WAIT_POLICY ?= PASSIVE
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export SCARF_NO_ANALYTICS ?= true
export DO_NOT_TRACK ?= true
# llama.cpp's default build crashes on these VMs (AMX advertised, not working): see OFFLINE.md
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON

.PHONY: setup run test ingest-sample ui clean-index

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q torch==2.13.0            # the local CPU wheel, before anything needs torch
	$(PIP) install -q -c constraints.txt -e '.[test]'
	$(PIP) install -q --no-build-isolation -c constraints.txt ./data/packages/en_core_web_sm
	touch $@

ingest-sample: setup
	$(VENV)/bin/cairn ingest data/sample

run: setup ingest-sample
	@echo "Sample corpus indexed."

test: setup
	$(VENV)/bin/pytest -q

clean-index:
	rm -rf data/index
