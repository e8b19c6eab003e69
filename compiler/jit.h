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

#include <stdbool.h>
#include <stdio.h>

#include "emit_llvm.h"
#include "plastrt.h"
#include "program.h"

typedef struct JitModel JitModel;

/* The JIT's LLVM pass pipeline (LLVMRunPasses syntax), unless $PLASTC_JIT_PASSES names another.
 * Not default<O3>: start-up must stay under a second, and on the cue-reward models O3 took 0.7 s of
 * CPU and its code generation 0.8 s (rnn_gradient, H=256) for no measurable gain per step over this
 * list, which keeps what the step functions need: the bodies inlined into the entry points (so their
 * noalias arguments become alias scopes), accumulators promoted to registers, loops rotated with their
 * invariant loads hoisted, then vectorised (docs/backends.md has the measurements). */
#define JIT_DEFAULT_PASSES                                                                                  \
	"always-inline,function(sroa,instcombine,simplifycfg,loop(loop-rotate),loop-mssa(licm),loop-vectorize,"   \
	"instcombine,simplifycfg)"
const char *jit_passes(void);

/* LLVM command-line options set once per process before the JIT's first compilation, unless
 * $PLASTC_JIT_LLVM_ARGS gives others (blank-separated). Loop strength reduction and CodeGenPrepare took
 * 0.23 s and 0.15-0.5 s of the code generation of one step function (they scan every use of the
 * pointers that hundreds of loops share); without them codegen is 2x faster and the step is not slower
 * (docs/backends.md). LLVM keeps the options for the whole process: a later emitll_object in the same
 * process (tests) also runs without them. */
#define JIT_DEFAULT_LLVM_ARGS "-disable-lsr -disable-cgp"
const char *jit_llvm_args(void);

/* Builds, verifies, optimises (jit_passes()) and compiles p to an object in memory, which ORC LLJIT links
 * into this process. times (may be NULL) receives the stage timings;
 * the code size is that of the object the JIT links.
 * Returns NULL after printing "plastc: internal error: ..." to err. */
JitModel *jit_compile(const Program *p, EmitllTimes *times, FILE *err);

/* An on-disk cache of JIT objects: dir (created if missing; its parent must exist) holds one file per
 * key, <model>-<key>.jit.o. The key hashes the unoptimised module's bitcode, the LLVM version, the host
 * triple, CPU and features, the pass pipeline and the LLVM options; a file is used only if its header
 * (magic, key, size, checksum of the object) matches. rebuild: compile and overwrite even on a hit. */
typedef struct JitCache {
	const char *dir;
	bool rebuild;
} JitCache;

/* jit_compile through the cache (cache or cache->dir NULL: no cache). A hit prints
 * "plastc: using cached JIT object PATH" to err; a miss writes the object there (a write failure is a
 * warning). times->cache receives the time spent reading or writing the cache. */
JitModel *jit_compile_cached(const Program *p, const JitCache *cache, EmitllTimes *times, FILE *err);

/* The descriptor of the JIT'd model: tables, sizes and entry points; valid until jit_free. */
const PlModel *jit_model(const JitModel *j);

void jit_free(JitModel *j);

#endif
