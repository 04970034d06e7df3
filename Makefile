# Every command a person runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# `make deploy` and the commands that read the deployed stack's outputs.
STACK_NAME ?= atomic-user-provisioning
EVENT ?= events/create-user.json
FUNCTION ?= create-user
PAYLOAD ?= {"dryRun": true}
# `make token`: whom to log in (USER is also the shell's user name: token.sh then takes the
# seeded admin) and, for someone who set their own password, that password.
PASSWORD ?=

.PHONY: bench chaos help test scim-conformance demo build debug fmt lint lint-template dev invoke token scim-token state psql logs stop deploy migrate outputs cleanup-remote

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

test: ## run the whole suite (starts and stops a throwaway Postgres unless DATABASE_URL is set)
	scripts/test.sh

scim-conformance: ## the SCIM conformance suites alone (scim2-tester, scim-sanity) against the real scim binary (docs/scim-local.md)
	scripts/scim-conformance.sh

demo: ## create a user end to end on throwaway Postgres and the Auth0/email doubles
	scripts/demo.sh

build: ## release arm64 zips of the four functions with cargo lambda (target/lambda/*/bootstrap.zip)
	scripts/venv.sh build
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
	  || rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 --output-format zip \
	  --locked --bin create-user --bin cleanup --bin set-password --bin scim
	@ls -l "$${CARGO_TARGET_DIR:-target}"/lambda/*/bootstrap.zip

debug: ## debug build of every crate
	cargo build --workspace --bins

fmt: ## format the code
	cargo fmt --all

lint: ## formatting and clippy, as CI would want them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

lint-template: ## cfn-lint on template.yaml (also part of `make test`)
	scripts/venv.sh
	.venv/bin/cfn-lint template.yaml

chaos: ## fault campaign: admin API and SCIM creates and lifecycle operations, kills, Auth0/email/database faults, cleanup; checks invariants, writes docs/RELIABILITY.md
	scripts/chaos.sh

bench: ## benchmark (not a test): release create-user at 1/8/32 instances vs its pgbench floor, cleanup, the Auth0 sweep at 10k/100k/1M users, SCIM (filter, paged read, creates, first sync), cold start → docs/PERFORMANCE.md
	scripts/bench.sh

dev: ## start the local stack in the background: Postgres + seed, doubles, API Gateway, the page, cargo lambda watch
	scripts/dev.sh

invoke: ## send $(EVENT) to $(FUNCTION) under `make dev`; show the status, headers, body and emails sent
	@scripts/invoke.sh '$(EVENT)' '$(FUNCTION)'

token: ## an admin's access token from the Auth0 double (last line): make token USER=admin@acme.test
	@scripts/token.sh '$(USER)' '$(PASSWORD)'

scim-token: ## under `make dev`: Acme's SCIM token (last line), for http://127.0.0.1:4000/scim/v2 (NEW=1 makes another)
	@scripts/scim-token.sh

state: ## under `make dev`: users in Postgres and the Auth0 double, the emails and their links
	@scripts/state.sh

psql: ## under `make dev`: psql on the local database
	@scripts/psql.sh

logs: ## under `make dev`: the stack's logs without colour codes (FOLLOW=1 follows, LINES=100)
	@scripts/logs.sh

stop: ## stop everything `make dev` started (by PID)
	scripts/stop.sh

deploy: ## sam build + sam deploy of template.yaml (parameters and secrets: docs/deployment.md)
	scripts/deploy.sh

migrate: ## apply the migrations to the functions' database (DATABASE_URL or DB_HOST/DB_NAME, DB_SECRET_ARN, verify-full TLS); never seeds
	cargo run --quiet --locked -p shared --bin migrate

outputs: ## the deployed stack's outputs (API URL, function names)
	aws cloudformation describe-stacks --stack-name '$(STACK_NAME)' \
	  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output table

cleanup-remote: ## invoke the deployed cleanup by hand: make cleanup-remote PAYLOAD='{"email": "a@b.c"}'
	@fn=$$(aws cloudformation describe-stacks --stack-name '$(STACK_NAME)' \
	  --query "Stacks[0].Outputs[?OutputKey=='CleanupFunctionName'].OutputValue" --output text) \
	&& aws lambda invoke --function-name "$$fn" --cli-binary-format raw-in-base64-out \
	  --payload '$(PAYLOAD)' "$${TMPDIR:-/tmp}/cleanup-response.json" >/dev/null \
	&& cat "$${TMPDIR:-/tmp}/cleanup-response.json" && echo
