# runtime/fsc.mk -- runtime sources of the few-shot classification part (image loaders, oneshot task)
