/* compiler/jit.h -- in-process compilation of a Program by LLVM's ORC LLJIT.
 *
 * `plastc train --backend llvm` uses it to get a PlModel whose entry points are JIT'd code and hands that
 * model to the runtime's pl_main, so no C compiler and no linker run. Tests use it to run the generated
 * code against the interpreter.
 *
 * Ownership: a JitModel owns its LLJIT instance (and with it all machine code), the descriptor tables
 * and copies of the Program's strings; jit_free releases everything, after which the PlModel returned by
 * jit_model and its function pointers must not be used. The Program is only read.
 */
#ifndef PLASTC_JIT_H
#define PLASTC_JIT_H

#include <stdio.h>

#include "emit_llvm.h"
#include "plastrt.h"
#include "program.h"

typedef struct JitModel JitModel;

/* Builds, verifies, optimises (O3) and JIT-compiles p. times (may be NULL) receives the stage timings;
 * when times is not NULL the code size is also measured, by one extra compilation to memory.
 * Returns NULL after printing "plastc: internal error: ..." to err. */
JitModel *jit_compile(const Program *p, EmitllTimes *times, FILE *err);

/* The descriptor of the JIT'd model: tables, sizes and entry points; valid until jit_free. */
const PlModel *jit_model(const JitModel *j);

void jit_free(JitModel *j);

#endif
