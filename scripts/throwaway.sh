# Sourced (not run) by the scripts that start a throwaway stack: make test, bench, chaos, demo.
# Starts a Postgres cluster or moto in a new directory under /tmp and stops whatever it started
# when the script exits, is interrupted or is terminated.
#   throwaway_postgres NAME   sets THROWAWAY_PG_URL and THROWAWAY_PG_DIR (/tmp/NAME.XXXXXX)
#   throwaway_moto            sets THROWAWAY_MOTO_URL

THROWAWAY_PG_DIR=""
throwaway_moto_dir=""

throwaway_stop() {
  if [ -n "$throwaway_moto_dir" ]; then
    scripts/moto.sh stop "$throwaway_moto_dir" && rm -rf "$throwaway_moto_dir"
    throwaway_moto_dir=""
  fi
  if [ -n "$THROWAWAY_PG_DIR" ]; then
    scripts/pg.sh stop "$THROWAWAY_PG_DIR"
    THROWAWAY_PG_DIR=""
  fi
  return 0
}
trap throwaway_stop EXIT
# An interrupted script stops here, after its stack (the EXIT trap then has nothing left).
trap 'throwaway_stop; exit 130' INT
trap 'throwaway_stop; exit 143' TERM

throwaway_postgres() {
  THROWAWAY_PG_DIR=$(mktemp -d "/tmp/$1.XXXXXX")
  THROWAWAY_PG_URL=$(scripts/pg.sh start "$THROWAWAY_PG_DIR")
}

throwaway_moto() {
  throwaway_moto_dir=$(mktemp -d /tmp/provisioning-moto.XXXXXX)
  THROWAWAY_MOTO_URL=$(scripts/moto.sh start "$throwaway_moto_dir")
}
