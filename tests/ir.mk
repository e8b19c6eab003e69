# tests/ir.mk -- tests of the ir part
