# The two commands of the README: `make demo` and `make test`. Everything else is a building block.
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 60

.PHONY: all deps build demo test test-release test-sanitize test-fuzz bench format clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	cmake -S . -B build -G Ninja $(CMAKE_FLAGS)
	cmake --build build -j $(JOBS)

demo: build
	./scripts/demo.sh

# Every test: release build (unit + end-to-end), ASan/UBSan build (unit + end-to-end), and
# each libFuzzer target for a bounded time.
test: test-release test-sanitize test-fuzz

test-release: build
	cd build && ctest --output-on-failure -j 2

test-sanitize: deps
	cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPILLION_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build build-sanitize -j $(JOBS)
	cd build-sanitize && PILLION_SANITIZED=1 ctest --output-on-failure -j 2

test-fuzz: deps
	CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPILLION_FUZZ=ON $(CMAKE_FLAGS)
	cmake --build build-fuzz -j $(JOBS) --target fuzz_targets
	./scripts/run-fuzzers.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	./bench/run.sh

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build build-sanitize build-fuzz
