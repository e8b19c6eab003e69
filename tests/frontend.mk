# tests/frontend.mk -- tests of the frontend part
