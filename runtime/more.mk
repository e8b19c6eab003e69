# runtime/more.mk -- runtime sources
runtime_libplastrt_a_SOURCES += runtime/util.h runtime/util.c runtime/alloc.c runtime/rng.c \
	runtime/safetensors.c runtime/init.c runtime/task.c runtime/loss.c runtime/bptt.c runtime/engine.c \
	runtime/optim.c runtime/train.c runtime/cli.c
