# mncni — two commands on a fresh machine (as root): `make lab` and `make test`.
SHELL := /bin/bash
BUN := node_modules/.bin/bun
TSC := node_modules/.bin/tsc
DEB_PACKAGES := iproute2 nftables iperf3 iputils-ping containernetworking-plugins podman runc busybox-static hyperfine strace gcc libc6-dev
SOURCES := $(shell find src -name '*.ts' -o -name '*.c' 2>/dev/null) package.json
CC ?= cc

.PHONY: all build deps root npm-deps debs typecheck test lab lab-down bench clean

all: build

root:
	@if [ "$$(id -u)" != "0" ]; then echo "mncni: this target needs root (network namespaces, netlink, nftables): run it with sudo" >&2; exit 1; fi

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

npm-deps: node_modules/.installed

# Installs only what is missing, so a prepared machine does not need the package mirror.
debs: root
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

deps: root debs npm-deps

# The build ID is a digest of the sources: a resident CNI server (agent) serves only plugin
# processes of the same build. Start-up flags (measured in docs/benchmarks.md): bytecode,
# code splitting (a CNI call loads only its own modules), a JIT policy that keeps a
# short-lived plugin process in the interpreter (the CLI's long-running commands reset it),
# and no .env/bunfig.toml autoload (a plugin must not read files from whatever directory
# the runtime runs it in). The second entry point is the link reaper's worker thread.
BUILD_ID = $(shell cat $(SOURCES) package-lock.json | sha256sum | cut -c1-16)
BUILD_FLAGS = --compile --minify --bytecode --format=esm --splitting --compile-jit-policy=100 \
	--no-compile-autoload-dotenv --no-compile-autoload-bunfig --define 'MNCNI_BUILD="$(BUILD_ID)"'

dist/mncni: node_modules/.installed $(SOURCES)
	@mkdir -p dist
	$(BUN) build $(BUILD_FLAGS) src/main.ts src/serve/reaper-worker.ts --outfile dist/mncni
	ln -sf mncni dist/mncni-ipam
	ln -sf mncni dist/mncni-core

# The native forwarder (src/forward/forward.c): what the agent installs as the plugin, so a
# CNI call handed to the agent does not pay for starting the Bun runtime. Same build ID.
dist/mncni-forward: src/forward/forward.c $(SOURCES)
	@mkdir -p dist
	$(CC) -O2 -static -Wall -Wextra -Werror -DMNCNI_BUILD='"$(BUILD_ID)"' -o $@ src/forward/forward.c

build: dist/mncni dist/mncni-forward

typecheck: npm-deps
	$(TSC) --noEmit -p .

test: deps build typecheck
	bash scripts/test.sh

lab: deps build
	./dist/mncni lab down
	./dist/mncni lab up --nodes 3 --pods-per-node 2
	./dist/mncni lab check
	./dist/mncni lab status
	@echo
	@echo 'Explore: ./dist/mncni lab exec node1/pod1 -- ip addr   |  ./dist/mncni lab exec node1 -- ip route  |  ./dist/mncni lab exec ext -- sh'
	@echo 'Change:  ./dist/mncni lab pod add node2  |  ./dist/mncni lab node add node4 --pods 2  |  ./dist/mncni lab check'
	@echo 'Remove:  ./dist/mncni lab down'

lab-down: build
	./dist/mncni lab down

bench: deps build
	$(BUN) bench/startup.ts

clean:
	rm -rf dist

# The container image (docs/install.md): FROM scratch with this build's executables, nft and
# the libraries they link, staged from this machine, so it builds offline. PODMAN can carry
# storage options and IMAGE_CONTEXT move the staging dir (the image test uses its own).
VERSION := $(shell grep -m1 '"version"' package.json | cut -d'"' -f4)
IMAGE ?= mncni:$(VERSION)
IMAGE_CONTEXT ?= dist/image
PODMAN ?= podman
.PHONY: image
image: build
	bash deploy/image/stage-rootfs.sh $(IMAGE_CONTEXT)/rootfs
	$(PODMAN) build --quiet --build-arg VERSION=$(VERSION) --tag $(IMAGE) --file Containerfile $(IMAGE_CONTEXT)
	@$(PODMAN) image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' $(IMAGE)
