# Mirai server image: `mirai serve` (default), `mirai dispatch`, `mirai migrate`, `mirai users add ...`.
#
#   docker build -t mirai .
#   docker run --rm -p 8000:8000 mirai                     # SQLite in /app/data (mount a volume there to keep it)
#   docker compose up -d                                   # the production stack: see docs/operations.md
#
# Two stages: the project is installed into a virtual environment in the first, and only that environment is
# copied into the second, so nothing used to build it (pip's caches, the source tree, setuptools, pip) is left
# in the final image. Every dependency ships wheels for linux/amd64 and linux/arm64; should one ever need a
# compiler, install it in the build stage only. The browser fonts the test suite uses are not needed here.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# pip compiles the bytecode at install time: the server cannot write to /opt, and starts without compiling.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/mirai
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY nlu ./nlu
COPY admin_api ./admin_api
COPY content ./content
RUN /opt/mirai/bin/pip install . \
 && /opt/mirai/bin/python -c "import pathlib, nlu; m = pathlib.Path(nlu.__file__).parent / 'models'; \
assert any(m.glob('*.json.gz')), f'the embedded NLU models are missing from {m} (package data of nlu/models)'" \
 && /opt/mirai/bin/mirai --help >/dev/null \
 && /opt/mirai/bin/python -m pip uninstall -y -q pip setuptools

FROM ${PYTHON_IMAGE}
# Without a DATABASE_URL of its own the image keeps a SQLite file in /app/data; compose sets PostgreSQL.
ENV PATH=/opt/mirai/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATABASE_URL=sqlite:////app/data/mirai.db
RUN groupadd --system --gid 10001 mirai \
 && useradd --system --uid 10001 --gid mirai --home-dir /app --shell /usr/sbin/nologin mirai \
 && mkdir -p /app/data \
 && chown -R mirai:mirai /app
COPY --from=build /opt/mirai /opt/mirai
WORKDIR /app
USER mirai:mirai
EXPOSE 8000
# /healthz answers once the app is up, which is after the migrations it applies at start.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["mirai", "serve", "--host", "0.0.0.0"]
