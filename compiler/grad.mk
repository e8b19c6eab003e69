# compiler/grad.mk -- plastc init, grad, gradcheck (cmd_grad.c) and the derivative checks (gradcheck.c)
compiler_libplastcc_a_SOURCES += compiler/cmd_grad.c compiler/gradcheck.c compiler/gradcheck.h
