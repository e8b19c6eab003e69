/* compiler/emit_llvm.h -- the LLVM backend: a Program's step functions as an LLVM module (llvm-c only).
 *
 * The module defines, with exactly the semantics of the C backend and the runtime ABI (plastrt.h):
 *     void   <model>_step_forward(const PlStepArgs *a);
 *     void   <model>_step_vjp(const PlStepArgs *a);      PARAM_BAR outputs are accumulated (+=)
 *     size_t <model>_work_floats(int B);                 enough scratch for both entry points
 * and, on request (EMITLL_DESCRIPTOR), the descriptor `PlModel <model>_model` and (EMITLL_MAIN) a
 * `main` that calls pl_main(&<model>_model, argc, argv), so an object file links with the runtime alone.
 *
 * Ownership: every function that returns an LLVM object (module, target machine) hands it to the caller,
 * who disposes of it (or hands it on, e.g. to the JIT); the Program is only read.
 */
#ifndef PLASTC_EMIT_LLVM_H
#define PLASTC_EMIT_LLVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "program.h"

enum {
	EMITLL_DESCRIPTOR = 1 << 0, /* also define the PlModel global <model>_model */
	EMITLL_MAIN = 1 << 1,       /* also define main() calling pl_main (implies EMITLL_DESCRIPTOR) */
	EMITLL_NO_OPT = 1 << 2,     /* skip the O3 pipeline (emit-llvm -O0, tests of the raw IR) */
	EMITLL_NO_LOOP_FUSE = 1 << 3, /* one loop nest per value, no merged nests (also PLASTC_NO_LOOP_FUSE=1) */
};

/* Wall-clock seconds of each LLVM stage and the machine-code size, for --time-passes. Fields a stage did
 * not run stay 0. */
typedef struct EmitllTimes {
	double ir_build; /* Program -> verified LLVM module */
	double opt;      /* default<O3> */
	double codegen;  /* object emission (to a file, or to memory for the JIT) */
	double link;     /* the JIT's linking of that object and lookup of the entry points */
	double cache;    /* the JIT's object cache: reading a hit, or writing after a miss */
	bool cache_hit;  /* the JIT's object came from its cache (no pass pipeline, no codegen ran) */
	size_t code_bytes; /* size of the .text sections of the object code (0 if not measured) */
} EmitllTimes;

/* Initialises LLVM's native target once per process (idempotent). */
void emitll_init_native(void);

/* A target machine for the host: host triple, CPU name and features, -O3 codegen, PIC.
 * Returns NULL after printing "plastc: internal error: ..." to err. The caller owns the result. */
LLVMTargetMachineRef emitll_host_machine(FILE *err);

/* Builds and verifies the module of p in ctx, with triple and data layout of tm. On a verifier failure
 * it dumps the module to err, prints an internal error naming the model and returns NULL. The caller owns
 * the module. flags: EMITLL_*. */
LLVMModuleRef emitll_module(const Program *p, LLVMContextRef ctx, LLVMTargetMachineRef tm, unsigned flags,
	FILE *err);

/* Runs LLVM's default<O3> pipeline (loop and SLP vectorisation on) for tm. Returns 0, or -1 after printing. */
int emitll_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, FILE *err);

/* Size in bytes of the .text sections of an object file in memory (0 if it cannot be read). */
size_t emitll_text_bytes(LLVMMemoryBufferRef obj);

/* Size in bytes of the .text sections when m is compiled by tm (compiles to memory; m is unchanged). */
size_t emitll_code_size(LLVMModuleRef m, LLVMTargetMachineRef tm);

/* Writes p as textual LLVM IR to path ("-" = stdout), optimised unless EMITLL_NO_OPT.
 * Returns 0, 1 when path cannot be written (message printed), 2 on an internal error. */
int emitll_write_ir(const Program *p, const char *path, unsigned flags, EmitllTimes *times, FILE *err);

/* Writes p as a host object file (PIC, O3) with the descriptor <model>_model, and main() if flags has
 * EMITLL_MAIN; `cc obj -lplastrt -lopenblas -lm` then makes the per-model binary.
 * Returns 0, 1 when obj_path cannot be written, 2 on an internal error. times may be NULL. */
int emitll_object(const Program *p, const char *obj_path, unsigned flags, EmitllTimes *times, FILE *err);

/* The C identifier prefix of p's symbols: the model name with every byte outside [A-Za-z0-9_] as '_' (and a
 * leading '_' if it starts with a digit), as emitc_symbol_prefix.
 * Writes at most n bytes including the NUL. */
void emitll_symbol_prefix(const Program *p, char *buf, size_t n);

/* Monotonic clock in seconds (for the stage timings). */
double emitll_now(void);

#endif
