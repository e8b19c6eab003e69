# compiler/emitc.mk -- sources of the emitc part of libplastcc.a (owned by that part)
