# runtime/fsc.mk -- runtime sources of the few-shot classification part (image loaders, oneshot task)
runtime_libplastrt_a_SOURCES += runtime/images.h runtime/images.c
runtime_libplastrt_a_CFLAGS += $(LIBPNG_CFLAGS)
runtime_libplastrt_a_SOURCES += runtime/task_oneshot.h runtime/task_oneshot.c
runtime_libplastrt_a_SOURCES += runtime/pl_img.h runtime/kernels_img.c
include_HEADERS += runtime/pl_img.h
