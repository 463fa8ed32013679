# tailsse — `make run` and `make test` do all the set-up on a fresh Debian machine.
SHELL := /bin/bash
SWIFT ?= swift
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/tailsse
# $(PREFIX)/lib/systemd/system is on systemd's unit path for PREFIX=/usr/local and /usr; for any
# other PREFIX set UNITDIR=/etc/systemd/system.
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
MANDIR ?= $(PREFIX)/share/man
VENV := .venv
PYTHON ?= python3
LISTEN ?= 127.0.0.1:8111
# Without /var/log/syslog or /var/log/messages, follow dpkg's log so `make run` shows something.
RUN_ARGS ?= $(shell test -r /var/log/syslog || test -r /var/log/messages || echo --file dpkg=/var/log/dpkg.log)

APT_RUN := ca-certificates curl pkg-config libsystemd-dev libpcre2-dev
# The journal benchmarks (also in the smoke run of `make test`): systemd-journal-remote writes their
# journal, and its package also holds systemd-journal-gatewayd (the peer); systemd has journald,
# journalctl, systemd-cat and systemd-socket-activate (util-linux, in APT_TEST, has unshare and nsenter).
APT_JOURNAL_BENCH := systemd systemd-journal-remote
# systemd-container: the unit test boots a real systemd in systemd-nspawn. openssl makes the TLS
# tests' certificates; iproute2's ss counts the server's connections.
APT_TEST := $(APT_RUN) python3 python3-venv util-linux procps coreutils strace gcc libc6-dev $(APT_JOURNAL_BENCH) systemd-container openssl iproute2
# The benchmarks compile their C load client (bench/sseload.c) and journal follower (bench/jfollow.c,
# libsystemd-dev) and use coreutils' tail as baseline and peer, and websocketd (+ tail -F) as a peer
# in the full runs only (the smoke run of `make test` leaves it out, so it is not in APT_TEST).
APT_BENCH := gcc libc6-dev coreutils libsystemd-dev websocketd $(APT_JOURNAL_BENCH)
# The browser tests: Debian's chromium, driven by Playwright from PyPI (never `playwright install`).
APT_TEST += chromium fonts-dejavu-core
# The proxy tests run Debian's nginx and Caddy in the foreground with configurations of their own.
APT_TEST += nginx caddy
# `make deb`: Debian's packaging tools (dpkg-deb, dpkg-shlibdeps, dpkg-gencontrol), binutils' strip,
# and the man page's checkers; tests/test_package.py installs the package in a debootstrap'd root.
APT_DEB := dpkg-dev binutils lintian man-db groff-base
APT_TEST += $(APT_DEB) debootstrap

# The version: written once, in Sources/tailsse/Version.swift (`tailsse --version` prints it).
VERSION := $(shell sed -n 's/^ *static let current = "\(.*\)"$$/\1/p' Sources/tailsse/Version.swift)

# The shipped binary: the Swift runtime linked in (`--static-swift-stdlib`), so it needs only the C
# and C++ libraries and libsystemd. It has its own scratch directory: SwiftPM compiles every module
# differently for a static standard library (and Swift Testing has no static build), so this build
# and the tests' build in .build never rebuild each other. BIND_NOW, and no $$ORIGIN run path.
STATIC_BUILD := .build-static
SWIFT_RELEASE := $(SWIFT) build -c release --static-swift-stdlib --disable-local-rpath -Xlinker -z -Xlinker now \
	--scratch-path $(STATIC_BUILD) --product tailsse
BUILT ?= $(STATIC_BUILD)/release/tailsse

.PHONY: run build release test test-unit test-integration test-unit-files bench fuzz soak deps-run deps-test deps-deb venv clean install uninstall deb

run: deps-run release
	@echo "tailsse: open http://$(LISTEN)/ — or: curl -N http://$(LISTEN)/sources/NAME"
	$(BUILT) --listen $(LISTEN) --static-dir static $(RUN_ARGS)

build:
	$(SWIFT) build

release:
	$(SWIFT_RELEASE)

test: deps-test venv
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build
	$(SWIFT_RELEASE)
	$(MAKE) --no-print-directory test-unit-files
	TAILSSE_BIN=$(CURDIR)/$(BUILT) $(VENV)/bin/python -m pytest -q tests
	TAILSSE_BIN=$(CURDIR)/$(BUILT) $(VENV)/bin/python bench/run.py --smoke

test-unit:
	$(SWIFT) test -c release

# A long seeded fuzzing run of every parser and of the HTTP edge (`make test` runs a short one):
# FUZZ_ITERATIONS inputs per parser and FUZZ_HTTP_REQUESTS requests mutated from fuzz/corpus/,
# FUZZ_SEED to vary them.
FUZZ_ITERATIONS ?= 1000000
FUZZ_SEED ?= $(shell date +%s)
FUZZ_HTTP_REQUESTS ?= 50000
fuzz: deps-test venv release
	$(SWIFT) build -c release --build-tests
	TAILSSE_FUZZ_ITERATIONS=$(FUZZ_ITERATIONS) TAILSSE_FUZZ_SEED=$(FUZZ_SEED) $(SWIFT) test -c release --skip-build --filter FuzzTests
	TAILSSE_HTTP_FUZZ_REQUESTS=$(FUZZ_HTTP_REQUESTS) TAILSSE_FUZZ_SEED=$(FUZZ_SEED) TAILSSE_BIN=$(CURDIR)/$(BUILT) \
		$(VENV)/bin/python -m pytest -q -s tests/test_fuzz_http.py

# The chaos tests of tests/test_chaos.py scaled up (`make test` runs them short): SOAK_CLIENTS
# reconnecting clients on SOAK_SOURCES log files written at SOAK_RATE lines/s each for SOAK_SECONDS,
# rotated by rename (also in bursts) and copytruncate, tailsse killed with SIGKILL SOAK_RESTARTS
# times; SOAK_SEED to vary or repeat the schedule (a random one is printed with the result), and
# SOAK_ROTATIONS (e.g. rename,burst) to narrow the rotations.
SOAK_SECONDS ?= 300
SOAK_CLIENTS ?= 100
SOAK_SOURCES ?= 4
SOAK_RESTARTS ?= 12
SOAK_RATE ?= 150
SOAK_SEED ?=
SOAK_ROTATIONS ?=
soak: deps-test venv release
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_CLIENTS=$(SOAK_CLIENTS) SOAK_SOURCES=$(SOAK_SOURCES) \
		SOAK_RESTARTS=$(SOAK_RESTARTS) SOAK_RATE=$(SOAK_RATE) SOAK_SEED=$(SOAK_SEED) SOAK_ROTATIONS=$(SOAK_ROTATIONS) \
		SOAK_CATCH_UP_SECONDS=$$(( $(SOAK_SECONDS) > 120 ? $(SOAK_SECONDS) : 120 )) TAILSSE_BIN=$(CURDIR)/$(BUILT) \
		$(VENV)/bin/python -m pytest -q -s tests/test_chaos.py

test-integration: deps-test venv release
	TAILSSE_BIN=$(CURDIR)/$(BUILT) $(VENV)/bin/python -m pytest -q tests

bench: deps-test venv release
	$(call apt_install,$(APT_BENCH))
	BENCH_VIA="make bench$(if $(BENCH_ARGS), BENCH_ARGS='$(BENCH_ARGS)')" TAILSSE_BIN=$(CURDIR)/$(BUILT) $(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# The systemd units: `systemd-analyze verify` clean (the unit's binary pointed at the one built
# here) and a security exposure of at most 1.5 (systemd-analyze's --threshold is on a 0-100 scale).
SECURITY_THRESHOLD := 15
test-unit-files:
	@test -x $(BUILT) || { echo "no $(BUILT): run make release first"; exit 1; }
	@rm -rf .build/unit-check && mkdir -p .build/unit-check
	sed 's|/usr/local/bin/tailsse|$(abspath $(BUILT))|' systemd/tailsse.service > .build/unit-check/tailsse.service
	cp systemd/tailsse.socket .build/unit-check/tailsse.socket
	@out=$$(systemd-analyze verify --man=no .build/unit-check/tailsse.socket .build/unit-check/tailsse.service 2>&1); \
		status=$$?; if [ -n "$$out" ]; then echo "$$out"; fi; \
		if [ $$status -ne 0 ] || [ -n "$$out" ]; then echo "systemd-analyze verify: not clean"; exit 1; fi; \
		echo "systemd-analyze verify: clean"
	set -o pipefail; systemd-analyze security --offline=yes --threshold=$(SECURITY_THRESHOLD) --no-pager systemd/tailsse.service | tail -1
	@rm -rf .build/unit-check

# Installs the release binary, the page, the units, the man page (made by packaging/manpage.py from
# `tailsse --help` and this README) and (never over an existing one) the example configuration.
# Without DESTDIR, systemd is told to reload its units.
SYSTEMCTL ?= systemctl
install: $(if $(filter $(STATIC_BUILD)/release/tailsse,$(BUILT)),release)
	install -D -m 0755 $(BUILT) $(DESTDIR)$(BINDIR)/tailsse
	install -d -m 0755 $(DESTDIR)$(MANDIR)/man8
	set -o pipefail; $(PYTHON) packaging/manpage.py $(BUILT) README.md --prefix $(PREFIX) --sysconfdir $(SYSCONFDIR) \
		| gzip -9n > $(DESTDIR)$(MANDIR)/man8/tailsse.8.gz
	chmod 0644 $(DESTDIR)$(MANDIR)/man8/tailsse.8.gz
	install -d -m 0755 $(DESTDIR)$(DATADIR)/static
	install -m 0644 static/* $(DESTDIR)$(DATADIR)/static/
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/bin/tailsse|$(BINDIR)/tailsse|g' -e 's|/etc/tailsse/|$(SYSCONFDIR)/tailsse/|g' \
		systemd/tailsse.service > $(DESTDIR)$(UNITDIR)/tailsse.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/tailsse.service
	install -m 0644 systemd/tailsse.socket $(DESTDIR)$(UNITDIR)/tailsse.socket
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/tailsse
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/tailsse/tailsse.conf ]; then \
		echo "keeping the existing $(DESTDIR)$(SYSCONFDIR)/tailsse/tailsse.conf (the example is systemd/tailsse.conf)"; \
	else \
		echo "install -m 0644 systemd/tailsse.conf $(DESTDIR)$(SYSCONFDIR)/tailsse/tailsse.conf"; \
		install -m 0644 systemd/tailsse.conf $(DESTDIR)$(SYSCONFDIR)/tailsse/tailsse.conf; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then $(SYSTEMCTL) daemon-reload; fi

# Removes what `make install` installed except the configuration (like a package's conffiles);
# without DESTDIR it first stops and disables the units.
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		$(SYSTEMCTL) disable --now tailsse.socket tailsse.service 2>/dev/null || true; \
	fi
	rm -f $(DESTDIR)$(BINDIR)/tailsse $(DESTDIR)$(MANDIR)/man8/tailsse.8.gz
	rm -rf $(DESTDIR)$(DATADIR)
	rm -f $(DESTDIR)$(UNITDIR)/tailsse.service $(DESTDIR)$(UNITDIR)/tailsse.socket
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then $(SYSTEMCTL) daemon-reload; fi
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/tailsse/tailsse.conf: remove $(DESTDIR)$(SYSCONFDIR)/tailsse yourself if it is no longer wanted"

# The Debian package tailsse_VERSION-REVISION_ARCH.deb (in DEB_DIR): `make install` with PREFIX=/usr
# into a staging root, the binary stripped as dh_strip does, the files of packaging/debian, Depends
# computed by dpkg-shlibdeps and the control file by dpkg-gencontrol, built by dpkg-deb. A rebuild
# of the same version for an upgrade: DEB_REVISION=2.
DEB_REVISION ?= 1
DEB_VERSION := $(VERSION)-$(DEB_REVISION)
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
DEB_DIR ?= .
DEB := $(DEB_DIR)/tailsse_$(DEB_VERSION)_$(DEB_ARCH).deb
DEB_WORK := $(STATIC_BUILD)/deb
DEB_ROOT := $(DEB_WORK)/root
DEB_DATE := $(or $(shell git log -1 --format=%cD 2>/dev/null),$(shell date -R))
DEB_MAINTAINER := $(shell sed -n 's/^Maintainer: //p' packaging/debian/control)
# No errors; the warnings printed are the ones the README's install section accepts.
LINTIAN ?= lintian --fail-on error
deb: deps-deb $(if $(filter $(STATIC_BUILD)/release/tailsse,$(BUILT)),release)
	@test -n "$(VERSION)" || { echo "no version in Sources/tailsse/Version.swift"; exit 1; }
	rm -rf $(DEB_WORK) && mkdir -p $(DEB_ROOT)/DEBIAN $(DEB_ROOT)/usr/share/doc/tailsse $(DEB_WORK)/debian
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr SYSCONFDIR=/etc BUILT=$(BUILT)
	strip --remove-section=.comment --remove-section=.note --strip-unneeded $(DEB_ROOT)/usr/bin/tailsse
	install -m 0644 packaging/debian/copyright $(DEB_ROOT)/usr/share/doc/tailsse/copyright
	printf 'tailsse (%s) unstable; urgency=medium\n\n  * tailsse %s, packaged by make deb.\n\n -- %s  %s\n' \
		'$(DEB_VERSION)' '$(VERSION)' '$(DEB_MAINTAINER)' '$(DEB_DATE)' > $(DEB_WORK)/changelog
	gzip -9n < $(DEB_WORK)/changelog > $(DEB_ROOT)/usr/share/doc/tailsse/changelog.Debian.gz
	install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm $(DEB_ROOT)/DEBIAN/
	install -m 0644 packaging/debian/conffiles $(DEB_ROOT)/DEBIAN/conffiles
	cp packaging/debian/control $(DEB_WORK)/debian/control
	cd $(DEB_WORK) && dpkg-shlibdeps -Tdebian/substvars root/usr/bin/tailsse
	cd $(DEB_WORK) && dpkg-gencontrol -ptailsse -lchangelog -Tdebian/substvars -fdebian/files -Proot -v$(DEB_VERSION)
	cd $(DEB_ROOT) && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum > DEBIAN/md5sums
	@mkdir -p $(DEB_DIR)
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB)
	$(LINTIAN) $(DEB)

deps-deb:
	$(call apt_install,$(APT_DEB))

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
	rm -rf .build $(STATIC_BUILD) $(VENV)
