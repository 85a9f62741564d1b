# One command to set up and run, one to set up and test. See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# llama.cpp must not pick CPU features at build time: a native build uses AMX on machines that
# advertise it and then dies with "Illegal instruction" on virtual machines that fault on it.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

export OMP_WAIT_POLICY := PASSIVE

DEMO_TASK ?= What is the capital of France? Answer in one sentence.

.PHONY: install run demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "myninja needs Python 3.11 or newer (set PYTHON=...)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -e '.[embedded,dense,eval,dev]'
	@# caldav's HTTP client (niquests) brings urllib3-future, whose .pth copies itself over
	@# urllib3 at every start and breaks requests' users (schemathesis); niquests runs from its
	@# own urllib3_future name, so the .pth goes and urllib3 is put back.
	rm -f $(VENV)/lib/python*/site-packages/urllib3_future.pth
	$(BIN)/pip install -q --force-reinstall --no-deps \
		"urllib3==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("urllib3"))')"
	touch $(STAMP)

run: install
	$(BIN)/myninja

demo: install
	$(BIN)/myninja ask "$(DEMO_TASK)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q --slow

bench: install
	$(BIN)/python benchmarks/everyday.py
	$(BIN)/python benchmarks/routing.py
	$(BIN)/python benchmarks/branches.py
	$(BIN)/python benchmarks/judge.py
	$(BIN)/python benchmarks/lookup.py
	$(BIN)/python benchmarks/embedded_speed.py
	$(BIN)/python benchmarks/gateway_overhead.py
	$(BIN)/python benchmarks/runtime_overhead.py
	$(BIN)/python benchmarks/tui_render.py
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/crash_resume.py
	$(BIN)/python benchmarks/gateway_faults.py
	$(BIN)/python benchmarks/neuron_bridge.py
	$(BIN)/python benchmarks/web_fetch.py
	$(BIN)/python benchmarks/sandbox.py
	$(BIN)/python benchmarks/budget_check.py
	$(BIN)/python benchmarks/booking.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
