# tests/emitc.mk -- tests of the emitc part
