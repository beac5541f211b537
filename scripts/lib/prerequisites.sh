# shellcheck shell=bash
# Sourced by scripts/test.sh and .ci/run (not meant for an interactive shell): installs what the
# tests and checks need, only what is missing, or says in one line what to install.
#
# apt: docker-registry, skopeo (real registries and the yardstick the tests compare against);
# PyPI: moto[server] (the ECR API of the local stand-in), check-jsonschema and zizmor (the
# workflow checks of .ci/run), helm-python-sdk (real Helm v4 as a library) and
# kubernetes-validate (the official schemas) for the chart's checks. A Docker Engine must already run: nothing here installs one.
#
# PyPI packages go to `python3 -m pip` where that may install, else to a venv at
# $FERRY_VENV (default ~/.cache/ecr-ferry/venv), whose bin/ then leads PATH and whose python
# the testkit starts moto with (FERRY_TESTKIT_PYTHON).

FERRY_APT_PACKAGES=(docker-registry skopeo)
FERRY_PIP_PACKAGES=('moto[server]>=5,<6' 'check-jsonschema>=0.33,<1' 'zizmor>=1.32,<2'
  'helm-python-sdk>=0.2.2,<0.3' 'kubernetes-validate>=1.37,<2' 'PyYAML>=6,<7')

ferry_use_venv() {
  FERRY_VENV=${FERRY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-ferry/venv}
  if [[ -x $FERRY_VENV/bin/python ]]; then
    export PATH=$FERRY_VENV/bin:$PATH
    export FERRY_TESTKIT_PYTHON=$FERRY_VENV/bin/python
  fi
}

ferry_prerequisites() { # $1: name for messages
  local me=$1 sudo=() apt_missing=() pip_missing=() tool
  ferry_use_venv

  for tool in "${FERRY_APT_PACKAGES[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || apt_missing+=("$tool")
  done
  "${FERRY_TESTKIT_PYTHON:-python3}" -c 'import moto.server' >/dev/null 2>&1 ||
    pip_missing+=("${FERRY_PIP_PACKAGES[0]}")
  command -v check-jsonschema >/dev/null 2>&1 || pip_missing+=("${FERRY_PIP_PACKAGES[1]}")
  command -v zizmor >/dev/null 2>&1 || pip_missing+=("${FERRY_PIP_PACKAGES[2]}")
  "${FERRY_TESTKIT_PYTHON:-python3}" -c 'import helm_python, kubernetes_validate, yaml' \
    >/dev/null 2>&1 || pip_missing+=("${FERRY_PIP_PACKAGES[@]:3:3}")

  if ((${#apt_missing[@]})); then
    if [[ $(id -u) != 0 ]]; then
      if sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
      else
        echo "$me: missing ${apt_missing[*]}; as root run: apt-get install -y ${apt_missing[*]}" >&2
        return 1
      fi
    fi
    echo "$me: installing ${apt_missing[*]} (apt)" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
  fi

  if ((${#pip_missing[@]})); then
    echo "$me: installing ${pip_missing[*]} (PyPI)" >&2
    # A Debian or Ubuntu system python refuses pip (PEP 668): fall back to a venv of our own.
    if ! python3 -m pip install --quiet --disable-pip-version-check "${pip_missing[@]}" 2>/dev/null; then
      if ! python3 -m venv "$FERRY_VENV" >&2 ||
        ! "$FERRY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
          "${pip_missing[@]}" >&2; then
        echo "$me: cannot install ${pip_missing[*]}; run: python3 -m pip install ${pip_missing[*]@Q} (or apt-get install python3-venv)" >&2
        return 1
      fi
      ferry_use_venv
    fi
  fi

  if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "$me: no Docker Engine answers (docker version); the tests need one: install Docker Engine (apt-get install docker.io) and start it" >&2
    return 1
  fi
}
