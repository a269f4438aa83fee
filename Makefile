# seatbox: every target sets up what it needs by itself (idempotent).
#   make demo   a simulated floor of 12 seats on the embedded broker, live floor view and the
#               floor service (web wallboard; the URL and logins are printed)
#   make test   the whole test suite against real parts (Mosquitto, ALSA file PCM, pty serial)
#   make lint   ruff + mypy --strict on edge/ and dsp/
#   make bench  the benchmarks in bench/ (figures go to docs/benchmarks.md by hand); the fuzz
#               bench runs 10^6 inputs per parser, each stopped after 20 min:
#               make bench FUZZ_ARGS="--inputs 20000" for a short run (see bench/fuzz.py)
#   sudo make install    onto this box (/opt/seatbox, /etc/seatbox, units, udev rules);
#                        DESTDIR=/some/root for a scratch root; `make uninstall` keeps config+state

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.seatbox-installed

# Debian packages the demo and the tests use at run time (not build tools).
#   mosquitto      real broker for the integration tests
#   libportaudio2  PortAudio for sounddevice
#   libasound2-plugins alsa-utils  ALSA file PCM for capture tests
#   pulseaudio libasound2-plugins  a real ALSA control device (the pulse ctl plugin) for the
#                                  headset-mixer enforcement tests, on machines without a sound card
DEBS_RUN  := libportaudio2
DEBS_TEST := mosquitto libportaudio2 alsa-utils pulseaudio pulseaudio-utils libasound2-plugins
#   systemd        systemd-analyze verify/security on the shipped units
DEBS_TEST += systemd
#   qemu-system-x86 busybox-static  the QEMU guest of tests/guest/ (power cuts; the kernel
#                  is Debian's linux-image, fetched by the guest builder with apt-get download)
#   e2fsprogs      mkfs.ext4/e2fsck for the guest's virtual disks
DEBS_TEST += qemu-system-x86 busybox-static e2fsprogs
#   chromium       headless browser tests of the floor's web pages (driven by Playwright)
#   postgresql     the floor store's PostgreSQL tests (a server started by the test in a temp dir)
DEBS_TEST += chromium postgresql
#   jackd2         a real-time audio server (dummy driver) through which the bridge's audio relay's
#                  added delay is measured sample-exactly (tests/test_audio_relay_jack.py)
DEBS_TEST += jackd2
# A real box: the venv needs python3-venv; PortAudio for the audio path; amixer (alsa-utils)
# for mute and receive-cap enforcement on the headset's mixer.
DEBS_INSTALL := python3-venv libportaudio2 alsa-utils

.PHONY: demo test lint bench debs-run debs-test venv clean install uninstall debs-install

# Install missing Debian packages with apt-get; say clearly what to do when we cannot.
define ensure_debs
	@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "seatbox: installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else \
	    echo "seatbox: cannot install$$missing: not root and no sudo. Run: apt-get install$$missing" >&2; exit 1; fi; \
	  if ! command -v apt-get >/dev/null; then \
	    echo "seatbox: apt-get not found; install these packages with your system's tool:$$missing" >&2; exit 1; fi; \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq || { echo "seatbox: apt-get update failed (network?)" >&2; exit 1; }; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $$missing \
	    || { echo "seatbox: apt-get install$$missing failed; install them by hand and retry" >&2; exit 1; }; \
	fi
endef

debs-run:
	$(call ensure_debs,$(DEBS_RUN))

debs-test:
	$(call ensure_debs,$(DEBS_TEST))

debs-install:
	$(call ensure_debs,$(DEBS_INSTALL))

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "seatbox: Python >= 3.11 is needed (found $$($(PYTHON) --version 2>&1)); set PYTHON=python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { echo "seatbox: python venv failed: apt-get install python3-venv" >&2; exit 1; }
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test,floor]'
	@touch $(STAMP)

venv: $(STAMP)

demo: debs-run $(STAMP)
	$(BIN)/seatbox demo

test: debs-test $(STAMP)
	$(BIN)/python -m pytest -q

# The installer is standard-library Python, so it runs before any venv exists.
# A DESTDIR install (packaging, images) does not touch this machine's packages.
install: $(if $(DESTDIR),,debs-install)
	$(PYTHON) -m edge.ops.install install --root "$(or $(DESTDIR),/)" $(INSTALL_FLAGS)

uninstall:
	$(PYTHON) -m edge.ops.install uninstall --root "$(or $(DESTDIR),/)"

lint: $(STAMP)
	$(BIN)/ruff check edge drivers dsp floor tests bench
	$(BIN)/ruff format --check edge drivers dsp floor tests bench
	$(BIN)/mypy

FUZZ_ARGS ?= --max-seconds 1200

bench: debs-test $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; \
	  case $$b in bench/fuzz.py) args="$(FUZZ_ARGS)";; *) args="";; esac; \
	  $(BIN)/python $$b $$args || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
