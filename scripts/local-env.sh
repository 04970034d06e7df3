# Sourced by the make targets that talk to the running local stack (invoke, token, state, psql,
# logs): reads what `make dev` recorded of it (.local/stack.env, .local/dev.env) or stops with
# a hint when it is not running.
if [ ! -s .local/pids ] || [ ! -s .local/stack.env ]; then
  echo "the local stack is not running: \`make dev\` first" >&2
  exit 1
fi
# shellcheck disable=SC1091
source .local/stack.env
# The functions' DATABASE_URL (and its CA), without exporting the rest of their settings.
LOCAL_DATABASE_URL=$(sed -n 's/^DATABASE_URL=//p' .local/dev.env)
LOCAL_DB_CA=$(sed -n 's/^DB_SSL_ROOT_CERT=//p' .local/dev.env)
LOCAL_EMAIL_STATE=http://127.0.0.1:$EMAIL_DOUBLE_PORT/__control/state
LOCAL_AUTH0_STATE=http://127.0.0.1:$AUTH0_DOUBLE_PORT/__control/state
