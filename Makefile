# heed -- attention modules for CNNs in C.  `make help` lists the targets.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
# The build is portable by default: the matrix-product kernel picks AVX-512
# or AVX2 at run time. `make ARCH=-march=native` tunes everything else too.
ARCH    ?=
OPT     ?= -O3
PKGS    := libpng libjpeg zlib
CODEC_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CODEC_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lpng -ljpeg -lz)
DEPS_CFLAGS := $(CODEC_CFLAGS)
DEPS_LIBS   := $(CODEC_LIBS)

BUILD := build
ifeq ($(OPENMP),0)
BUILD := build/serial
endif
ifeq ($(SAN),1)
BUILD := build/san
OPT   := -O1 -g -fno-omit-frame-pointer
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif

# MINIMAL=1 builds heed without libpng, libjpeg and zlib (in build/minimal),
# for a system that has none of them or brings its own: images come in and
# go out as pixels (heed_image_from_pixels), and PNG, JPEG and Fashion-MNIST's
# files are refused with a message saying so (lib/minimal/no_codecs.c).
# `make minimal-check` builds it and runs the suites that need no codec.
CODEC_SRC := lib/image_png.c lib/image_jpeg.c lib/data_idx.c
ifeq ($(MINIMAL),1)
BUILD := build/minimal
DEPS_CFLAGS :=
DEPS_LIBS :=
MINIMAL_FLAGS := -DHEED_MINIMAL
endif

# clang reports each `omp simd` loop it leaves scalar (the NaN-keeping max
# reductions of lib/pool2d.c); GCC vectorizes them. Not a defect: quiet.
CLANG_QUIET := $(if $(findstring clang,$(shell $(CC) --version 2>/dev/null | head -1)),-Wno-pass-failed)

# OPENMP=0 builds without OpenMP's run-time, for a toolchain that lacks
# it: one thread, the same results (no sum depends on the thread count).
# -fopenmp-simd keeps the `omp simd` loops vectorized; the compiler drops
# the other pragmas.
ifeq ($(OPENMP),0)
OMPFLAGS := -fopenmp-simd -Wno-unknown-pragmas
OMPLIBS  :=
else
OMPFLAGS := -fopenmp
OMPLIBS  := -fopenmp
endif

CFLAGS  := $(OPT) $(ARCH) -fno-math-errno -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -fPIC $(OMPFLAGS) \
           $(CLANG_QUIET) $(SANFLAGS) $(MINIMAL_FLAGS) -Ilib -Imodules $(DEPS_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS  := $(SANFLAGS) $(OMPLIBS) $(DEPS_LIBS) -lm

LIB_SRC  := $(wildcard lib/*.c) $(wildcard modules/*.c)
ifeq ($(MINIMAL),1)
LIB_SRC  := $(filter-out $(CODEC_SRC),$(LIB_SRC)) lib/minimal/no_codecs.c
endif
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
APP_SRC  := $(wildcard apps/*.c)
APP_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(APP_SRC))
CMDS     := $(patsubst apps/cmd_%.c,%,$(wildcard apps/cmd_*.c))
# TESTS="conv2d pool2d" builds only those suites (quick iteration).
ifeq ($(TESTS),)
TEST_SRC := $(wildcard tests/*.c)
else
TEST_SRC := tests/check_main.c $(filter-out tests/check_%.c,$(wildcard tests/*.c)) \
            $(patsubst %,tests/check_%.c,$(TESTS))
endif
TEST_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(TEST_SRC))
SUITES   := $(patsubst tests/check_%.c,%,$(filter-out tests/check_main.c,$(filter tests/check_%.c,$(TEST_SRC))))
HEADERS  := $(wildcard lib/*.h) $(wildcard modules/*.h)
# What a program using heed includes (heed.h and what it includes); the
# rest is the library's own: _impl headers, the OpenMP and kernel helpers.
PUBLIC_HEADERS := $(filter-out %_impl.h lib/parallel.h lib/wide.h lib/gemm_kernel.h,$(HEADERS))

.DEFAULT_GOAL := all
FORCE:
.PHONY: all FORCE installcheck check minimal-check deps install uninstall clean demo models help bench ram-table
all: $(BUILD)/libheed.a $(BUILD)/libheed.so $(BUILD)/heed

help:
	@echo "make            build $(BUILD)/libheed.a, libheed.so and the heed command"
	@echo "make deps       install the Debian packages heed needs (apt-get)"
	@echo "make check      build and run the test suite (SAN=1: under ASan+UBSan)"
	@echo "                OPENMP=0 with any target: without OpenMP (one thread), in build/serial"
	@echo "make demo       classify images/ with the shipped CBAM model and draw RAM's glimpses"
	@echo "                on images/cluttered60/: overlays in out/"
	@echo "make models     retrain the five shipped models (about an hour on 2 cores, three at a time)"
	@echo "make ram-table  train the README's RAM-vs-CNN table (hours on one core)"
	@echo "make install    PREFIX=$(PREFIX) DESTDIR=: libraries, headers, heed, heed.pc"
	@echo "make installcheck  install into a scratch folder and build a C and a C++ program there"
	@echo "make minimal-check  build without libpng, libjpeg and zlib (MINIMAL=1) and test that build"
	@echo "make uninstall  remove what make install put under PREFIX"
	@echo "make clean      remove build/ and out/"
	@echo "make bench      heed against PyTorch on the benchmark matrix (BENCH_ARGS=\"--seconds 2\")"
	@echo "make $(BUILD)/bench/page_share (or handoff, own_networks, region_trace.so): the measurement programs of bench/HISTORY.md"
	@echo "make $(BUILD)/examples/where_it_looks (or attention_cnn, built_in_model): the README's C examples"

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The activations' clamps and kinks (and those of the batch norm's fused
# hardswish) are selects between comparisons, which GCC leaves as scalar
# branches unless floating-point operations may be taken not to trap. The
# results are the same to the bit: only exception flags could differ, and
# heed reads none.
$(BUILD)/lib/activation.o $(BUILD)/lib/batchnorm.o: CFLAGS += -fno-trapping-math

$(BUILD)/libheed.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The shared library's ABI version: programs record libheed.so.$(SOVERSION)
# (the soname), so an incompatible heed installed later gets a new number
# instead of breaking them.
SOVERSION := 2
$(BUILD)/libheed.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libheed.so.$(SOVERSION) -o $@ $^ $(LDLIBS)

# The public headers as a program sees them once installed, under a heed/
# folder (`#include <heed/heed.h>`): heed's error.h, image.h, tensor.h
# would otherwise shadow the system's or the program's own. The examples
# build against this copy, with no -Ilib, so a public header that needs a
# private one fails here, not on a user's machine.
$(BUILD)/include/heed/heed.h: $(PUBLIC_HEADERS)
	@rm -rf $(BUILD)/include && mkdir -p $(BUILD)/include/heed
	cp $(PUBLIC_HEADERS) $(BUILD)/include/heed/
EXAMPLE_CFLAGS = $(filter-out -Ilib -Imodules,$(CFLAGS)) -I$(BUILD)/include

# Subcommands register themselves by file name: apps/cmd_NAME.c defines
# cmd_NAME() and cmd_NAME_summary.
$(BUILD)/commands.inc: $(wildcard apps/cmd_*.c)
	@mkdir -p $(dir $@)
	@: > $@; for c in $(CMDS); do echo "HEED_COMMAND($$c)" >> $@; done

$(BUILD)/apps/main.o: $(BUILD)/commands.inc
$(BUILD)/apps/main.o: CFLAGS += -I$(BUILD)

$(BUILD)/heed: $(APP_OBJ) $(BUILD)/libheed.a
	$(CC) -o $@ $(APP_OBJ) $(BUILD)/libheed.a $(LDLIBS)

# Test suites register themselves the same way: tests/check_NAME.c defines
# Suite *heed_suite_NAME(void).
$(BUILD)/suites.inc: $(TEST_SRC) FORCE
	@mkdir -p $(dir $@)
	@: > $@.tmp; for s in $(SUITES); do echo "HEED_SUITE($$s)" >> $@.tmp; done
	@cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@

$(BUILD)/tests/check_main.o: $(BUILD)/suites.inc
$(BUILD)/tests/check_main.o: CFLAGS += -I$(BUILD)
# The tests make their PNG, JPEG and gzip files with the libraries
# themselves, in a MINIMAL=1 build too.
$(BUILD)/tests/%.o: CFLAGS += -Itests $(if $(MINIMAL_FLAGS),$(CODEC_CFLAGS))
# check_evaluate.c compiles apps/evaluate.c in (the apps are not in libheed).
$(BUILD)/tests/check_evaluate.o: apps/evaluate.c apps/evaluate.h
$(TEST_OBJ): tests/testutil.h tests/imageutil.h

$(BUILD)/check_heed: $(TEST_OBJ) $(BUILD)/libheed.a
	$(CC) -o $@ $(TEST_OBJ) $(BUILD)/libheed.a $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lpthread) $(LDLIBS) $(if $(MINIMAL_FLAGS),$(CODEC_LIBS))

# The measurement programs behind figures in bench/HISTORY.md, and
# ram_step, bench/torch_agree.py's view of a RAM training step (not
# installed, not run by the tests: `make check` builds them so that they
# keep compiling). page_share and handoff measure the machine, so they are
# built for it.
MEASURE := $(BUILD)/bench/page_share $(BUILD)/bench/handoff $(BUILD)/bench/own_networks \
	$(BUILD)/bench/ram_step $(BUILD)/bench/region_trace.so
$(BUILD)/bench/page_share $(BUILD)/bench/handoff: CFLAGS += -march=native
$(BUILD)/bench/%: bench/%.c $(BUILD)/libheed.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libheed.a $(LDLIBS)
# A preload library (LD_PRELOAD), not a program: see bench/region_trace.c.
$(BUILD)/bench/region_trace.so: bench/region_trace.c
	@mkdir -p $(dir $@)
	$(CC) $(OPT) -std=c11 -Wall -Wextra -shared -fPIC -o $@ $< -ldl

# Tests run from the repository root; they use build/heed for end-to-end cases.
# Passive waiting keeps OpenMP threads from spinning against each other when
# the machine is shared (tests are not benchmarks).
EXAMPLES := $(BUILD)/examples/attention_cnn $(BUILD)/examples/where_it_looks $(BUILD)/examples/built_in_model
check: $(BUILD)/check_heed $(BUILD)/heed $(EXAMPLES) $(MEASURE)
	$(if $(SANFLAGS),HEED_SAN=1) HEED_EXAMPLES=$(BUILD)/examples HEED_BIN=$(BUILD)/heed CK_DEFAULT_TIMEOUT=600 OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive $(BUILD)/check_heed

# MINIMAL=1's checks: the suites that need no codec (the others read or
# write PNG, JPEG or IDX files through heed), then that the library links
# no codec or compression library and that the command says what it lacks.
MINIMAL_SUITES := activation attention balance batchnorm bench conv2d dropout elementwise evaluate fuse \
	gemm gradcam linear loss model model_input net optim params pool2d ram schedule tensor
minimal-check:
	$(MAKE) MINIMAL=1 TESTS="$(MINIMAL_SUITES)" check build/minimal/libheed.so
	@syms=$$(nm -u build/minimal/libheed.so) || exit 1; \
	if echo "$$syms" | grep -E ' (png_|jpeg_|gz|crc32$$|inflate|deflate)'; then \
	  echo "minimal-check: build/minimal/libheed.so needs the codec symbols above"; exit 1; fi
	@build/minimal/heed version --json | grep -q '"image_formats": ""' || \
	  { echo "minimal-check: heed version does not say the build has no codecs"; exit 1; }
	@out=$$(build/minimal/heed classify --model models/fmnist-se.heed images/test-00001-Pullover.png 2>&1); \
	  test $$? = 1 && echo "$$out" | grep -q 'built without image codecs (make MINIMAL=1)' || \
	  { echo "minimal-check: classify of a PNG said: $$out"; exit 1; }
	@echo "minimal-check: ok"

# Installed for this machine's architecture (or for all): `dpkg -s` fails
# as ambiguous once a foreign one's copy is installed too, as
# scripts/check_aarch64.sh's arm64 libraries are.
DEBS := build-essential pkg-config libpng-dev libjpeg62-turbo-dev zlib1g-dev check dataset-fashion-mnist
deps:
	@arch=$$(dpkg --print-architecture); missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Architecture} $${Status}\n' $$p 2>/dev/null | \
	    grep -qE "^($$arch|all) install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	else echo "deps: all installed"; fi

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/heed $(DESTDIR)$(PREFIX)/bin \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(BUILD)/libheed.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libheed.so $(DESTDIR)$(PREFIX)/lib/libheed.so.$(SOVERSION)
	ln -sf libheed.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libheed.so
	install -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(PREFIX)/include/heed/
	install -m 755 $(BUILD)/heed $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@OMPLIBS@|$(OMPLIBS)|' $(if $(MINIMAL_FLAGS),-e '/^Requires.private/d' -e '/^Libs.private/d') \
	  heed.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/heed.pc
	install -d $(DESTDIR)$(PREFIX)/share/heed/nets
	install -m 644 nets/*.net nets/README.md $(DESTDIR)$(PREFIX)/share/heed/nets/

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/heed $(DESTDIR)$(PREFIX)/lib/libheed.* \
	  $(DESTDIR)$(PREFIX)/bin/heed $(DESTDIR)$(PREFIX)/lib/pkgconfig/heed.pc \
	  $(DESTDIR)$(PREFIX)/share/heed

# The C-API examples from the README, built against the in-tree library and
# run by the test suite.
$(BUILD)/examples/%: examples/%.c $(BUILD)/libheed.a $(BUILD)/include/heed/heed.h
	@mkdir -p $(dir $@)
	$(CC) $(EXAMPLE_CFLAGS) -o $@ $< $(BUILD)/libheed.a $(LDLIBS)

# built_in_model carries models/fmnist-se.heed as a C array (od is in
# coreutils; `xxd -i` writes the same bytes under other names), so it
# opens no model file.
# The model is read, not named as a prerequisite: that would let make
# retrain it (the rule under `models`) whenever nets/fmnist-se.net looks
# newer, as it may in a fresh clone. So the array is made every time and
# kept only when it changed, which rebuilds the example after `make models`.
$(BUILD)/examples/fmnist_se_model.c: FORCE
	@mkdir -p $(dir $@)
	@# od's status is lost in the pipe below: an empty array would build and fail at run time
	@test -s models/fmnist-se.heed || { echo "models/fmnist-se.heed is missing (make models trains it)" >&2; exit 1; }
	@{ echo 'const unsigned char heed_builtin_model[] = {'; \
	  od -An -v -tu1 models/fmnist-se.heed | sed -e 's/^ *//' -e 's/  */,/g' -e 's/$$/,/'; \
	  echo '};'; echo 'const unsigned long heed_builtin_model_size = sizeof heed_builtin_model;'; } > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/examples/built_in_model: examples/built_in_model.c $(BUILD)/examples/fmnist_se_model.c \
		$(BUILD)/libheed.a $(BUILD)/include/heed/heed.h
	$(CC) $(EXAMPLE_CFLAGS) -o $@ $< $(BUILD)/examples/fmnist_se_model.c $(BUILD)/libheed.a $(LDLIBS)

# Installs into a scratch DESTDIR and builds a program from that tree alone,
# as a user would: heed.h from the installed headers, flags from heed.pc;
# and, where there is a C++ compiler, a C++ program the same way.
installcheck:
	@d=$$(mktemp -d) && $(MAKE) -s install DESTDIR=$$d PREFIX=/usr/local >/dev/null && \
	export PKG_CONFIG_SYSROOT_DIR=$$d PKG_CONFIG_PATH=$$d/usr/local/lib/pkgconfig && \
	$(CC) examples/conv_forward.c -o $$d/conv_forward $$(pkg-config --cflags --libs heed) && \
	LD_LIBRARY_PATH=$$d/usr/local/lib $$d/conv_forward && \
	{ objdump -p $$d/conv_forward | grep -q 'NEEDED *libheed\.so\.$(SOVERSION)$$' || \
	  { echo "installcheck: conv_forward does not record libheed.so.$(SOVERSION)"; exit 1; }; } && \
	if command -v c++ >/dev/null; then \
	  c++ -Wall -Wextra -pedantic examples/from_cpp.cc -o $$d/from_cpp $$(pkg-config --cflags --libs heed) && \
	  LD_LIBRARY_PATH=$$d/usr/local/lib $$d/from_cpp; fi && \
	rm -rf $$d && echo "installcheck: ok"

# The shipped models: `make models` retrains them from scratch (one thread
# each, so three run side by side and each run is reproducible).
MODELS := models/fmnist-plain.heed models/fmnist-se.heed models/fmnist-cbam.heed models/fmnist-eca.heed \
	models/fmnist-mobile.heed models/ram-fmnist-cluttered60.heed
# The plain net trains 15 epochs: at 10 it stopped at 93.49%, short of the
# 93.5% the attention variants passed.
EPOCHS_plain := 15
TRAIN_RECIPE = --epochs $(or $(EPOCHS_$*),10) --batch 64 --lr 0.05 --schedule cosine --weight-decay 5e-4 --augment --seed 1 --threads 1 --json
models: $(BUILD)/heed
	@mkdir -p models
	$(MAKE) -j3 $(MODELS) MODELS_FORCE=1

models/fmnist-%.heed: $(if $(MODELS_FORCE),FORCE) nets/fmnist-%.net | $(BUILD)/heed
	@mkdir -p models
	$(BUILD)/heed train --net nets/fmnist-$*.net --out $@ $(TRAIN_RECIPE) > models/fmnist-$*.log 2>&1

# RAM (W3's layout, 6 glimpses) on the cluttered 60x60 canvases. AdamW:
# with SGD at the CNNs' settings the glimpse policy barely learned.
RAM_RECIPE := --epochs 50 --batch 64 --optimizer adamw --lr 1e-3 --schedule cosine --seed 1 --threads 1 --json
models/ram-fmnist-cluttered60.heed: $(if $(MODELS_FORCE),FORCE) nets/ram60-g6.net | $(BUILD)/heed
	@mkdir -p models
	$(BUILD)/heed train --net nets/ram60-g6.net --data fmnist-cluttered60 --out $@ $(RAM_RECIPE) > models/ram-fmnist-cluttered60.log 2>&1

# The README's RAM table: RAM with 4, 6, 8 glimpses and the CNN baseline on
# three datasets, 10 epochs each (about 2 hours on one core); the logs stay
# in models/table/, the models are not shipped.
ram-table: $(BUILD)/heed
	scripts/train_ram_table.sh $(BUILD)/heed models/table
	python3 scripts/ram_table.py models/table

# The demo classifies every image in images/ with the shipped CBAM model,
# and shows RAM's glimpses on the cluttered ones.
demo: $(BUILD)/heed
	@mkdir -p out
	$(BUILD)/heed classify --model models/fmnist-cbam.heed --top 3 --overlay out images/*.png images/*.jpg
	$(BUILD)/heed glimpse --model models/ram-fmnist-cluttered60.heed --overlay out images/cluttered60/*.png
	@echo "overlays written to out/"

# heed against its PyTorch peer (../shared/bench/peer_torch.py, which needs
# python3-torch) on the whole benchmark matrix: a markdown table. The test
# suite runs `heed bench` only in a short smoke mode (tests/check_bench.c).
bench: $(BUILD)/heed
	python3 bench/compare.py --heed $(BUILD)/heed $(BENCH_ARGS)

clean:
	rm -rf build out
