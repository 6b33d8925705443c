# wmq — see README.md. Every target installs what is missing first.
SWIFT ?= swift
.DEFAULT_GOAL := demo
.PHONY: deps peers build demo test decode-differential replay conformance conformance-quick bench fuzz fuzz-check sample clean

deps:
	@Tools/setup

# The real peers the tests run against: mosquitto, tcpdump, openssl, headless Chromium,
# paho-mqtt and websocket-client (in .venv), and the Autobahn TestSuite (in .autobahn).
peers:
	@Tools/setup --peers

build: deps
	$(SWIFT) build

# Decodes the bundled sample capture (captures/works-sample.pcap) into annotated Works messages.
demo: build
	$(SWIFT) run --skip-build wmq-decode captures/works-sample.pcap --format text

# Every test: unit, property, end-to-end (the built binaries), then every capture replayed.
test: peers
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(MAKE) --no-print-directory decode-differential
	Tools/replay-captures --bin "$$($(SWIFT) build --show-bin-path)"
	$(MAKE) --no-print-directory conformance-quick

# WebSocket conformance: the Autobahn TestSuite against wmq-mock's echo, MQTT and OneBot
# endpoints, mosquitto beside them as a reference, and against the client side (an echo client
# on WorksClient's transport) (Tools/autobahn, docs/websocket.md).
# conformance-quick (in make test) leaves out the performance (9.*) and deflate (12.*, 13.*)
# cases; conformance runs all of them.
conformance-quick: peers
	$(SWIFT) build --product wmq-mock
	$(SWIFT) build --product wmq-autobahn-client
	Tools/autobahn --bin "$$($(SWIFT) build --show-bin-path)"

conformance: peers
	$(SWIFT) build --product wmq-mock
	$(SWIFT) build --product wmq-autobahn-client
	Tools/autobahn --all --bin "$$($(SWIFT) build --show-bin-path)"

# wmq-decode against the truth and tshark on generated real-world traffic: other protocols,
# midstream connections, MQTT 5.0 recovery, topic aliases, every capture cut, 100,000
# connections (Tools/make-decode-corpus, Tools/compare-tshark --suite; docs/decoding.md).
decode-differential: build
	Tools/make-decode-corpus .build/decode-corpus
	Tools/compare-tshark --suite .build/decode-corpus --wmq-decode "$$($(SWIFT) build --show-bin-path)/wmq-decode"

# Every recording in captures/ replayed with wmq-replay check and drive against wmq-mock (docs/replay-in-ci.md).
replay: build
	Tools/replay-captures

bench: deps
	Tools/bench codecs

# The fuzzing smoke run: every target under libFuzzer and AddressSanitizer for a minute (docs/fuzzing.md).
fuzz: deps
	Tools/fuzz all --time 60

# What CI runs after the tests: the fuzz build (libFuzzer + AddressSanitizer) and five seconds of
# every target, so that a change cannot break the fuzzers unnoticed; new findings fail it.
fuzz-check: deps
	Tools/fuzz all --time 5 --no-merge

# Regenerates the sample session from its generator script.
sample:
	python3 Tools/make-sample-session.py captures/works-sample.pcap captures/works-sample.pcapng captures/works-sample.har

clean:
	rm -rf .build
