# grammar/local.mk -- the generated lexer and parser, in a convenience library so that the relaxed
# warning flags for generated code apply to them only.
noinst_LIBRARIES += grammar/libgrammar.a
grammar_libgrammar_a_SOURCES = grammar/lexer.l grammar/parser.y
grammar_libgrammar_a_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wno-unused-function -Wno-sign-compare -Wno-unused-parameter
BUILT_SOURCES += grammar/parser.h
EXTRA_DIST += grammar/README.md
