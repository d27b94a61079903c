# Container image of the package: the Prefect flow and its conda environment, run as a non-root
# user. Built by .github/workflows/build_image*.yml on tags; tests/test_container.py builds it here.
#
#   docker build --build-arg VERSION=1.2.3 -t my-package .
#   docker run --rm -v "$PWD/results:/results" my-package                       # the default run
#   docker run --rm my-package python -m my_package run --set NAME=VALUE        # any command
#
# Base images are build arguments so the same file builds from local images where no registry
# is reachable (the container test does that).
ARG MICROMAMBA_IMAGE=mambaorg/micromamba:1.5.10-bookworm-slim
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- conda: solve environment.yml into /opt/env (runtime) and a tiny build-tools env -------------
# micromamba rather than conda + conda-pack: one static binary that solves and creates the
# environment directly at its final prefix (/opt/env, the same path in the runtime stage), so
# nothing has to be relocated or packed, and no conda base installation is carried along.
FROM ${MICROMAMBA_IMAGE} AS conda
# The micromamba image runs as mambauser, which cannot write /opt. Root in this build stage only:
# the runtime stage runs as uid 1000.
# hadolint ignore=DL3002
USER 0
COPY environment.yml /tmp/environment.yml
# Build tools (pyproject.toml's build-system.requires) live in their own env, never in /opt/env.
RUN micromamba create --yes --prefix /opt/env --file /tmp/environment.yml \
    && micromamba create --yes --prefix /opt/build --channel conda-forge --override-channels \
        "python>=3.11" pip "setuptools>=69" "setuptools-scm>=8" wheel \
    && micromamba clean --all --yes

# ---- wheel: build the package's wheel (offline, no dependencies) -----------------------------
FROM conda AS wheel
# The version comes from the build argument: .git is not in the build context.
ARG VERSION=0.0.0
COPY . /src
RUN SETUPTOOLS_SCM_PRETEND_VERSION="${VERSION}" /opt/build/bin/python -m pip wheel \
        --no-deps --no-build-isolation --no-index --no-cache-dir --wheel-dir /dist /src

# ---- runtime: slim base + the environment + the package --------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.0.0
ARG SOURCE=https://github.com/slaclab/my-package
LABEL org.opencontainers.image.title="my-package" \
      org.opencontainers.image.description="LUME model run as a Prefect flow" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="BSD-3-Clause"

# A fixed uid, so a mounted results directory can be prepared for it (chown 1000).
RUN useradd --create-home --uid 1000 --user-group --shell /usr/sbin/nologin app \
    && install -d -o app -g app /results

# The environment first, in its own layer: a release that changes only the package's code
# reuses it, so pushing and pulling a new version moves a few kB, not the whole environment.
COPY --from=conda /opt/env /opt/env
COPY --from=wheel /dist /tmp/dist
RUN /opt/env/bin/python -m pip install --no-deps --no-index --no-cache-dir /tmp/dist/*.whl \
    && rm -rf /tmp/dist
COPY _entrypoint.sh /usr/local/bin/_entrypoint.sh

# Prefect runs an ephemeral server (SQLite in PREFECT_HOME) for each run and must stay offline
# and quiet. PREFECT_HOME is under /tmp so any uid can write it (clusters may assign their own).
ENV PATH=/opt/env/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PREFECT_HOME=/tmp/prefect \
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=90 \
    MY_PACKAGE_OUTPUT_DIR=/results

# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
WORKDIR /home/app
ENTRYPOINT ["/usr/local/bin/_entrypoint.sh"]
# The default run: default inputs, result to $MY_PACKAGE_OUTPUT_DIR (mount a volume there).
CMD ["python", "-m", "my_package", "run"]
