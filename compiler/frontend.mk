# compiler/frontend.mk -- sources of the frontend part of libplastcc.a (owned by that part)
