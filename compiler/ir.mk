# compiler/ir.mk -- sources of the ir part of libplastcc.a (owned by that part)
