#!/usr/bin/env bash
# Prepare the sandboxes the tests and runs use: Docker (engine + image) and bubblewrap.
#
# As root it installs what is missing (docker.io, bubblewrap, debootstrap), starts dockerd
# when no engine answers and waits for it, and builds the sandbox image unless it exists.
# Idempotent: a second run only checks. It says why it skips anything. Outside CI it never
# fails (the Docker tests then skip, saying why); with CI=true, a missing Docker engine,
# image or bubblewrap is fatal, because CI must run the hostile suite for real.
set -uo pipefail
cd "$(dirname "$0")/.."

image=${SANDBOX_IMAGE:-genetic-instruct-sandbox:latest}
ci=false
case "${CI:-}" in 1|true|TRUE|yes) ci=true ;; esac
is_root=false
[ "$(id -u)" = 0 ] && is_root=true

say() { echo "sandbox: $*"; }
problems=()
problem() { say "$*"; problems+=("$*"); }

engine_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# 1. Packages.
missing=()
command -v docker >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
[ -x /usr/bin/python3 ] || missing+=(python3)  # what bwrap runs when ours is private (root's pyenv)
if [ ${#missing[@]} -gt 0 ]; then
  if ! $is_root; then
    say "skipping install of ${missing[*]}: not root (as root: apt-get install -y ${missing[*]})"
  elif ! command -v apt-get >/dev/null 2>&1; then
    say "skipping install of ${missing[*]}: no apt-get on this machine; install them by hand"
  else
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; } >/tmp/gi-apt.log 2>&1; then
      tail -n 5 /tmp/gi-apt.log
      say "could not install ${missing[*]} (log: /tmp/gi-apt.log)"
    fi
  fi
fi
command -v bwrap >/dev/null 2>&1 || problem "bubblewrap is missing: apt-get install -y bubblewrap"

# 2. A Docker engine that answers.
if ! command -v docker >/dev/null 2>&1; then
  problem "docker CLI is missing: apt-get install -y docker.io"
elif engine_answers; then
  say "Docker engine answers"
elif [ -n "${DOCKER_HOST:-}" ]; then
  problem "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local dockerd"
elif ! $is_root; then
  problem "no Docker engine answers and starting dockerd needs root; Docker tests will skip"
elif ! command -v dockerd >/dev/null 2>&1; then
  problem "dockerd is missing: apt-get install -y docker.io"
else
  log=/var/log/genetic-instruct-dockerd.log
  # The sandbox containers need no network: when the plain start fails (no iptables, say),
  # the second try runs the engine without a bridge.
  for flags in "--storage-driver=overlay2" "--storage-driver=overlay2 --iptables=false --bridge=none" ""; do
    say "starting dockerd $flags (log: $log)"
    # shellcheck disable=SC2086
    setsid nohup dockerd $flags >"$log" 2>&1 </dev/null &
    pid=$!
    for _ in $(seq 1 60); do
      engine_answers && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    engine_answers && break
    kill "$pid" 2>/dev/null; sleep 1
    tail -n 3 "$log"
  done
  engine_answers && say "Docker engine answers" || problem "dockerd did not start (see $log)"
fi

# 3. The sandbox image (reused when present).
if engine_answers; then
  if docker image inspect "$image" >/dev/null 2>&1; then
    say "image $image present (rebuild: genetic-instruct sandbox build --force)"
  else
    say "building image $image"
    python=.venv/bin/python
    [ -x "$python" ] || python=python3
    if "$python" -c "import genetic_instruct.sandbox_cli" 2>/dev/null; then
      "$python" -m genetic_instruct.sandbox_cli build --tag "$image" || problem "image build failed"
    else
      bash sandbox/build-offline.sh "$image" || problem "image build failed"
    fi
  fi
fi

if [ ${#problems[@]} -gt 0 ]; then
  if $ci; then
    say "CI=true and the sandbox is not ready: ${problems[*]}"
    exit 1
  fi
  say "continuing without: ${problems[*]}"
fi
exit 0
