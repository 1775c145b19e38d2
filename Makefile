# Parley. `make run` serves the app on 127.0.0.1:8080 with the embedded bolt
# store; `make test` runs every test (race detector, Chromium end to end,
# brief fuzzing, lint). Both install what they need or say exactly what is
# missing.

GO       ?= go
BIN      := bin
export GOFLAGS ?= -buildvcs=false

.PHONY: all run run-cluster build server test unit fuzz bench bench-core bench-load bench-lesson bench-peers bench-cluster soak lint tools clean

all: build

## run: build and serve on 127.0.0.1:8080 (bolt store in ./data); flags go in ARGS="..."
run: build
	./$(BIN)/parley $(ARGS)

## run-cluster: redis-server (AOF, appendfsync always), three instances and nginx round-robin on 127.0.0.1:8080, in a temp dir; Ctrl-C stops all
run-cluster: build redis nginx
	BIN=$(BIN)/parley WEB=web bash server/cmd/parley/run-cluster.sh

## build: the server binaries and the wasm app
build: tools wasm server

server: tools
	$(GO) build -trimpath -o $(BIN)/parley ./server/cmd/parley
	$(GO) build -trimpath -o $(BIN)/parley-load ./server/cmd/parley-load
	$(GO) build -trimpath -o $(BIN)/parley-peers ./server/cmd/parley-peers
	$(GO) build -trimpath -o $(BIN)/parley-soak ./server/cmd/parley-soak

## test: lint, then every test with -race (Chromium end to end, Redis, nginx and subprocesses included), then brief fuzzing
test: tools lint wasm chromium redis nginx unit fuzz

# PARLEY_INTEGRATION=1 turns on the tier of tests that run redis-server,
# nginx and the parley binary (server/internal/tier); `go test ./...`
# alone skips them and needs nothing but Go.
unit:
	PARLEY_INTEGRATION=1 $(GO) test -race -count=1 -timeout 30m ./...

## fuzz: each fuzz target, for about 5 s here (FUZZTIME=30s or 100000x overrides every count)
# Counts, not durations: go1.26's fuzz coordinator can report "context
# deadline exceeded" as a failure when a -fuzztime duration ends while a
# worker is still in a call on a loaded machine (golang/go#75804, fixed in
# go1.27); a count has no deadline to race. Each is what 5 s ran here.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzNormalizeText$$' -fuzztime $(or $(FUZZTIME),8000x) ./shared
	$(GO) test -run '^$$' -fuzz '^FuzzNormalizeName$$' -fuzztime $(or $(FUZZTIME),12000x) ./shared
	$(GO) test -run '^$$' -fuzz '^FuzzValidateRoom$$' -fuzztime $(or $(FUZZTIME),90000x) ./shared
	$(GO) test -run '^$$' -fuzz '^FuzzPollQuery$$' -fuzztime $(or $(FUZZTIME),3500x) ./server/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzPollQueryAgreesWithSchema$$' -fuzztime $(or $(FUZZTIME),20000x) ./server/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzLaneParse$$' -fuzztime $(or $(FUZZTIME),55000x) ./server/park
	$(GO) test -run '^$$' -fuzz '^FuzzPollView$$' -fuzztime $(or $(FUZZTIME),45000x) ./server/cmd/internal/loadkit
	$(GO) test -run '^$$' -fuzz '^FuzzSendBody$$' -fuzztime $(or $(FUZZTIME),12000x) ./server/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzSessionBody$$' -fuzztime $(or $(FUZZTIME),12000x) ./server/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzLoneSurrogate$$' -fuzztime $(or $(FUZZTIME),11000x) ./server/httpapi

## bench: core benchmarks (go test -bench), the whole-system load run, the /learn comparison at scale, Parley next to Nchan, and one to three instances behind nginx
bench: bench-core bench-load bench-lesson bench-peers bench-cluster

bench-core: tools redis
	$(GO) test -run '^$$' -bench . -benchtime 2s ./server/queue ./server/boltstore
	$(GO) test -run '^$$' -bench 'PollQuery|PollCycle' -benchtime 2s ./server/httpapi
	PARLEY_INTEGRATION=1 $(GO) test -run '^$$' -bench 'CrossInstance' -benchtime 2000x ./server/redisstore

bench-load: server
	bash server/cmd/parley-load/bench.sh

## bench-lesson: short polling (2 s), long polling and the textbook's /get_msg/ with N = 100 and 1,000 clients
bench-lesson: server
	bash server/cmd/parley-load/bench-lesson.sh

## bench-peers: Parley and Nchan on the same work, N = 1,000, 5,000, 10,000 (installs nginx + Nchan as root); flags go in ARGS="..."
bench-peers: tools
	bash server/cmd/parley-peers/peers.sh $(ARGS)

## bench-cluster: one, two and three instances on one Redis behind nginx
bench-cluster: server redis nginx
	bash server/cmd/parley-load/bench-cluster.sh

# The packages the browser build compiles (the e2e tests drive Chromium from
# the host, so they are not among them).
WASM_PKGS = $(shell $(GO) list ./app/... ./shared/... | grep -v /app/e2e)

## soak: SOAK (default 30m) of mixed traffic against bin/parley; fails unless RSS, goroutines, fds and the bolt file are flat over the last third; flags for parley go in SOAK_ARGS="..."
SOAK ?= 30m
soak: server
	./$(BIN)/parley-soak -parley $(BIN)/parley -duration $(SOAK) -server-args "$(SOAK_ARGS)"

## lint: gofmt, go vet (server and wasm builds), staticcheck
lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet $(WASM_PKGS)
	$(GO) build -o $(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck
	$(BIN)/staticcheck ./...
	GOOS=js GOARCH=wasm $(BIN)/staticcheck $(WASM_PKGS)

tools:
	@command -v $(GO) >/dev/null 2>&1 || { echo "Go 1.26 or newer is needed: install it from https://go.dev/dl/ (Debian's golang-go is too old) and put it on PATH." >&2; exit 1; }

clean:
	rm -rf $(BIN) web/app.wasm web/app.wasm.gz web/app.wasm.br

# --- the wasm app and what its end-to-end tests need ---

# Everything app.wasm is built from: a rebuild takes 75-95 s cold, so make
# only redoes it when one of these changed.
WASM_SRC := $(shell find app shared -name '*.go' -not -name '*_test.go' -not -path 'app/e2e/*' -not -path 'app/cmd/icons/*' -not -path 'app/cmd/brotli/*') go.mod go.sum
# Brotli quality: 11 makes 1.63 MB of the 8.4 MB app.wasm in about 25 s here.
BROTLI_Q ?= 11

.PHONY: wasm chromium redis nginx icons

wasm: web/app.wasm web/app.wasm.gz web/app.wasm.br

web/app.wasm: $(WASM_SRC)
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags="-s -w" -o $@.tmp ./app/cmd/wasm
	mv $@.tmp $@

web/app.wasm.gz: web/app.wasm
	gzip -9 -n -c $< > $@.tmp
	mv $@.tmp $@

web/app.wasm.br: web/app.wasm
	@if command -v brotli >/dev/null 2>&1; then \
		echo "brotli -q $(BROTLI_Q) $<"; \
		brotli -q $(BROTLI_Q) -f -o $@.tmp $< && mv $@.tmp $@ && touch $@; \
	else \
		echo "brotli CLI not found; using ./app/cmd/brotli"; \
		$(GO) run ./app/cmd/brotli -q $(BROTLI_Q) -o $@ $<; \
	fi

# The icons are committed; this redraws them after a change to the program.
icons:
	$(GO) run ./app/cmd/icons -out web

# The end-to-end tests drive Debian's Chromium; they never skip. A CJK font
# lets the screenshots they take of the Chinese UI show text, not boxes.

chromium:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	if [ -z "$$missing" ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing$$missing with apt-get"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }; \
	else \
		echo "The end-to-end tests need:$$missing. Install with: sudo apt-get install$$missing" >&2; \
		exit 1; \
	fi

# The Redis store's tests start Debian's redis-server themselves, on a free
# loopback port in a temp dir; in the integration tier (make test) they
# fail, never skip, when it is missing.
redis:
	@if command -v redis-server >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing redis-server with apt-get"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server; }; \
	else \
		echo "The Redis store's tests need redis-server. Install with: sudo apt-get install redis-server" >&2; \
		exit 1; \
	fi

# make run-cluster and its test put Debian's nginx in front of the instances.
nginx:
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing nginx with apt-get"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx; }; \
	else \
		echo "make run-cluster and its test need nginx. Install with: sudo apt-get install nginx" >&2; \
		exit 1; \
	fi
