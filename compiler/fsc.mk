# compiler/fsc.mk -- sources of the few-shot classification part of libplastcc.a (image encoder builders)
