# syntax=docker/dockerfile:1
# Cairn's image: exactly what `make setup` installs (the pinned packages from constraints.txt,
# the packaged embedding models, llama.cpp built from source, the assembled answer model),
# run as a non-root user. Secrets are never baked in: they come at run time from the env
# file and the identities secret (see docker-compose.yml and docs/deployment.md).
FROM python:3.11-slim-bookworm

# build-essential (gcc, make) and cmake build llama-cpp-python; git is used by its build.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin cairn
WORKDIR /app
COPY --chown=cairn:cairn . /app
USER cairn

# llama.cpp's instruction sets come from the same detection as `make setup` (cairn/llama_build.py):
# portable by default (AVX2/FMA/F16C, never AMX), since an image runs on CPUs other than the one
# that built it; `--build-arg LLAMA_TARGET=native` builds for the build machine's CPU only.
ARG LLAMA_TARGET=portable
# torch==2.13.0 from PyTorch's CPU index (+cpu satisfies the pin): the default PyPI wheel pulls
# several GB of CUDA libraries a CPU service never uses. Empty it to use your pip config only.
ARG TORCH_INDEX_URL="https://download.pytorch.org/whl/cpu"

# pip's cache lives in a build cache, not in the image: a rebuild reuses the llama.cpp wheel.
RUN --mount=type=cache,target=/home/cairn/.cache/pip,uid=10001,gid=10001 \
    if [ -n "$TORCH_INDEX_URL" ]; then export PIP_EXTRA_INDEX_URL="$TORCH_INDEX_URL"; fi \
    && LLAMA_TARGET="$LLAMA_TARGET" make setup

ENV PATH="/app/.venv/bin:${PATH}" \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    OMP_WAIT_POLICY=PASSIVE \
    SCARF_NO_ANALYTICS=true \
    DO_NOT_TRACK=true \
    PYTHONUNBUFFERED=1

EXPOSE 8000 8501
ENTRYPOINT ["cairn"]
CMD ["serve", "--host", "0.0.0.0"]
