#!/bin/sh
# Container entrypoint: activate the image's environment (/opt/env), then run the command.
# Activation = what `conda activate` does for a prefix: PATH, CONDA_PREFIX and the packages'
# activate.d hooks (some conda-forge packages set variables there, e.g. certificate paths).
set -e
ENV_PREFIX="${ENV_PREFIX:-/opt/env}"
export CONDA_PREFIX="$ENV_PREFIX"
export PATH="$ENV_PREFIX/bin:$PATH"
for hook in "$ENV_PREFIX"/etc/conda/activate.d/*.sh; do
    if [ -r "$hook" ]; then
        # shellcheck source=/dev/null
        . "$hook"
    fi
done
exec "$@"
