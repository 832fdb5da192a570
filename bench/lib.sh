# shellcheck shell=bash
# Helpers shared by bench/faults.sh and bench/soak.sh (sourced, not run).

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Runs a PostgreSQL tool as the `postgres` user when we are root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    local cmd
    printf -v cmd '%q ' "$@"
    su postgres -s /bin/sh -c "$cmd"
  else
    "$@"
  fi
}
