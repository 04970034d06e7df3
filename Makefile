# Every command a person runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help test demo build fmt lint

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

test: ## run the whole suite (starts and stops a throwaway Postgres unless DATABASE_URL is set)
	scripts/test.sh

demo: ## create a user end to end on throwaway Postgres and the Auth0/email doubles
	scripts/demo.sh

build: ## debug build of every crate
	cargo build --workspace --bins

fmt: ## format the code
	cargo fmt --all

lint: ## formatting and clippy, as CI would want them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
