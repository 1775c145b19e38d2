# --- UI (owned by the go-app client; the lead merges the other targets around this) ---

# Everything app.wasm is built from: a rebuild takes 75-95 s cold, so make
# only redoes it when one of these changed.
WASM_SRC := $(shell find app shared -name '*.go' -not -name '*_test.go' -not -path 'app/e2e/*' -not -path 'app/cmd/icons/*' -not -path 'app/cmd/brotli/*') go.mod go.sum
# Brotli quality: 11 is 2.37 MB in ~45 s here, 9 is 2.72 MB in ~20 s.
BROTLI_Q ?= 11

.PHONY: wasm chromium icons

wasm: web/app.wasm web/app.wasm.gz web/app.wasm.br

web/app.wasm: $(WASM_SRC)
	GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o $@.tmp ./app/cmd/wasm
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
		go run ./app/cmd/brotli -q $(BROTLI_Q) -o $@ $<; \
	fi

# The icons are committed; this redraws them after a change to the program.
icons:
	go run ./app/cmd/icons -out web

# The end-to-end tests drive Debian's Chromium; they never skip.
chromium:
	@if command -v chromium >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium with apt-get"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }; \
	else \
		echo "Chromium is required for the end-to-end tests: run 'sudo apt-get install chromium'" >&2; \
		exit 1; \
	fi
