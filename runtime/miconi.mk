# runtime/miconi.mk -- Miconi 2016: its three tasks and its RMSprop optimiser
runtime_libplastrt_a_SOURCES += runtime/task_miconi.c runtime/optim_rmsprop.c
