# tests/fsc.mk -- tests of the few-shot classification part
