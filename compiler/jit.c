/* compiler/jit.c -- Program -> machine code in this process by ORC LLJIT (see jit.h).
 *
 * The C API sequence, with the owner of each object after every step (ORC hands ownership over in
 * most calls; getting one of them wrong is a double free or a leak, so each hand-over is commented):
 *
 *   thread-safe context  TSC                      ours (a shared reference)
 *   module M in TSC's context, verified, O3       ours
 *   target machine TM2 -> JIT target machine builder JTMB      TM2 consumed
 *   LLJIT builder <- JTMB                                       JTMB consumed
 *   LLJIT J <- builder                                          builder consumed, J ours
 *   main dylib: absolute symbols (cblas_*, libm), process-symbol generator     both owned by the dylib
 *   thread-safe module TSM <- M, TSC                            M consumed; TSC reference dropped by us
 *   J <- TSM                                                    TSM consumed on success only
 *   lookup of the three entry points                            compiles; addresses valid until J dies
 */
#include "jit.h"

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct JitModel {
	LLVMOrcLLJITRef jit;
	PlModel model;
	PlTensorDesc *params, *state;
	char *name, *hash, *source, *settings;
};

static void jit_error(FILE *err, const char *what, LLVMErrorRef e)
{
	char *msg = LLVMGetErrorMessage(e); /* consumes e */
	fprintf(err, "plastc: internal error: JIT: %s: %s\n", what, msg);
	LLVMDisposeErrorMessage(msg);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static PlTensorDesc *desc_table(const ProgTensor *t, int n)
{
	PlTensorDesc *d = calloc(n > 0 ? (size_t)n : 1, sizeof *d);
	if (!d)
		return NULL;
	for (int i = 0; i < n; i++) {
		d[i].name = t[i].name; /* points into the Program: replaced by copies below */
		d[i].rank = t[i].shape.rank;
		for (int k = 0; k < t[i].shape.rank && k < PL_MAX_RANK; k++)
			d[i].dims[k] = t[i].shape.d[k];
		d[i].init = t[i].init;
		d[i].init_a = t[i].init_a;
		d[i].init_b = t[i].init_b;
		d[i].trainable = t[i].trainable ? 1 : 0;
	}
	return d;
}

/* The external functions generated code calls, defined in the JIT's main dylib as absolute symbols
 * with the addresses this process linked. Resolving them here rather than by dlsym alone keeps the JIT
 * working when the linker dropped a library the driver itself never calls (--as-needed). */
static LLVMErrorRef define_runtime_symbols(LLVMOrcLLJITRef jit, LLVMOrcJITDylibRef jd)
{
	static const struct {
		const char *name;
		void (*addr)(void);
	} syms[] = {
		{"cblas_sgemm", (void (*)(void))cblas_sgemm},
		{"cblas_sgemv", (void (*)(void))cblas_sgemv},
		{"cblas_sger", (void (*)(void))cblas_sger},
		{"pl_k_conv2d", (void (*)(void))pl_k_conv2d},
		{"pl_k_conv2d_t", (void (*)(void))pl_k_conv2d_t},
		{"pl_k_conv2d_w", (void (*)(void))pl_k_conv2d_w},
		{"pl_k_maxpool", (void (*)(void))pl_k_maxpool},
		{"pl_k_pool_move", (void (*)(void))pl_k_pool_move},
		{"tanhf", (void (*)(void))tanhf},
		{"expf", (void (*)(void))expf},
		{"logf", (void (*)(void))logf},
		{"sqrtf", (void (*)(void))sqrtf},
	};
	enum { N = sizeof syms / sizeof syms[0] };
	/* the element type is spelt differently in LLVM 14 and 15+; the pointer typedef is stable */
	LLVMOrcCSymbolMapPairs pairs = calloc(N, sizeof *pairs);
	if (!pairs)
		return LLVMCreateStringError("out of memory");
	for (int i = 0; i < N; i++) {
		/* the interned name's reference goes to the materialisation unit below */
		pairs[i].Name = LLVMOrcLLJITMangleAndIntern(jit, syms[i].name);
		pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)syms[i].addr;
		pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
		pairs[i].Sym.Flags.TargetFlags = 0;
	}
	LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, N); /* takes the names, not the array */
	free(pairs);
	LLVMErrorRef e = LLVMOrcJITDylibDefine(jd, mu); /* takes mu on success only */
	if (e)
		LLVMOrcDisposeMaterializationUnit(mu);
	return e;
}

static LLVMErrorRef lookup(LLVMOrcLLJITRef jit, const char *prefix, const char *what, LLVMOrcExecutorAddress *addr)
{
	char name[256];
	snprintf(name, sizeof name, "%s_%s", prefix, what);
	return LLVMOrcLLJITLookup(jit, addr, name);
}

JitModel *jit_compile(const Program *p, EmitllTimes *times, FILE *err)
{
	JitModel *j = calloc(1, sizeof *j);
	if (!j) {
		fprintf(err, "plastc: internal error: out of memory\n");
		return NULL;
	}
	LLVMTargetMachineRef tm = emitll_host_machine(err); /* ours: used for O3, then disposed */
	if (!tm) {
		free(j);
		return NULL;
	}
	LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext(); /* our reference */
	LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(tsc);    /* borrowed from tsc */
	double t0 = emitll_now();
	LLVMModuleRef mod = emitll_module(p, ctx, tm, 0, err); /* ours */
	double t1 = emitll_now();
	if (times)
		times->ir_build = t1 - t0;
	if (!mod || emitll_optimize(mod, tm, err) != 0) {
		if (mod)
			LLVMDisposeModule(mod);
		LLVMOrcDisposeThreadSafeContext(tsc);
		LLVMDisposeTargetMachine(tm);
		free(j);
		return NULL;
	}
	double t2 = emitll_now();
	if (times) {
		times->opt = t2 - t1;
		times->code_bytes = emitll_code_size(mod, tm); /* extra compilation, outside the timed stages */
	}
	LLVMDisposeTargetMachine(tm);
	t2 = emitll_now();

	/* A second machine with the same settings becomes the JIT's code generator. */
	LLVMTargetMachineRef tm2 = emitll_host_machine(err);
	if (!tm2) {
		LLVMDisposeModule(mod);
		LLVMOrcDisposeThreadSafeContext(tsc);
		free(j);
		return NULL;
	}
	LLVMOrcJITTargetMachineBuilderRef jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm2); /* tm2 consumed */
	LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
	LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb); /* jtmb consumed by the builder */
	LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, builder);        /* builder consumed, even on error */
	if (e) {
		jit_error(err, "cannot create LLJIT", e);
		j->jit = NULL;
		goto fail_mod;
	}
	LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit); /* owned by the JIT */
	e = define_runtime_symbols(j->jit, jd);
	if (e) {
		jit_error(err, "cannot define the BLAS and libm symbols", e);
		goto fail_mod;
	}
	LLVMOrcDefinitionGeneratorRef gen = NULL;
	e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL);
	if (e) {
		jit_error(err, "cannot create the process-symbol generator", e);
		goto fail_mod;
	}
	LLVMOrcJITDylibAddGenerator(jd, gen); /* gen now owned by the dylib */

	LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc); /* mod consumed */
	LLVMOrcDisposeThreadSafeContext(tsc); /* drop our reference; tsm keeps the context alive */
	tsc = NULL;
	mod = NULL;
	e = LLVMOrcLLJITAddLLVMIRModule(j->jit, jd, tsm); /* tsm consumed on success only */
	if (e) {
		LLVMOrcDisposeThreadSafeModule(tsm);
		jit_error(err, "cannot add the module", e);
		goto fail;
	}

	char prefix[128];
	emitll_symbol_prefix(p, prefix, sizeof prefix);
	LLVMOrcExecutorAddress a_fwd = 0, a_vjp = 0, a_wf = 0;
	if ((e = lookup(j->jit, prefix, "step_forward", &a_fwd)) || (e = lookup(j->jit, prefix, "step_vjp", &a_vjp)) ||
		(e = lookup(j->jit, prefix, "work_floats", &a_wf))) {
		jit_error(err, "cannot compile the entry points", e);
		goto fail;
	}
	if (times)
		times->codegen = emitll_now() - t2;

	/* The descriptor: tables and strings are our copies, so the Program may be freed first. */
	j->name = dup_or_null(p->name);
	j->hash = dup_or_null(p->hash);
	j->source = dup_or_null(p->source);
	j->settings = dup_or_null(p->settings);
	j->params = desc_table(p->params, p->n_params);
	j->state = desc_table(p->state, p->n_state);
	if (!j->params || !j->state) {
		fprintf(err, "plastc: internal error: out of memory\n");
		goto fail;
	}
	for (int i = 0; i < p->n_params; i++)
		j->params[i].name = NULL;
	for (int i = 0; i < p->n_state; i++)
		j->state[i].name = NULL;
	j->model.n_params = p->n_params; /* jit_free frees this many names */
	j->model.n_state = p->n_state;
	for (int i = 0; i < p->n_params; i++)
		if (p->params[i].name && !(j->params[i].name = strdup(p->params[i].name)))
			goto oom;
	for (int i = 0; i < p->n_state; i++)
		if (p->state[i].name && !(j->state[i].name = strdup(p->state[i].name)))
			goto oom;
	PlModel *m = &j->model;
	m->abi_version = PL_ABI_VERSION;
	m->name = j->name;
	m->hash = j->hash;
	m->source = j->source;
	m->settings = j->settings;
	m->in_size = p->in_size;
	m->pred_size = p->pred_size;
	m->out_size = p->out_size;
	m->meta_loss = p->meta_loss;
	m->n_params = p->n_params;
	m->params = j->params;
	m->n_state = p->n_state;
	m->state = j->state;
	/* integer -> function pointer: the addresses are the JIT'd functions, whose types the module fixes */
	m->work_floats = (size_t(*)(int))(uintptr_t)a_wf;
	m->step_forward = (void (*)(const PlStepArgs *))(uintptr_t)a_fwd;
	m->step_vjp = (void (*)(const PlStepArgs *))(uintptr_t)a_vjp;
	return j;

oom:
	fprintf(err, "plastc: internal error: out of memory\n");
	goto fail;
fail_mod:
	LLVMDisposeModule(mod);
	LLVMOrcDisposeThreadSafeContext(tsc);
fail:
	jit_free(j);
	return NULL;
}

const PlModel *jit_model(const JitModel *j)
{
	return &j->model;
}

void jit_free(JitModel *j)
{
	if (!j)
		return;
	if (j->jit) {
		LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit); /* frees the machine code and any pending module */
		if (e)
			jit_error(stderr, "dispose", e);
	}
	for (int i = 0; j->params && i < j->model.n_params; i++)
		free((void *)(uintptr_t)j->params[i].name);
	for (int i = 0; j->state && i < j->model.n_state; i++)
		free((void *)(uintptr_t)j->state[i].name);
	free(j->params);
	free(j->state);
	free(j->name);
	free(j->hash);
	free(j->source);
	free(j->settings);
	free(j);
}
