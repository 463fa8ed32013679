# tailsse — `make run` and `make test` do all the set-up on a fresh Debian machine.
SHELL := /bin/bash
SWIFT ?= swift
PREFIX ?= /usr/local
DESTDIR ?=
VENV := .venv
PYTHON ?= python3
LISTEN ?= 127.0.0.1:8111
# Without /var/log/syslog or /var/log/messages, follow dpkg's log so `make run` shows something.
RUN_ARGS ?= $(shell test -r /var/log/syslog || test -r /var/log/messages || echo --file dpkg=/var/log/dpkg.log)

APT_RUN := ca-certificates curl pkg-config libsystemd-dev
# The journal benchmarks (also in the smoke run of `make test`): systemd-journal-remote writes their
# journal, and its package also holds systemd-journal-gatewayd (the peer); systemd has journald,
# journalctl, systemd-cat and systemd-socket-activate (util-linux, in APT_TEST, has unshare and nsenter).
APT_JOURNAL_BENCH := systemd systemd-journal-remote
APT_TEST := $(APT_RUN) python3 python3-venv util-linux procps coreutils strace gcc libc6-dev $(APT_JOURNAL_BENCH)
# The benchmarks compile their C load client (bench/sseload.c) and journal follower (bench/jfollow.c,
# libsystemd-dev) and use coreutils' tail as baseline and peer.
APT_BENCH := gcc libc6-dev coreutils libsystemd-dev $(APT_JOURNAL_BENCH)

.PHONY: run build release test test-unit test-integration bench deps-run deps-test venv clean

run: deps-run release
	@echo "tailsse: open http://$(LISTEN)/ — or: curl -N http://$(LISTEN)/sources/NAME"
	./.build/release/tailsse --listen $(LISTEN) --static-dir static $(RUN_ARGS)

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release

test: deps-test venv
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build
	TAILSSE_BIN=$(CURDIR)/.build/release/tailsse $(VENV)/bin/python -m pytest -q tests
	TAILSSE_BIN=$(CURDIR)/.build/release/tailsse $(VENV)/bin/python bench/run.py --smoke

test-unit:
	$(SWIFT) test -c release

test-integration: deps-test venv release
	TAILSSE_BIN=$(CURDIR)/.build/release/tailsse $(VENV)/bin/python -m pytest -q tests

bench: deps-test venv release
	$(call apt_install,$(APT_BENCH))
	BENCH_VIA="make bench$(if $(BENCH_ARGS), BENCH_ARGS='$(BENCH_ARGS)')" TAILSSE_BIN=$(CURDIR)/.build/release/tailsse $(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# Installs the Debian packages that are missing (root, or sudo when available).
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "swift not found: install Swift 6.2+ from swift.org (https://www.swift.org/install/linux/)"; exit 1; }
endef

deps-run:
	$(call apt_install,$(APT_RUN))

deps-test:
	$(call apt_install,$(APT_TEST))

venv: $(VENV)/.ready

$(VENV)/.ready: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r tests/requirements.txt
	touch $@

clean:
	rm -rf .build $(VENV)
