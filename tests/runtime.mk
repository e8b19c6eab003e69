# tests/runtime.mk -- tests of the runtime part
