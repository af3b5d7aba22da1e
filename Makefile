# firecore-wizard: `make run` starts the wizard, `make test` runs every test.
# Both set up what is missing first (Debian packages, the .venv); setup is idempotent and quick.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tool and its tests call (program:package).
DEB_TOOLS := sfdisk:fdisk mcopy:mtools mke2fs:e2fsprogs mksquashfs:squashfs-tools cpio:cpio \
	dnsmasq:dnsmasq-base tcpdump:tcpdump tshark:tshark ip:iproute2 ethtool:ethtool \
	qemu-system-arm:qemu-system-arm qemu-system-aarch64:qemu-system-arm zip:zip unzip:unzip mkfs.vfat:dosfstools curl:curl \
	nft:nftables iptables:iptables busybox:busybox-static \
	ssh:openssh-client dropbear:dropbear-bin
PYTEST_ARGS ?=

.PHONY: help setup system-packages venv run test check lint bench demo clean

help:
	@echo "make run    set up what is missing, then start the wizard"
	@echo "make test   set up what is missing, then run every test"
	@echo "make check  build, then boot the app on emulated armhf and aarch64 boards (qemu)"
	@echo "make lint   ruff + mypy + import contracts"
	@echo "make bench  benchmarks (bench/), ratios against a baseline in the same run"

setup: system-packages venv

system-packages:
	@missing=""; for pair in $(DEB_TOOLS); do prog=$${pair%%:*}; pkg=$${pair##*:}; \
		PATH="$$PATH:/usr/sbin:/sbin" command -v $$prog >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: setup
	$(VENV)/bin/firecore-wizard --offer-demo $(ARGS)

demo: setup
	$(VENV)/bin/firecore-wizard --demo $(ARGS)

test: setup
	$(PY) -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

# Every app on every emulated board (make test boots each board once); prints the boot times.
# loadgroup: the emulated boards boot one after another on one worker (xdist_group "arm-board"),
# so two guests never compete for the cores with each other and the rest of the suite.
check: setup
	FIRECORE_ARM_MATRIX=full $(PY) -m pytest -n auto --dist loadgroup -rP \
		tests/integration/test_app_on_arm.py $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) -m bench

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
