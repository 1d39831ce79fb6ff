# MBPO engine: build, test, bench, run.
#   make              build build/mbpo (CUDA objects too when nvcc is found)
#   make CUDA=0       force the CPU-only build
#   make MPI=0        build without MPI even when Open MPI is installed (make deps MPI=1 installs it)
#   make CUDA_ARCH=86 build GPU code for sm_86 only (default: the local GPU's, else a fat binary)
#   make SAN=1        AddressSanitizer + UndefinedBehaviorSanitizer build (in build-san/)
#   make deps         install missing Debian packages (apt-get as root; otherwise prints the command)
#   make test         everything a machine without a GPU can run; one closing "N passed" line
#   make bench        benchmarks, JSON under bench/results/
#   make run          train MBPO on the default task (TASK=hopper)

CC      ?= gcc
CUDA    ?= auto
SAN     ?= 0
MPI     ?= auto
TASK    ?= hopper
BUILD   ?= build
ifeq ($(SAN),1)
BUILD   := build-san
endif

# ---- what is on this machine ---------------------------------------------------------------
NVCC := $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
ifeq ($(CUDA),0)
NVCC :=
endif
ifeq ($(SAN),1)
NVCC :=
endif
have_hdr = $(shell printf '\#include <$(1)>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo yes || echo no)
HAVE_MUJOCO := $(call have_hdr,mujoco/mujoco.h)
HAVE_CBLAS  := $(call have_hdr,cblas.h)
HAVE_INIH   := $(call have_hdr,ini.h)
HAVE_ZLIB   := $(call have_hdr,zlib.h)
# Open MPI (optional: `mpirun -n N mbpo train ...` spreads a sweep over ranks)
MPI_CFLAGS  := $(if $(filter 0,$(MPI)),,$(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile 2>/dev/null))
MPI_LIBS    := $(if $(filter 0,$(MPI)),,$(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link 2>/dev/null))
HAVE_MPI    := $(if $(MPI_LIBS),$(shell printf '\#include <mpi.h>\n' | $(CC) $(MPI_CFLAGS) -E -x c - >/dev/null 2>&1 && echo yes || echo no),no)
comma := ,
HAVE_OMP    := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo yes || echo no)

# -O3: GCC 12 vectorizes the element loops (ReLU, Adam, gathers) only at -O3; without -ffast-math
# the results are the same bits as at -O2 (sums keep their order), and SAC updates run about 2x faster.
CFLAGS  ?= -O3 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Iinclude -Ienvs -Ikernels -MMD -MP
# OpenBLAS's OpenMP build (Debian libopenblas0-openmp, installed by make deps beside the default
# pthreads build, which stays the system's choice) shares libgomp's passive threads with the element
# loops. The pthreads build's workers spin (sched_yield) between calls: with one of 2 cores busy a
# model step took 51-129 ms instead of 27 ms. Same API (cblas.h) and, for a given thread count, the
# same sums, so results do not change.
BLAS_OMP_DIR := /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null)/openblas-openmp
ifneq ($(wildcard $(BLAS_OMP_DIR)/libopenblas.so.0),)
BLAS_LIBS  := -L$(BLAS_OMP_DIR) -Wl,-rpath,$(BLAS_OMP_DIR) -l:libopenblas.so.0
BLAS_FOUND := OpenBLAS, OpenMP build
else
BLAS_LIBS  := -lopenblas
BLAS_FOUND := OpenBLAS, default build (make deps adds the OpenMP one)
endif
LDLIBS  := -lmujoco $(BLAS_LIBS) -linih -lz -lm -lpthread
# Small-GEMM libraries that bench_gemm compares with OpenBLAS on the model's shapes (only it links
# them; none beat OpenBLAS there by enough to adopt, see include/gemm.h): each one found is used.
# Debian: libblis-dev, libxsmm-dev, libdnnl-dev (make deps does not install them).
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
BLIS_DIR  := /usr/lib/$(MULTIARCH)/blis-openmp
BLIS_INC  := /usr/include/$(MULTIARCH)/blis-openmp
GEMM_PEERS_CFLAGS := $(if $(wildcard $(BLIS_INC)/blis.h $(BLIS_DIR)/libblis.so),-DHAVE_BLIS=1 -idirafter $(BLIS_INC))
GEMM_PEERS_LIBS   := $(if $(wildcard $(BLIS_INC)/blis.h $(BLIS_DIR)/libblis.so),$(BLIS_DIR)/libblis.so -Wl$(comma)-rpath$(comma)$(BLIS_DIR))
ifeq ($(call have_hdr,libxsmm.h),yes)
ifneq ($(wildcard /usr/lib/libxsmm.a),)
GEMM_PEERS_CFLAGS += -DHAVE_XSMM=1
GEMM_PEERS_LIBS   += /usr/lib/libxsmm.a -ldl -lm
endif
endif
ifeq ($(call have_hdr,oneapi/dnnl/dnnl.h),yes)
GEMM_PEERS_CFLAGS += -DHAVE_DNNL=1
GEMM_PEERS_LIBS   += -ldnnl
endif
GEMM_PEERS := $(if $(findstring BLIS,$(GEMM_PEERS_CFLAGS)),BLIS )$(if $(findstring XSMM,$(GEMM_PEERS_CFLAGS)),libxsmm )$(if $(findstring DNNL,$(GEMM_PEERS_CFLAGS)),oneDNN)
ifeq ($(HAVE_OMP),yes)
CFLAGS  += -fopenmp
LDFLAGS += -fopenmp
endif
ifeq ($(HAVE_MPI),yes)
CFLAGS  += $(MPI_CFLAGS) -DMBPO_MPI=1
LDLIBS  += $(MPI_LIBS)
endif
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

ifneq ($(NVCC),)
CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
# GPU architectures: CUDA_ARCH unset = the compute capability of the GPUs nvidia-smi lists (its
# --query-gpu=compute_cap), CUDA_ARCH=86 or CUDA_ARCH="80 90" = those, CUDA_ARCH= (empty) or no GPU
# found = a fat binary for every current NVIDIA GPU: sm_80 (A100), sm_86 (RTX 30, A6000), sm_89
# (RTX 40, L40), sm_90 (H100, H200), plus PTX of the newest, which the driver compiles for later
# GPUs (RTX 50, Blackwell) on first use. docs/cuda.md lists the toolkits and drivers.
CUDA_FAT_ARCHS := 80 86 89 90
ifeq ($(origin CUDA_ARCH),undefined)
CUDA_ARCH_DETECTED := $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d ' .' | grep -E '^[0-9]+$$' | sort -un | tr '\n' ' ')
CUDA_ARCH := $(strip $(CUDA_ARCH_DETECTED))
CUDA_ARCH_WHY := $(if $(CUDA_ARCH),the GPU nvidia-smi reports,no GPU found by nvidia-smi: a fat binary)
else
CUDA_ARCH_WHY := $(if $(strip $(CUDA_ARCH)),CUDA_ARCH=$(strip $(CUDA_ARCH)),CUDA_ARCH= (empty): a fat binary)
endif
CUDA_ARCHS := $(if $(strip $(CUDA_ARCH)),$(strip $(subst ., ,$(subst $(comma), ,$(CUDA_ARCH)))),$(CUDA_FAT_ARCHS))
CUDA_PTX   := $(lastword $(shell printf '%s\n' $(CUDA_ARCHS) | sort -n))
NVCC_VERSION := $(shell $(NVCC) --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
NVCCFLAGS ?= -O3 -g -lineinfo
NVCCFLAGS += -std=c++17 -Iinclude -Ienvs -Ikernels -DMBPO_CUDA=1 -MMD -MP \
             $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
             -gencode arch=compute_$(CUDA_PTX),code=compute_$(CUDA_PTX) \
             -DMBPO_CUDA_ARCHS='"$(CUDA_ARCHS)"' -Xcompiler -Wall,-Wextra
CFLAGS  += -DMBPO_CUDA=1
LDLIBS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcublasLt -lcurand -lcudart -lstdc++
CU_SRC  := $(wildcard kernels/*.cu)
endif

# ---- sources -------------------------------------------------------------------------------
LIB_SRC  := $(filter-out host/main.c,$(wildcard host/*.c host/cpu/*.c host/dev/*.c envs/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/envs/assets.o $(CU_SRC:%.cu=$(BUILD)/obj/%.cu.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(wildcard tests/tool_*.c)
TOOL_BIN := $(TOOL_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC:= $(wildcard bench/bench_*.c)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
ASSETS   := $(wildcard envs/assets/*.xml) $(wildcard configs/*.ini)

.PHONY: all info deps test-deps test bench run clean FORCE
.SECONDARY:
all: info $(BUILD)/mbpo $(TEST_BIN) $(TOOL_BIN) $(BENCH_BIN)

info:
	@printf 'mbpo build (%s)\n' "$(BUILD)"
	@printf '  %-10s %s\n' nvcc "$(if $(NVCC),$(NVCC) (CUDA $(NVCC_VERSION)) for $(foreach a,$(CUDA_ARCHS),sm_$(a)) + PTX compute_$(CUDA_PTX) ($(CUDA_ARCH_WHY)),not used: CPU-only build)" \
	  MuJoCo "$(HAVE_MUJOCO)" BLAS "$(HAVE_CBLAS) ($(BLAS_FOUND))" inih "$(HAVE_INIH)" zlib "$(HAVE_ZLIB)" \
	  "GEMM peers" "$(or $(strip $(GEMM_PEERS)),none) (bench_gemm only)" \
	  OpenMP "$(HAVE_OMP)" MPI "$(HAVE_MPI)$(if $(filter yes,$(HAVE_MPI)),, (mpirun -n N: make deps MPI=1))" SAN "$(SAN)"
	@if [ "$(HAVE_MUJOCO)$(HAVE_CBLAS)$(HAVE_INIH)$(HAVE_ZLIB)" != "yesyesyesyes" ]; then \
	  echo "  missing libraries: run 'make deps' first"; exit 1; fi

# Objects depend on the flags they were built with: switching CUDA=0 / auto rebuilds.
FLAGS_NOW := $(CC) $(CFLAGS) | $(NVCC) $(NVCCFLAGS) | $(LDLIBS)
$(BUILD)/flags.txt: FORCE
	@mkdir -p $(BUILD)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(FLAGS_NOW)' ]; then echo '$(FLAGS_NOW)' > $@; fi
FORCE:

$(BUILD)/obj/%.o: %.c $(BUILD)/flags.txt
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.cu.o: %.cu $(BUILD)/flags.txt
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

# The MJCF models are embedded in the binary: a generated assembly file .incbin's each
# envs/assets/*.xml (NUL-terminated) and lists them in mbpo_asset_table {name, data, size} (env.c).
$(BUILD)/gen/assets.S: $(ASSETS) Makefile
	@mkdir -p $(dir $@)
	@{ i=0; printf '\t.section .rodata\n'; \
	   for f in $(ASSETS); do \
	     printf '.Lname%d:\t.asciz "%s"\n.Ldata%d:\t.incbin "%s"\n\t.byte 0\n.Lend%d:\n' \
	       $$i "$$(basename $$f)" $$i "$$f" $$i; i=$$((i+1)); done; \
	   printf '\t.section .data.rel.ro,"aw"\n\t.balign 8\n\t.globl mbpo_asset_table\nmbpo_asset_table:\n'; \
	   i=0; for f in $(ASSETS); do \
	     printf '\t.quad .Lname%d, .Ldata%d, .Lend%d - .Ldata%d - 1\n' $$i $$i $$i $$i; i=$$((i+1)); done; \
	   printf '\t.quad 0, 0, 0\n\t.section .note.GNU-stack,"",@progbits\n'; } > $@

$(BUILD)/obj/envs/assets.o: $(BUILD)/gen/assets.S $(ASSETS)
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(BUILD)/libmbpo.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/mbpo: $(BUILD)/obj/host/main.o $(BUILD)/libmbpo.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/libmbpo.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libmbpo.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/obj/bench/bench_gemm.o: CFLAGS += $(GEMM_PEERS_CFLAGS)
$(BUILD)/bench/bench_gemm: LDLIBS += $(GEMM_PEERS_LIBS)

# ---- set-up --------------------------------------------------------------------------------
DEB_RUNTIME := libmujoco-dev libopenblas-dev libinih-dev zlib1g-dev
DEB_FASTER  := libopenblas0-openmp
DEB_MPI     := libopenmpi-dev openmpi-bin
DEB_TEST    := python3-torch python3-numpy python3-venv ffmpeg libegl-mesa0 libosmesa6 $(DEB_MPI)
deps:
	@sh tests/deps.sh $(DEB_RUNTIME) $(if $(filter 1,$(MPI)),$(DEB_MPI))
	@sh tests/deps.sh --optional $(DEB_FASTER)
test-deps: deps
	@sh tests/deps.sh --optional $(DEB_TEST)

# ---- the README's commands -----------------------------------------------------------------
test: test-deps
	@$(MAKE) --no-print-directory all
	@$(BUILD)/mbpo --version # names the GPU, or why it is unusable (an old driver, no kernel image)
	@sh tests/run.sh $(BUILD)

bench: deps
	@$(MAKE) --no-print-directory all
	@sh bench/run.sh $(BUILD)

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/mbpo train configs/$(TASK).ini

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
