# mncni — two commands on a fresh machine (as root): `make lab` and `make test`.
SHELL := /bin/bash
BUN := node_modules/.bin/bun
TSC := node_modules/.bin/tsc
# Debian packages by purpose: `make lab` installs what the lab and the build need, `make
# test` and `make bench` everything (podman/runc/busybox, containerd: the runtime tests; conntrack: the
# independent view of conntrack cleanup; strace, hyperfine: tests and benchmarks; iperf3,
# ethtool: the data-plane benchmark and the overlay's offload check; chromium: the web page's
# end-to-end tests, driven by playwright-core; bind9-dnsutils: dig, a real resolver asking the
# lab's DNS; iptables: kube-proxy's iptables layout beside mncni, in the coexistence test and
# the first-packet benchmark; bpftool: the independent view of eBPF programs and maps).
LAB_DEBS := iproute2 nftables containernetworking-plugins
BUILD_DEBS := gcc libc6-dev musl-tools
TEST_DEBS := iperf3 iputils-ping podman runc containerd busybox-static strace hyperfine conntrack ethtool chromium bind9-dnsutils iptables bpftool
DEB_PACKAGES := python3-kubernetes $(LAB_DEBS) $(BUILD_DEBS) $(TEST_DEBS)
# `make lab NAME=mylab LAB_FLAGS="--mode routed --nodes 4"`: the lab's name and flags for `up`.
# NAME counts only from make's command line (an unrelated NAME in the environment does not).
LAB_NAME := $(if $(filter command line,$(origin NAME)),$(NAME),$(or $(MNCNI_LAB),mnlab))
LAB_FLAGS ?= --nodes 3 --pods-per-node 2
# The web page's sources (src/ui/page/: .tsx, .html, .css) are bundled into the executable too.
SOURCES := $(shell find src -name '*.ts' -o -name '*.tsx' -o -name '*.html' -o -name '*.css' -o -name '*.c' 2>/dev/null) package.json
CC ?= cc

.PHONY: all build deps lab-deps root npm-deps depcruise-deps debs lab-debs typecheck depcheck test test-matrix lab lab-down bench bench-dataplane clean

all: build

root:
	@if [ "$$(id -u)" != "0" ]; then echo "mncni: this target needs root (network namespaces, netlink, nftables): run it with sudo" >&2; exit 1; fi

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# dependency-cruiser in its own package: it parses TypeScript only below 7 (with the
# repository's TypeScript 7 it cruised 0 modules and reported nothing), so it has its own
# pinned TypeScript 5 (tools/depcruise/package.json and its lock).
DEPCRUISE := tools/depcruise
$(DEPCRUISE)/node_modules/.installed: $(DEPCRUISE)/package.json $(DEPCRUISE)/package-lock.json
	cd $(DEPCRUISE) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

depcruise-deps: $(DEPCRUISE)/node_modules/.installed

npm-deps: node_modules/.installed depcruise-deps

# Installs only what is missing, so a prepared machine does not need the package mirror.
install_debs = @missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

debs: root
	$(call install_debs,$(DEB_PACKAGES))

lab-debs: root
	$(call install_debs,$(LAB_DEBS) $(BUILD_DEBS))

deps: root debs npm-deps
lab-deps: root lab-debs npm-deps

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
# Linked statically against musl (musl-tools): glibc's static start-up probes the CPU with
# dozens of cpuid instructions, each a trap to the hypervisor on a VM (~7.5 us here), and an
# empty glibc static program costs ~0.75 ms of CPU against ~0.09 ms with musl; the forwarder
# runs for every CNI call, served or not (docs/benchmarks.md). Without musl-gcc the build
# falls back to $(CC) and says so. Looked up when the recipe runs (`=`), after `make test`'s
# deps step may have installed it.
FORWARD_CC = $(or $(shell command -v musl-gcc 2>/dev/null),$(CC))

dist/mncni-forward: src/forward/forward.c $(SOURCES)
	@mkdir -p dist
	@if [ "$(FORWARD_CC)" = "$(CC)" ]; then echo "mncni: musl-gcc not found (Debian: musl-tools): the forwarder is linked against glibc, ~0.7 ms slower per CNI call" >&2; fi
	$(FORWARD_CC) -O2 -static -Wall -Wextra -Werror -DMNCNI_BUILD='"$(BUILD_ID)"' -o $@ src/forward/forward.c

build: dist/mncni dist/mncni-forward

typecheck: npm-deps
	$(TSC) --noEmit -p .
	$(TSC) --noEmit -p src/ui/page

# The import rules of src/ (.dependency-cruiser.cjs: the layer order of docs/architecture.md,
# no circle, agent/policy's one way in); fails when it cruised no module.
depcheck: npm-deps
	$(BUN) $(DEPCRUISE)/check.mjs

# `make test`: every test file except the matrix ones, one representative combination per
# feature (kept under 20 min on the test machine). `make test-matrix`: the *.matrix.test.ts
# files, found by name: the heavy combinations (every mode x source x runtime x fast path).
# CI (.ci/run) runs both. Both print the slowest files before the summary line.
test: deps build typecheck depcheck
	bash scripts/test.sh

test-matrix: deps build typecheck depcheck
	bash scripts/test.sh --matrix

# Never removes a lab: an existing one with this NAME is refused by `up` (it may be someone
# else's); `make lab-down NAME=...` removes it.
lab: lab-deps build
	./dist/mncni lab up --name $(LAB_NAME) $(LAB_FLAGS) --demo-service
	./dist/mncni lab check --name $(LAB_NAME)
	./dist/mncni lab status --name $(LAB_NAME)
	@echo
	@echo 'kubectl: export KUBECONFIG=$$(./dist/mncni lab kubeconfig --name $(LAB_NAME)); kubectl get nodes,pods,networkpolicies -A -o wide   (the lab API server; see docs/lab.md)'
	@echo 'Explore: ./dist/mncni lab exec --name $(LAB_NAME) node1/pod1 -- ip addr   |  ./dist/mncni lab exec --name $(LAB_NAME) node1 -- ip route  |  ./dist/mncni lab exec --name $(LAB_NAME) ext -- sh'
	@echo 'Services: ./dist/mncni lab service list --name $(LAB_NAME)  |  ./dist/mncni lab exec --name $(LAB_NAME) node1/pod1 -- getent hosts echo.default.svc.cluster.local  |  ./dist/mncni lab explain --name $(LAB_NAME) node1/pod1 svc/default/echo --port 80'
	@echo 'Change:  ./dist/mncni lab pod add --name $(LAB_NAME) node2  |  ./dist/mncni lab node add --name $(LAB_NAME) --pods 2  |  ./dist/mncni lab check --name $(LAB_NAME)'
	@echo 'Look:    ./dist/mncni lab ui --name $(LAB_NAME)   then open http://127.0.0.1:9819/ (topology, live flows, explain on a click; docs/ui.md)'
	@echo 'Remove:  make lab-down NAME=$(LAB_NAME)   (or ./dist/mncni lab down --name $(LAB_NAME))'

lab-down: root build
	./dist/mncni lab down --name $(LAB_NAME)

bench: deps build
	$(BUN) bench/startup.ts

# Throughput, latency and CPU of pod traffic per path; rewrites its section of
# docs/benchmarks.md and docs/dataplane-*.svg (bench/dataplane.ts --help for its flags).
bench-dataplane: deps build
	$(BUN) bench/dataplane.ts

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
