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
#include <llvm-c/Support.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include <llvm-c/BitWriter.h>
#include <llvm/Config/llvm-config.h>

#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>
#include <math.h>
#include <stdbool.h>
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
		d[i].running = t[i].running ? 1 : 0;
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

/* The JIT's pass pipeline (see jit.h for why it is not default<O3>); PLASTC_JIT_PASSES replaces it, for
 * measuring others without rebuilding. */
const char *jit_passes(void)
{
	const char *env = getenv("PLASTC_JIT_PASSES");
	return env && *env ? env : JIT_DEFAULT_PASSES;
}

/* LLVM's global command-line options for the JIT's code generator, parsed once per process (LLVM allows
 * only one parse); PLASTC_JIT_LLVM_ARGS replaces JIT_DEFAULT_LLVM_ARGS. Blank-separated. */
const char *jit_llvm_args(void)
{
	const char *env = getenv("PLASTC_JIT_LLVM_ARGS");
	return env ? env : JIT_DEFAULT_LLVM_ARGS;
}

static void set_llvm_options(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	char *copy = strdup(jit_llvm_args());
	if (!copy)
		return;
	const char *argv[16];
	int argc = 0;
	argv[argc++] = "plastc";
	for (char *tok = strtok(copy, " \t"); tok && argc < 15; tok = strtok(NULL, " \t"))
		argv[argc++] = tok;
	argv[argc] = NULL;
	if (argc > 1)
		LLVMParseCommandLineOptions(argc, argv, "plastc JIT options");
	free(copy); /* LLVM copies option values it keeps */
}

static int run_passes(LLVMModuleRef mod, LLVMTargetMachineRef tm, FILE *err)
{
	LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
	LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
	LLVMPassBuilderOptionsSetSLPVectorization(opts, 1);
	LLVMPassBuilderOptionsSetLoopInterleaving(opts, 1);
	LLVMPassBuilderOptionsSetLoopUnrolling(opts, 0); /* as emitll_optimize: no measured gain, twice the code */
	LLVMErrorRef e = LLVMRunPasses(mod, jit_passes(), tm, opts);
	LLVMDisposePassBuilderOptions(opts);
	if (e) {
		jit_error(err, "pass pipeline failed", e);
		return -1;
	}
	return 0;
}

/* 64-bit FNV-1a, continued from h (the cache key and the object checksum). */
static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
	const unsigned char *b = data;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s ? s : "", strlen(s ? s : "") + 1); /* the NUL separates fields */
}

/* The cache key: everything the object depends on. The unoptimised module's bitcode stands for the
 * Program and the emitter (any change of either changes it); then the LLVM version, the host (triple,
 * CPU, features: the code uses the host's vector units), the pass pipeline and the LLVM options. */
static uint64_t cache_key(LLVMModuleRef mod)
{
	uint64_t h = 0xcbf29ce484222325ull;
	h = fnv_str(h, "plastc-jit-object-1");
	h = fnv_str(h, LLVM_VERSION_STRING);
	char *triple = LLVMGetDefaultTargetTriple(), *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
	h = fnv_str(h, triple);
	h = fnv_str(h, cpu);
	h = fnv_str(h, feat);
	LLVMDisposeMessage(triple);
	LLVMDisposeMessage(cpu);
	LLVMDisposeMessage(feat);
	h = fnv_str(h, jit_passes());
	h = fnv_str(h, jit_llvm_args());
	LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(mod);
	h = fnv(h, LLVMGetBufferStart(bc), LLVMGetBufferSize(bc));
	LLVMDisposeMemoryBuffer(bc);
	return h;
}

/* A cache file: this header, then the object file. A hit is used only if the magic, the key, the size
 * and the checksum of the object all match (a truncated, foreign or corrupted file is a miss, and is
 * replaced). */
typedef struct CacheHeader {
	char magic[16]; /* "plastc-jit-obj1" */
	uint64_t key, size, sum;
} CacheHeader;

static const char cache_magic[16] = "plastc-jit-obj1";

static LLVMMemoryBufferRef cache_read(const char *path, uint64_t key)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	CacheHeader hd;
	char *data = NULL;
	LLVMMemoryBufferRef obj = NULL;
	if (fread(&hd, sizeof hd, 1, f) == 1 && memcmp(hd.magic, cache_magic, sizeof cache_magic) == 0 &&
		hd.key == key && hd.size > 0 && hd.size < ((uint64_t)1 << 30) && (data = malloc(hd.size)) &&
		fread(data, 1, hd.size, f) == hd.size && fgetc(f) == EOF &&
		fnv(0xcbf29ce484222325ull, data, hd.size) == hd.sum)
		obj = LLVMCreateMemoryBufferWithMemoryRangeCopy(data, hd.size, "plastc-jit-cached");
	free(data);
	fclose(f);
	return obj;
}

/* Written to a temporary name in the same directory, then renamed: readers see no file or a whole one. */
static void cache_write(const char *dir, const char *path, uint64_t key, LLVMMemoryBufferRef obj, FILE *err)
{
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		fprintf(err, "plastc: warning: %s: cannot create the JIT cache: %s\n", dir, strerror(errno));
		return;
	}
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	CacheHeader hd;
	memset(&hd, 0, sizeof hd);
	memcpy(hd.magic, cache_magic, sizeof cache_magic);
	hd.key = key;
	hd.size = LLVMGetBufferSize(obj);
	hd.sum = fnv(0xcbf29ce484222325ull, LLVMGetBufferStart(obj), hd.size);
	FILE *f = fopen(tmp, "wb");
	bool ok = f && fwrite(&hd, sizeof hd, 1, f) == 1 && fwrite(LLVMGetBufferStart(obj), 1, hd.size, f) == hd.size;
	if (f)
		ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		fprintf(err, "plastc: warning: %s: cannot write the JIT cache: %s\n", path, strerror(errno));
		unlink(tmp);
	}
}

/* Program -> optimised module -> object file in memory, by our own target machine, or the same object
 * from the cache (cache_dir may be NULL: no cache). *hit tells which. NULL after printing. */
static LLVMMemoryBufferRef compile_object(const Program *p, const JitCache *cache, EmitllTimes *times, bool *hit,
	FILE *err)
{
	*hit = false;
	set_llvm_options();
	LLVMTargetMachineRef tm = emitll_host_machine(err); /* ours */
	if (!tm)
		return NULL;
	LLVMContextRef ctx = LLVMContextCreate(); /* ours; the object outlives it */
	double t0 = emitll_now();
	LLVMModuleRef mod = emitll_module(p, ctx, tm, 0, err); /* ours */
	double t1 = emitll_now();
	if (times)
		times->ir_build = t1 - t0;
	LLVMMemoryBufferRef obj = NULL;
	char path[PATH_MAX] = "";
	uint64_t key = 0;
	if (mod && cache && cache->dir) {
		key = cache_key(mod);
		char pre[128];
		emitll_symbol_prefix(p, pre, sizeof pre);
		if (snprintf(path, sizeof path, "%s/%s-%016llx.jit.o", cache->dir, pre, (unsigned long long)key) >=
			(int)sizeof path)
			path[0] = 0;
		if (path[0] && !cache->rebuild && (obj = cache_read(path, key)) != NULL) {
			*hit = true;
			if (times) {
				times->cache = emitll_now() - t1;
				times->cache_hit = true;
			}
			fprintf(err, "plastc: using cached JIT object %s\n", path);
		}
		t1 = emitll_now();
	}
	if (mod && !obj && run_passes(mod, tm, err) == 0) {
		double t2 = emitll_now();
		char *msg = NULL;
		if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &obj)) {
			fprintf(err, "plastc: internal error: JIT: code generation failed: %s\n", msg ? msg : "");
			obj = NULL;
		}
		LLVMDisposeMessage(msg);
		if (times) {
			times->opt = t2 - t1;
			times->codegen = emitll_now() - t2;
		}
		if (obj && path[0]) {
			double t3 = emitll_now();
			cache_write(cache->dir, path, key, obj, err);
			if (times)
				times->cache = emitll_now() - t3;
		}
	}
	if (mod)
		LLVMDisposeModule(mod);
	LLVMContextDispose(ctx);
	LLVMDisposeTargetMachine(tm);
	return obj;
}

JitModel *jit_compile(const Program *p, EmitllTimes *times, FILE *err)
{
	return jit_compile_cached(p, NULL, times, err);
}

static JitModel *compile_link(const Program *p, const JitCache *cache, EmitllTimes *times, bool *hit, FILE *err);

JitModel *jit_compile_cached(const Program *p, const JitCache *cache, EmitllTimes *times, FILE *err)
{
	bool hit = false;
	JitModel *j = compile_link(p, cache, times, &hit, err);
	if (!j && hit) {
		/* the cached object passed its checks but does not link (e.g. a symbol this plastc no longer
		 * provides): compile it again, replacing the file */
		fprintf(err, "plastc: warning: the cached JIT object does not link (above); compiling it again\n");
		JitCache again = *cache;
		again.rebuild = true;
		if (times)
			memset(times, 0, sizeof *times);
		j = compile_link(p, &again, times, &hit, err);
	}
	return j;
}

static JitModel *compile_link(const Program *p, const JitCache *cache, EmitllTimes *times, bool *hit, FILE *err)
{
	JitModel *j = calloc(1, sizeof *j);
	if (!j) {
		fprintf(err, "plastc: internal error: out of memory\n");
		return NULL;
	}
	LLVMMemoryBufferRef obj = compile_object(p, cache, times, hit, err); /* ours until handed to the JIT */
	if (!obj) {
		free(j);
		return NULL;
	}
	if (times)
		times->code_bytes = emitll_text_bytes(obj);
	double t3 = emitll_now();

	/* The JIT only links: the object is already machine code for this host, so the default (host)
	 * target machine builder is enough. */
	LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, NULL);
	if (e) {
		jit_error(err, "cannot create LLJIT", e);
		j->jit = NULL;
		LLVMDisposeMemoryBuffer(obj);
		goto fail;
	}
	LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit); /* owned by the JIT */
	e = define_runtime_symbols(j->jit, jd);
	if (e) {
		jit_error(err, "cannot define the BLAS and libm symbols", e);
		LLVMDisposeMemoryBuffer(obj);
		goto fail;
	}
	LLVMOrcDefinitionGeneratorRef gen = NULL;
	e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL);
	if (e) {
		jit_error(err, "cannot create the process-symbol generator", e);
		LLVMDisposeMemoryBuffer(obj);
		goto fail;
	}
	LLVMOrcJITDylibAddGenerator(jd, gen); /* gen now owned by the dylib */
	e = LLVMOrcLLJITAddObjectFile(j->jit, jd, obj); /* obj consumed, on success and on error */
	if (e) {
		jit_error(err, "cannot add the object file", e);
		goto fail;
	}

	char prefix[128];
	emitll_symbol_prefix(p, prefix, sizeof prefix);
	LLVMOrcExecutorAddress a_fwd = 0, a_vjp = 0, a_wf = 0, a_fev = 0;
	if ((e = lookup(j->jit, prefix, "step_forward", &a_fwd)) || (e = lookup(j->jit, prefix, "step_vjp", &a_vjp)) ||
		(e = lookup(j->jit, prefix, "work_floats", &a_wf)) ||
		(p->fwd_eval && (e = lookup(j->jit, prefix, "step_forward_eval", &a_fev)))) {
		jit_error(err, "cannot compile the entry points", e);
		goto fail;
	}
	if (times)
		times->link = emitll_now() - t3;

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
	m->couples_rows = p->couples_rows;
	m->step_forward_eval = a_fev ? (void (*)(const PlStepArgs *))(uintptr_t)a_fev : NULL;
	return j;

oom:
	fprintf(err, "plastc: internal error: out of memory\n");
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
