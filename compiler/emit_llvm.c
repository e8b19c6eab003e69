/* compiler/emit_llvm.c -- Program -> LLVM module through the LLVM C API (see emit_llvm.h).
 *
 * Shape of the generated code. Each ABI entry point is a thin wrapper that reads the PlStepArgs fields
 * by GEP on the struct layout (checked against offsetof at run time of the compiler, see
 * l_check_layouts) and calls an internal, always-inlined body whose every tensor is its own `noalias`
 * pointer argument. The inliner turns those into alias scopes, which is how the C API (it has no way to
 * build scoped-noalias metadata conveniently) tells the vectoriser that parameters, inputs, outputs and
 * scratch do not overlap. Inside the body the IR nodes are emitted in order, one switch over ops:
 *
 *   leaves         PARAM and INPUT are the body's pointer arguments; CONST and INV_BATCH are *uniform*
 *                  values (one float SSA value, no memory) that fold into their users' loops
 *   elementwise    one loop nest over the result's index space with a stride per operand (0 on a
 *                  broadcast dimension); dimensions that are contiguous for every operand are merged,
 *                  so a same-shape op is one flat loop
 *   SUM_TO, BMV,   "accumulate" nests: the result is zeroed, then result[o] += f(...) over the larger
 *   BMVT           index space; when the innermost dimension reduces, the sum runs in a scalar
 *                  accumulator first (a float reduction loop)
 *   OUTER          the elementwise nest with hand-made strides
 *   MATMUL         cblas_sgemm, declared on first use
 *   SLICE/PAD/     strided copies
 *   CONCAT/RESHAPE
 *
 * Consecutive nests over one index space that do not depend on each other are merged into one nest with
 * several outputs (l_group_emit_node; the C backend's plan_groups rule), so the [B,H,H] plastic tensors
 * they share are streamed once; --no-loop-fuse / PLASTC_NO_LOOP_FUSE=1 keep one nest per value.
 *
 * Outputs are copied from their values' scratch slots to the caller's buffers at the end of the body
 * (PARAM_BAR with +=). Reduction loops carry `!llvm.loop !{llvm.loop.vectorize.enable}`: the C API cannot
 * set fast-math flags, and that hint is what allows the vectoriser to reorder a float sum. Other loops are
 * left to the vectoriser's cost model (forcing it only produces "loop not vectorized" warnings where a
 * short or aliasing loop is better left scalar).
 */
#include "emit_llvm.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/Object.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <llvm/Config/llvm-config.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memplan.h"

#define LL_MAXD (IR_MAX_RANK + 1) /* batch dim + per-trial dims */
#define LL_MAXLEAF 64             /* strided pointers in one loop nest (destinations included) */
#define LL_MAXEXPR 192
#define LL_GROUP_MAX 8            /* loop nests merged into one (l_group_*); emit_c allows 12 (EM_GROUP_MAX) */
#define LL_INLINE_LEAVES 8        /* largest fused subtree, in leaves */
#define LL_VEC_MIN_TRIP 16        /* shorter reductions get no vectorize hint */

/* CBLAS enum values (cblas.h): fixed by the CBLAS standard. */
enum { LL_CBLAS_ROW_MAJOR = 101, LL_CBLAS_NO_TRANS = 111, LL_CBLAS_TRANS = 112 };

/* The fields of PlStepArgs in declaration order; l_check_layouts compares our struct type with offsetof. */
enum {
	SA_B, SA_B_GLOBAL, SA_PARAMS, SA_X, SA_STATE_IN, SA_STATE_OUT, SA_Y, SA_O, SA_Y_BAR, SA_STATE_OUT_BAR,
	SA_STATE_IN_BAR, SA_PARAM_BAR, SA_WORK, SA_COUNT
};

/* A loop nest over an index space: destination[o] (+)= expr(...), where expr is a small tree of scalar
 * ops over leaves (strided float pointers, one stride per nest dim, 0 = broadcast) and uniform values.
 * Elementwise values used once are inlined as subtrees instead of being stored and reloaded (fusion). */
enum { LX_LEAF, LX_UNI, LX_OP };

typedef struct LlExpr {
	int kind;
	IrOp op;         /* LX_OP: IR_EXPAND means the identity */
	int a, b;        /* LX_OP: operand expressions (b = -1 for unary) */
	int leaf;        /* LX_LEAF */
	LLVMValueRef uni; /* LX_UNI */
} LlExpr;

typedef struct LlLeaf {
	LLVMValueRef base;
	int64_t st[LL_MAXD];
	bool out; /* a destination (written, never loaded ahead of the loop) */
} LlLeaf;

typedef struct LlNest {
	int nd;
	LLVMValueRef ext[LL_MAXD]; /* i64 extents */
	int64_t extc[LL_MAXD];     /* constant extent, or -1 for the run-time batch size */
	int nleaf;
	LlLeaf leaf[LL_MAXLEAF];   /* leaf 0 is the destination */
	int nexpr;
	LlExpr x[LL_MAXEXPR];
	int root;
	bool accumulate; /* dst += expr instead of dst = expr */
	/* outputs: a nest built for one node has one (leaf 0, root, accumulate); a merged group (l_group_add)
	 * has up to LL_GROUP_MAX, each with its own destination leaf, expression and accumulator */
	int nout;
	int oleaf[LL_GROUP_MAX], oroot[LL_GROUP_MAX];
	bool oacc[LL_GROUP_MAX];
} LlNest;

typedef struct LlCtx {
	LLVMContextRef ctx;
	LLVMModuleRef mod;
	LLVMBuilderRef b;
	LLVMTargetMachineRef tm;
	const Program *p;
	FILE *err;
	char prefix[128];
	bool failed;

	/* cached types */
	LLVMTypeRef t_void, t_i1, t_i8, t_i32, t_i64, t_f32, t_f64;
	LLVMTypeRef t_pf;   /* float* */
	LLVMTypeRef t_ppf;  /* float** */
	LLVMTypeRef t_pi8;  /* char* */
	LLVMTypeRef t_args; /* PlStepArgs */
	LLVMTypeRef t_pargs;
	LLVMTypeRef t_step; /* void (const PlStepArgs *) */
	LLVMTypeRef t_wf;   /* size_t (int) */
	unsigned md_loop;
	LLVMValueRef sgemm;
	bool body_calls; /* the loop body being emitted calls a scalar libm function (exp, log, tanh) */

	/* the function being emitted */
	const IrFunc *f;
	MemPlan *plan;
	LLVMValueRef fn;
	LLVMBasicBlockRef entry; /* holds the allocas; branches to the code at the end */
	LLVMBuilderRef ab;       /* positioned in entry */
	LLVMValueRef B, Bg;      /* i64 */
	LLVMValueRef work;
	LLVMValueRef *val; /* [f->n] float* of a value in memory, or NULL */
	LLVMValueRef *uni; /* [f->n] float of a uniform value, or NULL */
	bool *inl;         /* [f->n] computed inside its single consumer's loops (never stored) */
	int64_t extra_b, extra_c; /* scratch beyond the plan (materialised uniforms), floats */

	/* merged loop nests (l_group_*): while `capture` is set, l_nest_emit hands the node's nest to the
	 * pending group instead of emitting it */
	bool no_loop_fuse;       /* one nest per node (--no-loop-fuse, PLASTC_NO_LOOP_FUSE=1) */
	bool no_batch_inner;     /* keep the batch loop outermost (PLASTC_NO_BATCH_INNER=1; l_nest_batch_inner) */
	bool no_loop_chain;      /* no producer-consumer members (PLASTC_NO_LOOP_CHAIN=1, as emit_c's nest_link) */
	bool no_loop_sched;      /* emit in node order (PLASTC_NO_LOOP_SCHED=1, as emit_c's plan_groups) */
	bool *dnode;             /* [f->n] computed straight into a caller's output buffer (a direct output) */
	const bool *slotted;     /* [f->n] gets a scratch slot (the memory plan's need[]) */
	const bool *ustat;       /* [f->n] uniform before any code exists (constants and functions of them) */
	bool scheduling;         /* l_schedule is asking: uniformity from ustat, no code exists yet */
	bool no_nostore;         /* store every merged nest's outputs (PLASTC_NO_NOSTORE=1) */
	const bool *is_out;      /* [f->n] an output of the function (read by the copies at the end) */
	const bool *nostore;     /* [nout] of the nest being emitted: outputs not stored (l_group_nostore), or NULL */
	bool capture;
	LlNest *grp;             /* the pending group's merged nest (owned by l_emit_body) */
	int grp_m;               /* its members */
	int grp_mem[LL_GROUP_MAX];
	int grp_cur;             /* the node whose nest is being captured */
	IrShape grp_space;
} LlCtx;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void l_fail(LlCtx *c, const char *fmt, ...)
{
	va_list ap;
	fprintf(c->err, "plastc: internal error: model '%s': ", c->p->name ? c->p->name : "?");
	va_start(ap, fmt);
	vfprintf(c->err, fmt, ap);
	va_end(ap);
	fputc('\n', c->err);
	c->failed = true;
}

double emitll_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void emitll_symbol_prefix(const Program *p, char *buf, size_t n)
{
	/* the same rule as emitc_symbol_prefix, so both backends export the same symbols */
	const char *s = p->name ? p->name : "model";
	size_t o = 0;
	if (n == 0)
		return;
	if (s[0] >= '0' && s[0] <= '9' && o + 1 < n)
		buf[o++] = '_';
	for (size_t i = 0; s[i] && o + 1 < n; i++) {
		char ch = s[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
		buf[o++] = ok ? ch : '_';
	}
	buf[o] = '\0';
}

/* ---------------------------------------------------------------------------------------------------- */
/* small l_* helpers                                                                                    */

/* Pointer types: LLVM 14 has typed pointers only; 15 and 16 have opaque pointers (and 17 drops typed
 * ones), so the element type matters only before 15. */
static LLVMTypeRef l_ptr(LlCtx *c, LLVMTypeRef elem)
{
#if LLVM_VERSION_MAJOR >= 15
	(void)elem;
	return LLVMPointerTypeInContext(c->ctx, 0);
#else
	(void)c;
	return LLVMPointerType(elem, 0);
#endif
}

static LLVMValueRef l_i64(LlCtx *c, int64_t v) { return LLVMConstInt(c->t_i64, (unsigned long long)v, 1); }
static LLVMValueRef l_i32(LlCtx *c, int64_t v) { return LLVMConstInt(c->t_i32, (unsigned long long)v, 1); }
static LLVMValueRef l_f32(LlCtx *c, double v) { return LLVMConstReal(c->t_f32, v); }

static void l_attr(LlCtx *c, LLVMValueRef fn, LLVMAttributeIndex idx, const char *name)
{
	unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
	if (kind != 0)
		LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(c->ctx, kind, 0));
}

static LLVMValueRef l_call(LlCtx *c, LLVMValueRef fn, LLVMValueRef *args, unsigned n, const char *name)
{
	return LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, n, name);
}

/* A declared external function, added on first use. */
static LLVMValueRef l_extern(LlCtx *c, const char *name, LLVMTypeRef ty)
{
	LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
	if (!fn) {
		fn = LLVMAddFunction(c->mod, name, ty);
		l_attr(c, fn, LLVMAttributeFunctionIndex, "nounwind");
	}
	return fn;
}

/* llvm.<name>.f32 */
static LLVMValueRef l_intrinsic_f32(LlCtx *c, const char *name)
{
	unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
	LLVMTypeRef t = c->t_f32;
	return LLVMGetIntrinsicDeclaration(c->mod, id, &t, 1);
}

/* A call of a scalar math function. Without a vector math library (the C API cannot select one) a loop
 * containing exp, log or tanh stays scalar, so such loops get no vectorize hint: the hint would only make
 * LLVM warn that it could not honour it. */
static LLVMValueRef l_unary_call(LlCtx *c, LLVMValueRef fn, LLVMValueRef x)
{
	size_t len;
	const char *nm = LLVMGetValueName2(fn, &len);
	if (!(strncmp(nm, "llvm.sqrt", 9) == 0 || strncmp(nm, "llvm.fabs", 9) == 0))
		c->body_calls = true;
	return l_call(c, fn, &x, 1, "");
}

/* &base[off] for a float pointer */
static LLVMValueRef l_gep(LlCtx *c, LLVMValueRef base, LLVMValueRef off, const char *name)
{
	return LLVMBuildInBoundsGEP2(c->b, c->t_f32, base, &off, 1, name);
}

static LLVMValueRef l_load(LlCtx *c, LLVMValueRef ptr)
{
	LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_f32, ptr, "");
	LLVMSetAlignment(v, 4);
	return v;
}

static void l_store(LlCtx *c, LLVMValueRef v, LLVMValueRef ptr)
{
	LLVMValueRef s = LLVMBuildStore(c->b, v, ptr);
	LLVMSetAlignment(s, 4);
}

/* A counted loop `for (iv = 0; iv < n; iv++)`:
 *     pre -> head: iv = phi [0, pre], [iv+1, latch]; br iv < n ? body : exit
 * l_loop_begin leaves the builder in the body; l_loop_end closes it from wherever the body ended. */
typedef struct LlLoop {
	LLVMBasicBlockRef head, exit;
	LLVMValueRef iv;
} LlLoop;

static LlLoop l_loop_begin(LlCtx *c, LLVMValueRef n, const char *name)
{
	LlLoop L;
	LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
	L.head = LLVMAppendBasicBlockInContext(c->ctx, c->fn, name);
	LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "body");
	L.exit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "exit");
	LLVMBuildBr(c->b, L.head);
	LLVMPositionBuilderAtEnd(c->b, L.head);
	L.iv = LLVMBuildPhi(c->b, c->t_i64, "i");
	LLVMValueRef zero = l_i64(c, 0);
	LLVMAddIncoming(L.iv, &zero, &pre, 1);
	LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, L.iv, n, ""), body, L.exit);
	LLVMPositionBuilderAtEnd(c->b, body);
	return L;
}

/* `!llvm.loop !0` with `!0 = distinct !{!0, !{!"llvm.loop.vectorize.enable", i1 true}}`: the self
 * reference makes each loop's node unique, built from a temporary node replaced by the real one. */
static void l_loop_vectorize(LlCtx *c, LLVMValueRef backedge)
{
	LLVMMetadataRef tmp = LLVMTemporaryMDNode(c->ctx, NULL, 0);
	static const char key[] = "llvm.loop.vectorize.enable";
	LLVMMetadataRef hint[2] = {
		LLVMMDStringInContext2(c->ctx, key, sizeof key - 1),
		LLVMValueAsMetadata(LLVMConstInt(c->t_i1, 1, 0)),
	};
	LLVMMetadataRef ops[2] = {tmp, LLVMMDNodeInContext2(c->ctx, hint, 2)};
	LLVMMetadataRef loop = LLVMMDNodeInContext2(c->ctx, ops, 2);
	LLVMMetadataReplaceAllUsesWith(tmp, loop); /* also disposes of tmp */
	LLVMSetMetadata(backedge, c->md_loop, LLVMMetadataAsValue(c->ctx, loop));
}

static void l_loop_end(LlCtx *c, LlLoop *L, bool vectorize)
{
	LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
	LLVMValueRef next = LLVMBuildNUWAdd(c->b, L->iv, l_i64(c, 1), "");
	LLVMValueRef br = LLVMBuildBr(c->b, L->head);
	LLVMAddIncoming(L->iv, &next, &latch, 1);
	if (vectorize)
		l_loop_vectorize(c, br);
	LLVMMoveBasicBlockAfter(L->exit, latch);
	LLVMPositionBuilderAtEnd(c->b, L->exit);
}

/* ---------------------------------------------------------------------------------------------------- */
/* shapes, dims and broadcast maps                                                                      */

static int64_t l_numel(IrShape s)
{
	int64_t n = 1;
	for (int k = 0; k < s.rank; k++)
		n *= s.d[k];
	return n;
}

/* The dims of a value as loops see them: the batch dim first (if any), then the per-trial dims.
 * Row-major stride of dim j of shape s: */
static int64_t l_dim_stride(IrShape s, int j)
{
	int64_t st = 1;
	for (int k = (s.batch ? j - 1 : j) + 1; k < s.rank; k++)
		st *= s.d[k];
	return st;
}

/* For each dim of the index space of shape `to`, the dim of a value of shape `from` that it reads under
 * broadcasting, or -1 where the value repeats: numpy rules on the per-trial dims (right-aligned; a missing
 * or size-1 dim repeats), and the batch dim repeats for a value without one. Reversed (from = the smaller
 * shape, to = the larger), it maps a sum_to destination into its source's space. */
static void l_bcast_map(IrShape from, IrShape to, int *map)
{
	int nd = 0, shift = to.rank - from.rank, fb = from.batch ? 1 : 0;
	if (to.batch)
		map[nd++] = from.batch ? 0 : -1;
	for (int k = 0; k < to.rank; k++) {
		int kf = k - shift;
		map[nd++] = (kf < 0 || (from.d[kf] == 1 && to.d[k] != 1)) ? -1 : fb + kf;
	}
}

static void l_map_strides(IrShape s, int nd, const int *map, int64_t *st)
{
	for (int d = 0; d < nd; d++)
		st[d] = map[d] < 0 ? 0 : l_dim_stride(s, map[d]);
}

/* Row-major strides of shape s in its own index space. */
static void l_natural_strides(IrShape s, int64_t *st)
{
	int map[LL_MAXD];
	l_bcast_map(s, s, map);
	l_map_strides(s, (s.batch ? 1 : 0) + s.rank, map, st);
}

/* a + b, as llvm.fmuladd when one side is a product just built. The C API cannot set the `contract`
 * fast-math flag, so without this LLVM never forms an FMA, where gcc (-ffp-contract=fast, its default
 * for GNU C) does for the C backend: fmuladd lets the code generator fuse (one rounding instead of two,
 * within the float32 tolerance the tests allow), and the vectoriser treats it as an add in reductions.
 * The product instruction stays for any other user; instcombine deletes it when it has none. */
static LLVMValueRef l_fadd(LlCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	LLVMValueRef prod = NULL, other = NULL;
	if (LLVMIsAInstruction(b) && LLVMGetInstructionOpcode(b) == LLVMFMul)
		prod = b, other = a;
	else if (LLVMIsAInstruction(a) && LLVMGetInstructionOpcode(a) == LLVMFMul)
		prod = a, other = b;
	if (!prod)
		return LLVMBuildFAdd(c->b, a, b, "");
	unsigned id = LLVMLookupIntrinsicID("llvm.fmuladd", 12);
	LLVMTypeRef t = LLVMTypeOf(prod);
	LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, &t, 1);
	LLVMValueRef args[3] = {LLVMGetOperand(prod, 0), LLVMGetOperand(prod, 1), other};
	return LLVMBuildCall2(c->b, LLVMIntrinsicGetType(c->ctx, id, &t, 1), fn, args, 3, "");
}

/* ---------------------------------------------------------------------------------------------------- */
/* scalar semantics of the elementwise ops (float32)                                                    */

static LLVMValueRef l_scalar(LlCtx *c, IrOp op, LLVMValueRef a, LLVMValueRef b)
{
	LLVMBuilderRef B = c->b;
	LLVMValueRef zero = l_f32(c, 0.0), one = l_f32(c, 1.0);
	switch (op) {
	case IR_EXPAND: return a; /* identity */
	case IR_NEG: return LLVMBuildFNeg(B, a, "");
	case IR_EXP: return l_unary_call(c, l_intrinsic_f32(c, "llvm.exp"), a);
	case IR_LOG: return l_unary_call(c, l_intrinsic_f32(c, "llvm.log"), a);
	case IR_SQRT: return l_unary_call(c, l_intrinsic_f32(c, "llvm.sqrt"), a);
	case IR_SQUARE: return LLVMBuildFMul(B, a, a, "");
	case IR_ABS: return l_unary_call(c, l_intrinsic_f32(c, "llvm.fabs"), a);
	case IR_RELU: return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOGT, a, zero, ""), a, zero, "");
	case IR_TANH: {
		LLVMTypeRef ft = LLVMFunctionType(c->t_f32, &c->t_f32, 1, 0);
		return l_unary_call(c, l_extern(c, "tanhf", ft), a);
	}
	case IR_SIGMOID: {
		/* 1/(1+exp(-x)): exp overflows to +inf for x < -88 and the quotient is then exactly 0. */
		LLVMValueRef e = l_unary_call(c, l_intrinsic_f32(c, "llvm.exp"), LLVMBuildFNeg(B, a, ""));
		return LLVMBuildFDiv(B, one, LLVMBuildFAdd(B, one, e, ""), "");
	}
	case IR_STEP: return LLVMBuildUIToFP(B, LLVMBuildFCmp(B, LLVMRealOGT, a, zero, ""), c->t_f32, "");
	case IR_SIGN: {
		LLVMValueRef pos = LLVMBuildUIToFP(B, LLVMBuildFCmp(B, LLVMRealOGT, a, zero, ""), c->t_f32, "");
		LLVMValueRef neg = LLVMBuildUIToFP(B, LLVMBuildFCmp(B, LLVMRealOLT, a, zero, ""), c->t_f32, "");
		return LLVMBuildFSub(B, pos, neg, "");
	}
	case IR_ADD: return l_fadd(c, a, b);
	case IR_SUB: return LLVMBuildFSub(B, a, b, "");
	case IR_MUL: return LLVMBuildFMul(B, a, b, "");
	case IR_DIV: return LLVMBuildFDiv(B, a, b, "");
	/* ties pick b (the VJP sends the gradient to b on ties; the value is the same either way) */
	case IR_MAX: return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOGT, a, b, ""), a, b, "");
	case IR_MIN: return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOLT, a, b, ""), a, b, "");
	case IR_PARAM: case IR_INPUT: case IR_CONST: case IR_INV_BATCH: case IR_SUM_TO: case IR_RESHAPE:
	case IR_SLICE: case IR_PAD: case IR_CONCAT: case IR_MATMUL: case IR_BMV: case IR_BMVT: case IR_OUTER:
	case IR_CONV2D: case IR_CONV2D_T: case IR_CONV2D_W: case IR_MAXPOOL: case IR_POOL_ARGMAX:
	case IR_POOL_GATHER: case IR_POOL_SCATTER: case IR_OP_COUNT:
		break;
	}
	l_fail(c, "op '%s' has no scalar form", ir_op_info[op].name);
	return a;
}

/* Ops worth computing once and storing when a consumer would read (and so recompute) them repeatedly. */
static bool l_expensive(IrOp op)
{
	return op == IR_EXP || op == IR_LOG || op == IR_SQRT || op == IR_TANH || op == IR_SIGMOID || op == IR_DIV;
}

/* ---------------------------------------------------------------------------------------------------- */
/* loop nests                                                                                           */

/* Index space of shape s: the batch dim (run-time B) if s.batch, then the per-trial dims. */
static void l_nest_space(LlCtx *c, LlNest *n, IrShape s)
{
	n->nd = 0;
	n->nleaf = 1;
	n->nexpr = 0;
	n->root = -1;
	n->accumulate = false;
	n->nout = 0;
	memset(&n->leaf[0], 0, sizeof n->leaf[0]);
	if (s.batch) {
		n->ext[n->nd] = c->B;
		n->extc[n->nd++] = -1;
	}
	for (int k = 0; k < s.rank; k++) {
		n->ext[n->nd] = l_i64(c, s.d[k]);
		n->extc[n->nd++] = s.d[k];
	}
}

static void l_nest_dst(LlNest *n, LLVMValueRef base, const int64_t *st)
{
	n->leaf[0].base = base;
	memcpy(n->leaf[0].st, st, sizeof n->leaf[0].st);
	n->leaf[0].out = true;
}

static int l_x_push(LlCtx *c, LlNest *n, LlExpr e)
{
	if (n->nexpr == LL_MAXEXPR) {
		l_fail(c, "loop nest expression too large in %s", c->f->name);
		return 0;
	}
	n->x[n->nexpr] = e;
	return n->nexpr++;
}

static int l_x_uni(LlCtx *c, LlNest *n, LLVMValueRef v)
{
	LlExpr e = {LX_UNI, IR_EXPAND, -1, -1, -1, v};
	return l_x_push(c, n, e);
}

static int l_x_op(LlCtx *c, LlNest *n, IrOp op, int a, int b)
{
	LlExpr e = {LX_OP, op, a, b, -1, NULL};
	return l_x_push(c, n, e);
}

static int l_x_mem(LlCtx *c, LlNest *n, LLVMValueRef base, const int64_t *st)
{
	if (n->nleaf == LL_MAXLEAF) {
		l_fail(c, "loop nest has too many operands in %s", c->f->name);
		return 0;
	}
	n->leaf[n->nleaf].base = base;
	memcpy(n->leaf[n->nleaf].st, st, sizeof n->leaf[0].st);
	n->leaf[n->nleaf].out = false;
	LlExpr e = {LX_LEAF, IR_EXPAND, -1, -1, n->nleaf++, NULL};
	return l_x_push(c, n, e);
}

/* The value of node id read in the nest's index space through `map` (nest dim -> dim of the node, -1 =
 * repeat): a uniform value, a strided leaf, or -- for a fused node -- the subtree of its operands, whose
 * maps compose the node's broadcast of each operand with `map`. */
static int l_x_node(LlCtx *c, LlNest *n, int id, const int *map)
{
	if (c->uni[id])
		return l_x_uni(c, n, c->uni[id]);
	const IrNode *nd = &c->f->nodes[id];
	if (c->inl[id]) {
		int kids[IR_MAX_IN] = {-1, -1};
		for (int k = 0; k < ir_op_info[nd->op].nin; k++) {
			int sub[LL_MAXD], m2[LL_MAXD];
			IrShape so = c->f->nodes[nd->in[k]].shape;
			if (nd->op == IR_OUTER) {
				/* P[b,i,j] = a[b,i] c[b,j]: a repeats along j, c along i */
				int b0 = nd->shape.batch ? 1 : 0, ob = so.batch ? 1 : 0;
				if (b0)
					sub[0] = so.batch ? 0 : -1;
				sub[b0] = k == 0 ? ob : -1;
				sub[b0 + 1] = k == 0 ? -1 : ob;
			} else {
				l_bcast_map(so, nd->shape, sub);
			}
			for (int d = 0; d < n->nd; d++)
				m2[d] = map[d] < 0 ? -1 : sub[map[d]];
			kids[k] = l_x_node(c, n, nd->in[k], m2);
		}
		return l_x_op(c, n, nd->op == IR_OUTER ? IR_MUL : nd->op, kids[0], kids[1]);
	}
	int64_t st[LL_MAXD];
	l_map_strides(nd->shape, n->nd, map, st);
	return l_x_mem(c, n, c->val[id], st);
}

/* node id broadcast into the index space of shape `space` (the nest's) */
static int l_x_bcast(LlCtx *c, LlNest *n, int id, IrShape space)
{
	int map[LL_MAXD];
	l_bcast_map(c->f->nodes[id].shape, space, map);
	return l_x_node(c, n, id, map);
}

/* Drops unit dims and merges dims that are contiguous for every leaf (the extent of the inner dim is a
 * compile-time constant because only dim 0 can be the batch dim). */
static void l_nest_coalesce(LlCtx *c, LlNest *n)
{
	int nd = 0;
	for (int d = 0; d < n->nd; d++) {
		if (n->extc[d] == 1)
			continue;
		n->ext[nd] = n->ext[d];
		n->extc[nd] = n->extc[d];
		for (int o = 0; o < n->nleaf; o++)
			n->leaf[o].st[nd] = n->leaf[o].st[d];
		nd++;
	}
	n->nd = nd;
	for (int d = n->nd - 2; d >= 0; d--) {
		bool ok = true;
		for (int o = 0; o < n->nleaf && ok; o++)
			ok = n->leaf[o].st[d] == n->leaf[o].st[d + 1] * n->extc[d + 1];
		if (!ok)
			continue;
		if (n->extc[d] >= 0) {
			n->extc[d] *= n->extc[d + 1];
			n->ext[d] = l_i64(c, n->extc[d]);
		} else {
			n->ext[d] = LLVMBuildNSWMul(c->b, n->ext[d], l_i64(c, n->extc[d + 1]), "n");
		}
		for (int o = 0; o < n->nleaf; o++)
			n->leaf[o].st[d] = n->leaf[o].st[d + 1];
		for (int e = d + 1; e + 1 < n->nd; e++) {
			n->ext[e] = n->ext[e + 1];
			n->extc[e] = n->extc[e + 1];
			for (int o = 0; o < n->nleaf; o++)
				n->leaf[o].st[e] = n->leaf[o].st[e + 1];
		}
		n->nd--;
	}
}

static LLVMValueRef l_entry_alloca(LlCtx *c, const char *name)
{
	return LLVMBuildAlloca(c->ab, c->t_f32, name);
}

/* Evaluates expression e at the leaf offsets off; pre[l] is leaf l's value when it was loaded before
 * the innermost loop (its stride there is 0). */
static LLVMValueRef l_x_eval(LlCtx *c, const LlNest *n, int e, LLVMValueRef *off, LLVMValueRef *pre,
	LLVMValueRef *memo)
{
	const LlExpr *x = &n->x[e];
	if (x->kind == LX_UNI)
		return x->uni;
	if (memo && memo[e])
		return memo[e]; /* an expression several outputs share: a producer's value its consumer reads */
	LLVMValueRef v;
	if (x->kind == LX_LEAF)
		v = pre[x->leaf] ? pre[x->leaf] : l_load(c, l_gep(c, n->leaf[x->leaf].base, off[x->leaf], ""));
	else {
		LLVMValueRef a = l_x_eval(c, n, x->a, off, pre, memo);
		LLVMValueRef b = x->b >= 0 ? l_x_eval(c, n, x->b, off, pre, memo) : NULL;
		v = l_scalar(c, x->op, a, b);
	}
	if (memo)
		memo[e] = v;
	return v;
}

static LLVMValueRef l_off_step(LlCtx *c, LLVMValueRef off, LLVMValueRef iv, int64_t st)
{
	if (st == 0)
		return off;
	LLVMValueRef t = st == 1 ? iv : LLVMBuildNSWMul(c->b, iv, l_i64(c, st), "");
	return LLVMBuildNSWAdd(c->b, off, t, "");
}

/* output o of the nest: dst (+)= v at the offsets off */
static void l_nest_store(LlCtx *c, const LlNest *n, int o, LLVMValueRef v, LLVMValueRef *off)
{
	int l = n->oleaf[o];
	LLVMValueRef dst = l_gep(c, n->leaf[l].base, off[l], "");
	if (n->oacc[o])
		v = l_fadd(c, l_load(c, dst), v);
	l_store(c, v, dst);
}

static void l_nest_rec(LlCtx *c, const LlNest *n, int d, LLVMValueRef *off, LLVMValueRef *pre)
{
	if (d == n->nd) {
		LLVMValueRef memo[LL_MAXEXPR] = {NULL};
		for (int o = 0; o < n->nout; o++)
			if (!(c->nostore && c->nostore[o]))
				l_nest_store(c, n, o, l_x_eval(c, n, n->oroot[o], off, pre, memo), off);
		return;
	}
	bool inner = d == n->nd - 1;
	LLVMValueRef pre2[LL_MAXLEAF], o2[LL_MAXLEAF];
	memcpy(pre2, pre, sizeof pre2);
	if (!inner) {
		LlLoop L = l_loop_begin(c, n->ext[d], "outer");
		for (int l = 0; l < n->nleaf; l++)
			o2[l] = l_off_step(c, off[l], L.iv, n->leaf[l].st[d]);
		l_nest_rec(c, n, d + 1, o2, pre2);
		l_loop_end(c, &L, false);
		return;
	}
	/* Leaves that do not move in the innermost loop are loaded once before it. Besides saving loads, this
	 * matters for the vectoriser: a load from a fixed address next to stores it cannot prove disjoint (all
	 * scratch slots share one base) counts as an unsafe dependence. */
	for (int l = 0; l < n->nleaf; l++)
		if (!n->leaf[l].out && !pre2[l] && n->leaf[l].st[d] == 0)
			pre2[l] = l_load(c, l_gep(c, n->leaf[l].base, off[l], ""));
	/* An output that reduces over the innermost dim sums into its own accumulator, added to the
	 * destination once after the loop. The accumulator is an alloca that SROA turns into a phi; the
	 * loop's vectorize hint allows the float sum to be reassociated. In a merged nest every output keeps
	 * its own accumulator, so what each sums is unchanged. */
	LLVMValueRef acc[LL_GROUP_MAX] = {NULL};
	bool red = false;
	for (int o = 0; o < n->nout; o++)
		if (n->oacc[o] && n->leaf[n->oleaf[o]].st[d] == 0) {
			acc[o] = l_entry_alloca(c, "acc");
			l_store(c, l_f32(c, 0.0), acc[o]);
			red = true;
		}
	LlLoop L = l_loop_begin(c, n->ext[d], red ? "red" : "loop");
	for (int l = 0; l < n->nleaf; l++)
		o2[l] = l_off_step(c, off[l], L.iv, n->leaf[l].st[d]);
	c->body_calls = false;
	LLVMValueRef memo[LL_MAXEXPR] = {NULL};
	for (int o = 0; o < n->nout; o++) {
		if (c->nostore && c->nostore[o])
			continue; /* its value reaches its readers in this nest through their expressions */
		LLVMValueRef v = l_x_eval(c, n, n->oroot[o], o2, pre2, memo);
		if (acc[o])
			l_store(c, l_fadd(c, l_load(c, acc[o]), v), acc[o]);
		else
			l_nest_store(c, n, o, v, o2);
	}
	l_loop_end(c, &L, red && !c->body_calls && (n->extc[d] < 0 || n->extc[d] >= LL_VEC_MIN_TRIP));
	for (int o = 0; o < n->nout; o++)
		if (acc[o]) {
			int l = n->oleaf[o];
			LLVMValueRef dst = l_gep(c, n->leaf[l].base, off[l], "");
			l_store(c, LLVMBuildFAdd(c->b, l_load(c, dst), l_load(c, acc[o]), ""), dst);
		}
}

/* A nest built for one node states its output in the single-output fields; give it the general form. */
static void l_nest_outputs(LlNest *n)
{
	if (n->nout > 0)
		return;
	n->nout = 1;
	n->oleaf[0] = 0;
	n->oroot[0] = n->root;
	n->oacc[0] = n->accumulate;
}

/* As nest_batch_inner in emit_c.c: when a leaf is the same for every trial but not for every row (alpha
 * and its gradient in a plastic layer's nests), the batch loop moves from outermost to just outside the
 * innermost loop, so that leaf's row is fetched once per block of trials instead of the whole matrix once
 * per trial. Points are independent and each output element gets its terms in the same order of every
 * index, so results do not change. */
static void l_nest_batch_inner(LlCtx *c, LlNest *n)
{
	if (c->no_batch_inner || n->nd < 3 || n->extc[0] >= 0)
		return;
	bool shared = false;
	for (int l = 0; l < n->nleaf && !shared; l++)
		if (n->leaf[l].st[0] == 0)
			for (int d = 1; d + 1 < n->nd; d++)
				if (n->leaf[l].st[d] != 0)
					shared = true;
	if (!shared)
		return;
	int to = n->nd - 2;
	LLVMValueRef ext = n->ext[0];
	for (int d = 0; d < to; d++) {
		n->ext[d] = n->ext[d + 1];
		n->extc[d] = n->extc[d + 1];
	}
	n->ext[to] = ext;
	n->extc[to] = -1;
	for (int l = 0; l < n->nleaf; l++) {
		int64_t s0 = n->leaf[l].st[0];
		for (int d = 0; d < to; d++)
			n->leaf[l].st[d] = n->leaf[l].st[d + 1];
		n->leaf[l].st[to] = s0;
	}
}

static void l_nest_emit_now(LlCtx *c, LlNest *n)
{
	if (c->failed)
		return;
	l_nest_outputs(n);
	l_nest_coalesce(c, n);
	l_nest_batch_inner(c, n);
	LLVMValueRef off[LL_MAXLEAF], pre[LL_MAXLEAF];
	for (int o = 0; o < LL_MAXLEAF; o++) {
		off[o] = l_i64(c, 0);
		pre[o] = NULL;
	}
	l_nest_rec(c, n, 0, off, pre);
}

static bool l_reads(LlCtx *c, int a, int b);
static bool l_assigns(LlCtx *c, int id);

/* Outputs of the pending group that need no store (as emit_c's plan_nostore): a member's value assigned
 * point by point into its own scratch slot (not an output of the function, not a caller's buffer) whose
 * readers are all members of this nest, which then took it at the same point through its expression
 * (l_group_links: any other read would have ended the group before the reader joined). Writing it would
 * cost a pass over its array that nothing reads. */
static void l_group_nostore(LlCtx *c, bool *ns)
{
	const LlNest *g = c->grp;
	for (int r = 0; r < LL_GROUP_MAX; r++)
		ns[r] = false;
	if (c->no_nostore || g->nout != c->grp_m || c->grp_m < 2)
		return;
	for (int r = 0; r < c->grp_m; r++) {
		int y = c->grp_mem[r];
		if (g->oacc[r] || c->is_out[y] || c->dnode[y] || !c->slotted[y] || !l_assigns(c, y))
			continue;
		bool ok = true, read = false;
		for (int z = 0; z < c->f->n && ok; z++) {
			if (!c->slotted[z] && !c->dnode[z])
				continue; /* no code of its own (fused, uniform, an argument): its readers are checked */
			if (!l_reads(c, z, y))
				continue;
			bool member = false;
			for (int k = r + 1; k < c->grp_m && !member; k++)
				member = c->grp_mem[k] == z;
			ok = member;
			read = true;
		}
		ns[r] = ok && read;
	}
}

/* Emits the pending merged nest, if any. */
static void l_group_flush(LlCtx *c)
{
	if (c->grp_m > 0) {
		bool ns[LL_GROUP_MAX];
		l_group_nostore(c, ns);
		c->nostore = ns;
		l_nest_emit_now(c, c->grp);
		c->nostore = NULL;
	}
	c->grp_m = 0;
}

/* Producer to consumer (as emit_c's nest_link): link[l] of each leaf l of nest m is the output of the
 * pending group g whose value m reads there, or -1. m may read a member's output only where that member
 * assigns it at every point (not a sum) and m reads it at the same point (equal strides over the same
 * space); then the loop body hands the value over as an expression (l_x_eval's memo evaluates it once
 * per point) instead of a load. Returns false if m reads a member's output in any other way: the group
 * must be emitted first (then m reads the stored array). */
static bool l_group_links(const LlNest *g, const LlNest *m, int *link)
{
	for (int l = 0; l < m->nleaf; l++) {
		link[l] = -1;
		if (m->leaf[l].out)
			continue;
		for (int o = 0; o < g->nout; o++) {
			const LlLeaf *ol = &g->leaf[g->oleaf[o]];
			if (ol->base != m->leaf[l].base)
				continue;
			if (g->oacc[o] || memcmp(ol->st, m->leaf[l].st, sizeof(int64_t) * (size_t)m->nd) != 0)
				return false;
			link[l] = o;
		}
	}
	return true;
}

/* Adds nest m (of node c->grp_cur) to the pending group: its leaves join the group's (a leaf read by an
 * earlier member with the same pointer and strides is shared), its expressions are renumbered, and its
 * output becomes one more output of the merged nest. The planner (l_group_joins) has checked that the
 * index spaces match and that no member depends on another; if the merged nest would exceed the nest's
 * capacity, the group is emitted first and m starts a new one (the planner's checks hold for any subset). */
static void l_group_add(LlCtx *c, LlNest *m)
{
	LlNest *g = c->grp;
	l_nest_outputs(m);
	int link[LL_MAXLEAF];
	if (c->grp_m > 0) {
		bool same = g->nd == m->nd;
		for (int d = 0; d < g->nd && same; d++)
			same = g->extc[d] == m->extc[d];
		if (!same) {
			l_fail(c, "merged loop nests over different spaces in %s", c->f->name);
			return;
		}
		if (g->nleaf + m->nleaf > LL_MAXLEAF || g->nexpr + m->nexpr > LL_MAXEXPR ||
			g->nout + m->nout > LL_GROUP_MAX || !l_group_links(g, m, link))
			l_group_flush(c);
	}
	if (c->grp_m == 0) {
		*g = *m;
		c->grp_mem[c->grp_m++] = c->grp_cur;
		return;
	}
	int lmap[LL_MAXLEAF], xmap[LL_MAXEXPR];
	for (int l = 0; l < m->nleaf; l++) {
		lmap[l] = -1;
		if (link[l] >= 0)
			continue; /* read from the producer's expression, not from memory */
		for (int q = 0; q < g->nleaf && lmap[l] < 0 && !m->leaf[l].out; q++)
			if (!g->leaf[q].out && g->leaf[q].base == m->leaf[l].base &&
				memcmp(g->leaf[q].st, m->leaf[l].st, sizeof(int64_t) * (size_t)m->nd) == 0)
				lmap[l] = q;
		if (lmap[l] < 0) {
			g->leaf[g->nleaf] = m->leaf[l];
			lmap[l] = g->nleaf++;
		}
	}
	for (int e = 0; e < m->nexpr; e++) {
		LlExpr x = m->x[e];
		if (x.kind == LX_LEAF && link[x.leaf] >= 0) {
			xmap[e] = g->oroot[link[x.leaf]];
			continue;
		}
		if (x.kind == LX_LEAF)
			x.leaf = lmap[x.leaf];
		if (x.kind == LX_OP) {
			x.a = xmap[x.a];
			x.b = x.b >= 0 ? xmap[x.b] : -1;
		}
		xmap[e] = l_x_push(c, g, x);
	}
	for (int o = 0; o < m->nout; o++) {
		g->oleaf[g->nout] = lmap[m->oleaf[o]];
		g->oroot[g->nout] = xmap[m->oroot[o]];
		g->oacc[g->nout++] = m->oacc[o];
	}
	c->grp_mem[c->grp_m++] = c->grp_cur;
}

static void l_nest_emit(LlCtx *c, LlNest *n)
{
	if (c->failed)
		return;
	if (c->capture)
		l_group_add(c, n);
	else
		l_nest_emit_now(c, n);
}

/* dst[0 .. numel(s)) (B * numel if batched) = v */
static void l_fill(LlCtx *c, LLVMValueRef dst, IrShape s, LLVMValueRef v)
{
	LlNest n;
	int64_t st[LL_MAXD];
	l_nest_space(c, &n, s);
	l_natural_strides(s, st);
	l_nest_dst(&n, dst, st);
	n.root = l_x_uni(c, &n, v);
	l_nest_emit_now(c, &n); /* never part of a merged nest: it runs before the nest that accumulates */
}

/* ---------------------------------------------------------------------------------------------------- */
/* values                                                                                               */

static bool l_is_uniform(LlCtx *c, int id) { return c->uni[id] != NULL || (c->scheduling && c->ustat[id]); }

/* Scratch beyond the memory plan, for uniform values that must live in memory (BLAS operands). */
static LLVMValueRef l_extra_slot(LlCtx *c, IrShape s)
{
	int64_t nb = s.batch ? (l_numel(s) + 15) / 16 * 16 : 0;
	int64_t nc = s.batch ? 0 : (l_numel(s) + 15) / 16 * 16;
	int64_t ob = c->plan->total_b + c->extra_b, oc = c->plan->total_c + c->extra_c;
	c->extra_b += nb;
	c->extra_c += nc;
	LLVMValueRef off = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, c->B, l_i64(c, ob), ""), l_i64(c, oc), "");
	return l_gep(c, c->work, off, "extra");
}

/* A pointer to node id's value, writing a uniform value out once (into its planned slot if it has one)
 * when a consumer (BLAS) needs memory. */
static LLVMValueRef l_in_memory(LlCtx *c, int id)
{
	if (!c->uni[id])
		return c->val[id];
	LLVMValueRef slot = c->val[id] ? c->val[id] : l_extra_slot(c, c->f->nodes[id].shape);
	l_fill(c, slot, c->f->nodes[id].shape, c->uni[id]);
	c->val[id] = slot;
	c->uni[id] = NULL;
	return slot;
}

/* The run-time row count of a value viewed as a matrix whose rows are all dims but the last. */
static LLVMValueRef l_rows(LlCtx *c, IrShape s)
{
	int64_t r = 1;
	for (int k = 0; k + 1 < s.rank; k++)
		r *= s.d[k];
	return s.batch ? LLVMBuildNSWMul(c->b, c->B, l_i64(c, r), "") : l_i64(c, r);
}

static int64_t l_cols(IrShape s) { return s.rank >= 1 ? s.d[s.rank - 1] : 1; }

static LLVMValueRef l_to_i32(LlCtx *c, LLVMValueRef v) { return LLVMBuildTrunc(c->b, v, c->t_i32, ""); }

/* C = op(A) @ op(B) by cblas_sgemm (row major). A value is the matrix of its rows (all dims but the last,
 * batch included: a batched vector [B,K] is B x K) by its last dim. */
static void l_emit_matmul(LlCtx *c, int id)
{
	const IrNode *nd = &c->f->nodes[id];
	IrShape sa = c->f->nodes[nd->in[0]].shape, sb = c->f->nodes[nd->in[1]].shape;
	bool ta = nd->a[0] != 0, tb = nd->a[1] != 0;
	LLVMValueRef A = l_in_memory(c, nd->in[0]), Bm = l_in_memory(c, nd->in[1]);
	LLVMValueRef ra = l_rows(c, sa), rb = l_rows(c, sb);
	LLVMValueRef ca = l_i64(c, l_cols(sa)), cb = l_i64(c, l_cols(sb));
	LLVMValueRef M = ta ? ca : ra, K = ta ? ra : ca, N = tb ? rb : cb;
	if (!c->sgemm) {
		LLVMTypeRef i = c->t_i32, f = c->t_f32, p = c->t_pf;
		LLVMTypeRef args[14] = {i, i, i, i, i, i, f, p, i, p, i, f, p, i};
		c->sgemm = l_extern(c, "cblas_sgemm", LLVMFunctionType(c->t_void, args, 14, 0));
	}
	LLVMValueRef args[14] = {
		l_i32(c, LL_CBLAS_ROW_MAJOR), l_i32(c, ta ? LL_CBLAS_TRANS : LL_CBLAS_NO_TRANS),
		l_i32(c, tb ? LL_CBLAS_TRANS : LL_CBLAS_NO_TRANS), l_to_i32(c, M), l_to_i32(c, N), l_to_i32(c, K),
		l_f32(c, 1.0), A, l_i32(c, l_cols(sa)), Bm, l_i32(c, l_cols(sb)), l_f32(c, 0.0), c->val[id],
		l_to_i32(c, N),
	};
	l_call(c, c->sgemm, args, 14, "");
}

/* Convolution and pooling: a call of the runtime's float kernel (plastrt.h pl_k_*, runtime/pl_img.h),
 * declared on first use; every argument but the pointers is an i64. The image side (the operand, or the
 * result of conv2d_t and pool_scatter) gives C, H, W; n is B for a batched result, else 1. */
static void l_emit_image(LlCtx *c, int id)
{
	const IrNode *nd = &c->f->nodes[id];
	IrShape s0 = c->f->nodes[nd->in[0]].shape, s1 = nd->in[1] >= 0 ? c->f->nodes[nd->in[1]].shape : s0;
	IrShape img = nd->op == IR_CONV2D_T || nd->op == IR_POOL_SCATTER ? nd->shape : s0;
	LLVMValueRef n = nd->shape.batch ? c->B : l_i64(c, 1);
	LLVMValueRef a[13];
	unsigned na = 0, nint;
	const char *fn;
	a[na++] = n;
	switch (nd->op) {
	case IR_CONV2D: case IR_CONV2D_T: case IR_CONV2D_W:
		fn = nd->op == IR_CONV2D ? "pl_k_conv2d" : nd->op == IR_CONV2D_T ? "pl_k_conv2d_t" : "pl_k_conv2d_w";
		a[na++] = l_i64(c, s0.batch);
		a[na++] = l_i64(c, s1.batch);
		for (int k = 0; k < 3; k++)
			a[na++] = l_i64(c, img.d[k]);
		a[na++] = l_i64(c, nd->op == IR_CONV2D_W ? nd->shape.d[0] : s1.d[0]); /* Co */
		for (int k = 0; k < 3; k++)
			a[na++] = l_i64(c, nd->a[k]);
		break;
	case IR_MAXPOOL: case IR_POOL_ARGMAX:
		fn = "pl_k_maxpool";
		a[na++] = l_i64(c, nd->op == IR_POOL_ARGMAX);
		for (int k = 0; k < 3; k++)
			a[na++] = l_i64(c, img.d[k]);
		a[na++] = l_i64(c, nd->a[0]);
		a[na++] = l_i64(c, nd->a[1]);
		break;
	default:
		fn = "pl_k_pool_move";
		a[na++] = l_i64(c, nd->op == IR_POOL_SCATTER);
		a[na++] = l_i64(c, s0.batch);
		a[na++] = l_i64(c, s1.batch);
		for (int k = 0; k < 3; k++)
			a[na++] = l_i64(c, img.d[k]);
		a[na++] = l_i64(c, nd->a[0]);
		a[na++] = l_i64(c, nd->a[1]);
		break;
	}
	nint = na;
	a[na++] = l_in_memory(c, nd->in[0]);
	if (nd->in[1] >= 0)
		a[na++] = l_in_memory(c, nd->in[1]);
	a[na++] = c->val[id];
	LLVMTypeRef ty[13];
	for (unsigned k = 0; k < na; k++)
		ty[k] = k < nint ? c->t_i64 : c->t_pf;
	l_call(c, l_extern(c, fn, LLVMFunctionType(c->t_void, ty, na, 0)), a, na, "");
}

/* BMV  y[b,j] = sum_i x[b,i] W[b,i,j]: space (B, I, J); y has stride 0 on i, so it accumulates an axpy
 *      along the contiguous j (vectorises without a reduction).
 * BMVT y[b,i] = sum_j W[b,i,j] g[b,j]: same space; y has stride 0 on j: a dot-product reduction.
 * The operands are read through maps (nest dim -> operand dim), so fused elementwise producers of W
 * (alpha * Hebb + W) are computed inside these loops. */
static void l_emit_bmv(LlCtx *c, int id, bool transposed)
{
	const IrNode *nd = &c->f->nodes[id];
	int vi = transposed ? nd->in[1] : nd->in[0], wi = transposed ? nd->in[0] : nd->in[1];
	IrShape sw = c->f->nodes[wi].shape, sv = c->f->nodes[vi].shape;
	int wb = sw.batch ? 1 : 0, vb = sv.batch ? 1 : 0;
	int64_t I = sw.d[0], J = sw.d[1];
	l_fill(c, c->val[id], nd->shape, l_f32(c, 0.0));
	LlNest n;
	l_nest_space(c, &n, ir_shape2(nd->shape.batch, I, J));
	n.accumulate = true;
	int b0 = nd->shape.batch ? 1 : 0;
	int wmap[LL_MAXD], vmap[LL_MAXD];
	int64_t st[LL_MAXD];
	if (b0) {
		wmap[0] = sw.batch ? 0 : -1;
		vmap[0] = sv.batch ? 0 : -1;
		st[0] = transposed ? I : J;
	}
	wmap[b0] = wb;
	wmap[b0 + 1] = wb + 1;
	vmap[b0] = transposed ? -1 : vb;
	vmap[b0 + 1] = transposed ? vb : -1;
	st[b0] = transposed ? 1 : 0;
	st[b0 + 1] = transposed ? 0 : 1;
	l_nest_dst(&n, c->val[id], st);
	int w = l_x_node(c, &n, wi, wmap), v = l_x_node(c, &n, vi, vmap);
	n.root = l_x_op(c, &n, IR_MUL, transposed ? w : v, transposed ? v : w);
	l_nest_emit(c, &n);
}

/* P[b,i,j] = a[b,i] c[b,j] */
static void l_emit_outer(LlCtx *c, int id)
{
	const IrNode *nd = &c->f->nodes[id];
	IrShape sa = c->f->nodes[nd->in[0]].shape, sc = c->f->nodes[nd->in[1]].shape;
	LlNest n;
	int64_t st[LL_MAXD];
	l_nest_space(c, &n, nd->shape);
	l_natural_strides(nd->shape, st);
	l_nest_dst(&n, c->val[id], st);
	int b0 = nd->shape.batch ? 1 : 0, ab = sa.batch ? 1 : 0, cb = sc.batch ? 1 : 0;
	int amap[LL_MAXD], cmap[LL_MAXD];
	if (b0) {
		amap[0] = sa.batch ? 0 : -1;
		cmap[0] = sc.batch ? 0 : -1;
	}
	amap[b0] = ab;
	amap[b0 + 1] = -1;
	cmap[b0] = -1;
	cmap[b0 + 1] = cb;
	int xa = l_x_node(c, &n, nd->in[0], amap), xc = l_x_node(c, &n, nd->in[1], cmap);
	n.root = l_x_op(c, &n, IR_MUL, xa, xc);
	l_nest_emit(c, &n);
}

/* y = sum of x over the dims that x has and y broadcasts (batch included) */
static void l_emit_sum_to(LlCtx *c, int id)
{
	const IrNode *nd = &c->f->nodes[id];
	IrShape sx = c->f->nodes[nd->in[0]].shape;
	if (l_is_uniform(c, nd->in[0])) {
		/* sum of a uniform value: value times the number of summed copies */
		int64_t k = l_numel(sx) / (l_numel(nd->shape) ? l_numel(nd->shape) : 1);
		LLVMValueRef v = LLVMBuildFMul(c->b, c->uni[nd->in[0]], l_f32(c, (double)k), "");
		if (sx.batch && !nd->shape.batch)
			v = LLVMBuildFMul(c->b, v, LLVMBuildSIToFP(c->b, c->B, c->t_f32, ""), "");
		l_fill(c, c->val[id], nd->shape, v);
		return;
	}
	l_fill(c, c->val[id], nd->shape, l_f32(c, 0.0));
	LlNest n;
	int map[LL_MAXD];
	int64_t st[LL_MAXD];
	l_nest_space(c, &n, sx);
	n.accumulate = true;
	l_bcast_map(nd->shape, sx, map);
	l_map_strides(nd->shape, n.nd, map, st);
	l_nest_dst(&n, c->val[id], st);
	n.root = l_x_bcast(c, &n, nd->in[0], sx);
	l_nest_emit(c, &n);
}

/* Copies node src into dst (shape sdst) over src's index space, the destination's last axis offset by
 * `at` (pad, concat). */
static void l_copy_into(LlCtx *c, LLVMValueRef dst, IrShape sdst, int src, int64_t at)
{
	IrShape ss = c->f->nodes[src].shape;
	IrShape space = sdst;
	space.d[space.rank - 1] = ss.d[ss.rank - 1];
	LlNest n;
	int64_t st[LL_MAXD];
	l_nest_space(c, &n, space);
	l_natural_strides(sdst, st);
	l_nest_dst(&n, at ? l_gep(c, dst, l_i64(c, at), "") : dst, st);
	n.root = l_x_bcast(c, &n, src, space);
	l_nest_emit(c, &n);
}

static void l_emit_slice(LlCtx *c, int id)
{
	const IrNode *nd = &c->f->nodes[id];
	int src = nd->in[0];
	LlNest n;
	int64_t st[LL_MAXD];
	l_nest_space(c, &n, nd->shape);
	l_natural_strides(nd->shape, st);
	l_nest_dst(&n, c->val[id], st);
	if (l_is_uniform(c, src)) {
		n.root = l_x_uni(c, &n, c->uni[src]);
	} else {
		/* the source's own strides (it differs from the result only in its last extent), from a0 on */
		l_natural_strides(c->f->nodes[src].shape, st);
		n.root = l_x_mem(c, &n, nd->a[0] ? l_gep(c, c->val[src], l_i64(c, nd->a[0]), "") : c->val[src], st);
	}
	l_nest_emit(c, &n);
}

static void l_emit_pad(LlCtx *c, int id)
{
	const IrNode *nd = &c->f->nodes[id];
	l_fill(c, c->val[id], nd->shape, l_f32(c, 0.0));
	l_copy_into(c, c->val[id], nd->shape, nd->in[0], nd->a[0]);
}

static void l_emit_concat(LlCtx *c, int id)
{
	const IrNode *nd = &c->f->nodes[id];
	IrShape sa = c->f->nodes[nd->in[0]].shape;
	l_copy_into(c, c->val[id], nd->shape, nd->in[0], 0);
	l_copy_into(c, c->val[id], nd->shape, nd->in[1], sa.d[sa.rank - 1]);
}

/* Elementwise op, EXPAND (the broadcasting identity) and RESHAPE (the flat identity). */
static void l_emit_ew(LlCtx *c, int id)
{
	const IrNode *nd = &c->f->nodes[id];
	int nin = ir_op_info[nd->op].nin;
	IrOp fn = nd->op == IR_RESHAPE ? IR_EXPAND : nd->op;
	bool all_uniform = true;
	for (int k = 0; k < nin; k++)
		all_uniform = all_uniform && l_is_uniform(c, nd->in[k]);
	if (all_uniform) {
		c->uni[id] = l_scalar(c, fn, c->uni[nd->in[0]], nin > 1 ? c->uni[nd->in[1]] : NULL);
		return;
	}
	LlNest n;
	int64_t st[LL_MAXD];
	l_nest_space(c, &n, nd->shape);
	l_natural_strides(nd->shape, st);
	l_nest_dst(&n, c->val[id], st);
	if (nd->op == IR_RESHAPE) {
		/* same elements in the same order: the source read flat with the result's strides */
		n.root = l_x_mem(c, &n, c->val[nd->in[0]], st);
	} else {
		int a = l_x_bcast(c, &n, nd->in[0], nd->shape);
		int b = nin > 1 ? l_x_bcast(c, &n, nd->in[1], nd->shape) : -1;
		n.root = fn == IR_EXPAND ? a : l_x_op(c, &n, fn, a, b);
	}
	l_nest_emit(c, &n);
}

static bool l_is_leafish(IrOp op)
{
	return op == IR_PARAM || op == IR_INPUT || op == IR_CONST || op == IR_INV_BATCH;
}

static void l_emit_node(LlCtx *c, int id)
{
	const IrNode *nd = &c->f->nodes[id];
	if (c->inl[id])
		return; /* computed inside its consumer's loops */
	if (!l_is_leafish(nd->op) && !c->val[id]) {
		/* every other value has a slot, unless it turns out uniform (all operands uniform) */
		bool uni_ok = (ir_op_info[nd->op].flags & IRF_EW) || nd->op == IR_EXPAND || nd->op == IR_RESHAPE;
		for (int k = 0; k < ir_op_info[nd->op].nin && uni_ok; k++)
			uni_ok = l_is_uniform(c, nd->in[k]);
		if (!uni_ok) {
			l_fail(c, "memory plan has no slot for node %d (%s) of %s", id, ir_op_info[nd->op].name, c->f->name);
			return;
		}
	}
	switch (nd->op) {
	case IR_PARAM:
	case IR_INPUT:
		break; /* bound to the body's arguments */
	case IR_CONST:
		c->uni[id] = l_f32(c, nd->f);
		break;
	case IR_INV_BATCH:
		c->uni[id] = LLVMBuildFDiv(c->b, l_f32(c, 1.0), LLVMBuildSIToFP(c->b, c->Bg, c->t_f32, ""), "inv_batch");
		break;
	case IR_NEG: case IR_EXP: case IR_LOG: case IR_SQRT: case IR_SQUARE: case IR_ABS: case IR_RELU:
	case IR_TANH: case IR_SIGMOID: case IR_STEP: case IR_SIGN: case IR_ADD: case IR_SUB: case IR_MUL:
	case IR_DIV: case IR_MAX: case IR_MIN: case IR_EXPAND: case IR_RESHAPE:
		l_emit_ew(c, id);
		break;
	case IR_SUM_TO: l_emit_sum_to(c, id); break;
	case IR_SLICE: l_emit_slice(c, id); break;
	case IR_PAD: l_emit_pad(c, id); break;
	case IR_CONCAT: l_emit_concat(c, id); break;
	case IR_MATMUL: l_emit_matmul(c, id); break;
	case IR_BMV: l_emit_bmv(c, id, false); break;
	case IR_BMVT: l_emit_bmv(c, id, true); break;
	case IR_OUTER: l_emit_outer(c, id); break;
	case IR_CONV2D: case IR_CONV2D_T: case IR_CONV2D_W: case IR_MAXPOOL: case IR_POOL_ARGMAX:
	case IR_POOL_GATHER: case IR_POOL_SCATTER:
		l_emit_image(c, id);
		break;
	case IR_OP_COUNT: l_fail(c, "bad op in node %d", id); break;
	}
}

/* ---------------------------------------------------------------------------------------------------- */
/* fusion and placement decisions                                                                       */

/* Does consumer `cons` read its operand `opnd` (node ids) more than once per element of that operand? */
static bool l_consumer_repeats(const IrFunc *f, int cons, int opnd)
{
	const IrNode *cn = &f->nodes[cons];
	switch (cn->op) {
	case IR_BMV: return cn->in[0] == opnd;  /* x is reused along j */
	case IR_BMVT: return cn->in[1] == opnd; /* g is reused along i */
	case IR_OUTER: return true;
	case IR_SUM_TO: case IR_PAD: case IR_CONCAT: return false;
	default: break;
	}
	IrShape so = f->nodes[opnd].shape, sc = cn->shape;
	int map[LL_MAXD], nd = (sc.batch ? 1 : 0) + sc.rank;
	l_bcast_map(so, sc, map);
	for (int d = 0; d < nd; d++)
		if (map[d] < 0 && (d == 0 && sc.batch ? true : sc.d[d - (sc.batch ? 1 : 0)] != 1))
			return true;
	return false;
}

/* Chooses the values to fuse into their consumers (c->inl): elementwise values, expands and outer
 * products (a product of two broadcasts) that are live, not outputs and not uniform, all of whose
 * readers build loop nests over maps (elementwise, sum_to, bmv/bmvt, outer, pad, concat). A fused value
 * is recomputed wherever it is read; so
 *   - expensive ops (exp, tanh, ...) are fused only where each element is computed once: one reader
 *     that reads each element once (and, transitively, is not itself recomputed);
 *   - a value with several readers is fused only if its subtree reads at most two per-trial tensors of
 *     rank 2 or more: then recomputing it costs no more memory traffic than storing and reloading it
 *     (the plastic-weight pattern W + alpha * Hebb read by both bmv and bmvt);
 *   - a fused subtree has at most LL_INLINE_LEAVES memory operands.
 * Sets *emit_at[i] for every live value: where its loops are emitted (its own node, or for a fused value
 * the latest emission point of its readers), which decides how long its operands stay live. */
static void l_plan_fusion(LlCtx *c, const bool *live, const bool *is_out, const bool *uni_static, int *emit_at)
{
	const IrFunc *f = c->f;
	int n = f->n;
	int *uses = calloc((size_t)n + 1, sizeof *uses), *first = calloc((size_t)n + 2, sizeof *first);
	int *readers = calloc((size_t)n * IR_MAX_IN + 1, sizeof *readers), *fill = calloc((size_t)n + 1, sizeof *fill);
	int *leaves = calloc((size_t)n + 1, sizeof *leaves), *big = calloc((size_t)n + 1, sizeof *big);
	bool *rec = calloc((size_t)n + 1, sizeof *rec);
	if (!uses || !first || !readers || !fill || !leaves || !big || !rec) {
		l_fail(c, "%s", "out of memory");
		goto out;
	}
	/* readers of each value (CSR) */
	for (int i = 0; i < n; i++)
		if (live[i])
			for (int k = 0; k < ir_op_info[f->nodes[i].op].nin; k++)
				uses[f->nodes[i].in[k]]++;
	for (int i = 0; i < n; i++)
		first[i + 1] = first[i] + uses[i];
	for (int i = 0; i < n; i++)
		if (live[i])
			for (int k = 0; k < ir_op_info[f->nodes[i].op].nin; k++) {
				int o = f->nodes[i].in[k];
				readers[first[o] + fill[o]++] = i;
			}
	/* readers come after the values they read: decide from the last node back */
	for (int i = n - 1; i >= 0; i--) {
		const IrNode *nd = &f->nodes[i];
		c->inl[i] = false;
		if (!live[i] || is_out[i] || uses[i] == 0 || uni_static[i])
			continue;
		if (!(ir_op_info[nd->op].flags & IRF_EW) && nd->op != IR_EXPAND && nd->op != IR_OUTER)
			continue;
		bool ok = true, r = uses[i] > 1;
		for (int q = first[i]; q < first[i + 1] && ok; q++) {
			int k = readers[q];
			IrOp cop = f->nodes[k].op;
			ok = (ir_op_info[cop].flags & IRF_EW) || cop == IR_EXPAND || cop == IR_SUM_TO || cop == IR_BMV ||
				cop == IR_BMVT || cop == IR_OUTER || cop == IR_PAD || cop == IR_CONCAT;
			r = r || l_consumer_repeats(f, k, i) || (c->inl[k] && rec[k]);
		}
		if (!ok || (r && l_expensive(nd->op)))
			continue;
		c->inl[i] = true;
		rec[i] = r;
	}
	/* size limits, from the first node on (a value's subtree is known before its readers') */
	for (int i = 0; i < n; i++) {
		if (!live[i])
			continue;
		const IrNode *nd = &f->nodes[i];
		int lv = 0, bg = 0;
		for (int k = 0; k < ir_op_info[nd->op].nin; k++) {
			int o = nd->in[k];
			if (c->inl[o]) {
				lv += leaves[o];
				bg += big[o];
			} else if (!uni_static[o]) {
				lv += 1;
				bg += f->nodes[o].shape.batch && f->nodes[o].shape.rank >= 2;
			}
		}
		if (c->inl[i] && (lv > LL_INLINE_LEAVES || (uses[i] > 1 && bg > 2)))
			c->inl[i] = false;
		leaves[i] = lv;
		big[i] = bg;
	}
	for (int i = n - 1; i >= 0; i--) {
		emit_at[i] = i;
		if (!c->inl[i])
			continue;
		for (int q = first[i]; q < first[i + 1]; q++)
			if (emit_at[readers[q]] > emit_at[i])
				emit_at[i] = emit_at[readers[q]];
	}
out:
	free(uses);
	free(first);
	free(readers);
	free(fill);
	free(leaves);
	free(big);
	free(rec);
}

/* ---------------------------------------------------------------------------------------------------- */
/* merged loop nests                                                                                    */

/* Horizontal loop fusion, the C backend's plan_groups rule (compiler/emit_c.c) applied while the body is
 * emitted: consecutive nodes whose loop nests run over the same index space become one nest with several
 * outputs, so a per-trial [H,H] tensor that several of them read streams from memory once per point
 * instead of once per nest. A node joins the pending group when
 *   - its nest is elementwise, expand, outer, sum_to, bmv or bmvt over a space of rank >= 2 equal to the
 *     group's (batch flag and dims, before dims are merged);
 *   - it is computed into its own scratch slot or straight into a caller's output buffer (a state or
 *     state adjoint, which the ABI keeps apart from every other argument);
 *   - it writes no array a member reads, its slot overlaps no array read or written by a member (the
 *     memory plan may reuse a slot freed by an earlier member), and it reads a value computed by a member
 *     only where that member assigns it point by point and it reads it at the same point
 *     (l_group_links: a producer-consumer pair; the value is handed over in a register, as emit_c's
 *     nest_link; off with PLASTC_NO_LOOP_CHAIN=1); any other read of a member's value ends the group;
 *   - the group has fewer than LL_GROUP_MAX members.
 * The only dependences inside a group are those pairs, which hold at each point, so the order of the
 * points does not matter; each output keeps its own expression and accumulator, so only the loop order
 * of sums changes, never what is summed. With producer-consumer members the retimed step (retime.c:
 * a plastic matrix's deferred update, then the product that reads it) streams the matrix once.
 * Nodes that emit no memory code (parameters, inputs, uniform values) do not end a group. */

/* The index space of node id's nest, if it may join a group. */
static bool l_group_space(LlCtx *c, int id, IrShape *space)
{
	const IrNode *nd = &c->f->nodes[id];
	if ((!c->slotted[id] && !c->dnode[id]) || c->inl[id])
		return false;
	IrOp op = nd->op;
	if ((ir_op_info[op].flags & IRF_EW) || op == IR_EXPAND) {
		bool all_uniform = true;
		for (int k = 0; k < ir_op_info[op].nin; k++)
			all_uniform = all_uniform && l_is_uniform(c, nd->in[k]);
		if (all_uniform)
			return false;
		*space = nd->shape;
	} else if (op == IR_OUTER) {
		*space = nd->shape;
	} else if (op == IR_SUM_TO) {
		if (l_is_uniform(c, nd->in[0]))
			return false;
		*space = c->f->nodes[nd->in[0]].shape;
	} else if (op == IR_BMV || op == IR_BMVT) {
		IrShape sw = c->f->nodes[op == IR_BMVT ? nd->in[0] : nd->in[1]].shape;
		*space = ir_shape2(nd->shape.batch, sw.d[0], sw.d[1]);
	} else {
		return false;
	}
	return space->rank >= 2;
}

/* The values in memory that node id's nest reads (through the values fused into it), appended to r. */
static void l_group_reads_rec(LlCtx *c, int id, int *r, int *nr, int cap)
{
	if (l_is_uniform(c, id))
		return;
	if (c->inl[id]) {
		const IrNode *nd = &c->f->nodes[id];
		for (int k = 0; k < ir_op_info[nd->op].nin; k++)
			l_group_reads_rec(c, nd->in[k], r, nr, cap);
		return;
	}
	if (*nr < cap)
		r[*nr] = id;
	(*nr)++;
}

static int l_group_reads(LlCtx *c, int id, int *r, int cap)
{
	const IrNode *nd = &c->f->nodes[id];
	int nr = 0;
	for (int k = 0; k < ir_op_info[nd->op].nin; k++)
		l_group_reads_rec(c, nd->in[k], r, &nr, cap);
	return nr;
}

/* Do the scratch slots of values a and b share a float? Values without a slot live in the caller's
 * buffers or arguments, which are distinct from the scratch and from each other. */
static bool l_slots_overlap(LlCtx *c, int a, int b)
{
	const MemPlan *p = c->plan;
	if (!p->has_slot[a] || !p->has_slot[b])
		return false;
	IrShape sa = c->f->nodes[a].shape, sb = c->f->nodes[b].shape;
	if (sa.batch != sb.batch)
		return false; /* per-trial and per-model values live in different pools */
	int64_t a0 = sa.batch ? p->off_b[a] : p->off_c[a], b0 = sb.batch ? p->off_b[b] : p->off_c[b];
	return a0 < b0 + l_numel(sb) && b0 < a0 + l_numel(sa);
}

#define LL_GROUP_READS (2 * LL_MAXLEAF)

/* Whether node id's nest assigns every point of its value once (elementwise, expand, outer): a value a
 * later member of a merged nest can take at the same point. */
static bool l_assigns(LlCtx *c, int id)
{
	IrOp op = c->f->nodes[id].op;
	return (ir_op_info[op].flags & IRF_EW) || op == IR_EXPAND || op == IR_OUTER;
}

/* May node id (whose nest runs over c->grp_space) join the pending group? */
static bool l_group_joins(LlCtx *c, int id)
{
	int r[LL_GROUP_READS];
	int nr = l_group_reads(c, id, r, LL_GROUP_READS);
	if (nr > LL_GROUP_READS)
		return false;
	for (int m = 0; m < c->grp_m; m++) {
		int mem = c->grp_mem[m];
		if (l_slots_overlap(c, id, mem))
			return false;
		for (int q = 0; q < nr; q++) {
			if (r[q] == mem) {
				/* a producer-consumer pair, if mem assigns its value point by point (l_group_links
				 * checks the strides when the nest is added) */
				if (c->no_loop_chain || !l_assigns(c, mem))
					return false;
				continue;
			}
			if (l_slots_overlap(c, r[q], mem))
				return false;
		}
		int r2[LL_GROUP_READS];
		int n2 = l_group_reads(c, mem, r2, LL_GROUP_READS);
		if (n2 > LL_GROUP_READS)
			return false;
		for (int q = 0; q < n2; q++)
			if (r2[q] == id || l_slots_overlap(c, r2[q], id))
				return false;
	}
	return true;
}

static bool l_same_space(IrShape a, IrShape b)
{
	if (a.batch != b.batch || a.rank != b.rank)
		return false;
	for (int d = 0; d < a.rank; d++)
		if (a.d[d] != b.d[d])
			return false;
	return true;
}

/* Emits node id, as a member of the pending group when it may join one (see above). */
static void l_group_emit_node(LlCtx *c, int id, bool no_code)
{
	IrShape space;
	if (c->no_loop_fuse || !l_group_space(c, id, &space)) {
		if (!no_code)
			l_group_flush(c);
		l_emit_node(c, id);
		return;
	}
	if (c->grp_m > 0 && (c->grp_m == LL_GROUP_MAX || !l_same_space(space, c->grp_space) || !l_group_joins(c, id)))
		l_group_flush(c);
	if (c->grp_m == 0)
		c->grp_space = space;
	c->grp_cur = id;
	c->capture = true;
	l_emit_node(c, id);
	c->capture = false;
}

/* ---------------------------------------------------------------------------------------------------- */
/* scheduling for merged nests                                                                          */

/* emit_c's plan_groups scheduling, for the groups l_group_emit_node forms greedily in emission order:
 * when the next node cannot join the group being formed, a later node within LL_SCHED_WINDOW that can
 * join, and may run before the nodes between (true dependences only: it reads none of them, through fused
 * values too, and none of them reads it), is moved up next to the group. In a step's VJP the nests over
 * one [H,H] plastic tensor are often separated by BLAS calls on small vectors; moved together they stream
 * the tensor once. Constants and other values known uniform before any code exists go first (their
 * instructions must precede every use). Records each node's group (first and last position in *ord) in
 * gfirst/glast, for the memory plan made afterwards (l_plan_timed). */
#define LL_SCHED_WINDOW 24

static bool l_no_code(LlCtx *c, int id)
{
	return c->inl[id] || c->ustat[id] || l_is_leafish(c->f->nodes[id].op);
}

/* May node x join the planned group mem[0..m-1] over space sp (the rules of l_group_joins that do not
 * depend on the memory plan, which is made for the schedule afterwards)? */
static bool l_sched_joins(LlCtx *c, int x, const int *mem, int m, IrShape sp)
{
	IrShape s2;
	if (!l_group_space(c, x, &s2) || !l_same_space(s2, sp))
		return false;
	int r[LL_GROUP_READS];
	int nr = l_group_reads(c, x, r, LL_GROUP_READS);
	if (nr > LL_GROUP_READS)
		return false;
	for (int q = 0; q < nr; q++)
		for (int k = 0; k < m; k++)
			if (r[q] == mem[k] && (c->no_loop_chain || !l_assigns(c, mem[k])))
				return false;
	return true;
}

/* Does node a read node b (directly or through values fused into it)? */
static bool l_reads(LlCtx *c, int a, int b)
{
	int r[LL_GROUP_READS];
	int nr = l_group_reads(c, a, r, LL_GROUP_READS);
	if (nr > LL_GROUP_READS)
		return true; /* unknown: assume so */
	for (int q = 0; q < nr; q++)
		if (r[q] == b)
			return true;
	return false;
}

static void l_schedule(LlCtx *c, int *ord, int nord, int *gfirst, int *glast)
{
	for (int i = 0; i < nord; i++)
		gfirst[i] = glast[i] = i;
	if (c->no_loop_fuse)
		return;
	c->scheduling = true;
	for (int k = 0; k < nord;) {
		IrShape sp;
		if (l_no_code(c, ord[k]) || !l_group_space(c, ord[k], &sp)) {
			k++;
			continue;
		}
		int mem[LL_GROUP_MAX], m = 1;
		mem[0] = ord[k];
		int j = k + 1;
		while (j < nord && m < LL_GROUP_MAX) {
			int x = ord[j];
			if (l_no_code(c, x)) {
				j++;
				continue; /* emits no loop: does not end a group */
			}
			if (l_sched_joins(c, x, mem, m, sp)) {
				mem[m++] = x;
				j++;
				continue;
			}
			if (c->no_loop_sched)
				break;
			int found = -1;
			for (int j2 = j + 1; j2 < nord && j2 <= j + LL_SCHED_WINDOW && found < 0; j2++) {
				int h = ord[j2];
				if (l_no_code(c, h) || !l_sched_joins(c, h, mem, m, sp))
					continue;
				bool safe = true;
				for (int i = j; i < j2 && safe; i++)
					safe = !l_reads(c, h, ord[i]) && !l_reads(c, ord[i], h);
				if (safe)
					found = j2;
			}
			if (found < 0)
				break;
			int h = ord[found];
			memmove(ord + j + 1, ord + j, sizeof *ord * (size_t)(found - j));
			ord[j] = h;
			mem[m++] = h;
			j++;
		}
		for (int i = k; i < j; i++) {
			gfirst[i] = k;
			glast[i] = j - 1;
		}
		k = j;
	}
	c->scheduling = false;
}

/* ---------------------------------------------------------------------------------------------------- */
/* memory plan                                                                                          */

/* The scratch plan of one function. Values that need memory (need[i]) get a 16-float aligned slot in
 * one of two pools: per-trial (batched) values in the first total_b * B floats, per-model values after
 * them. Slots are shared first-fit between values whose live ranges do not overlap, for the emission
 * order ord[0..nord-1]: value i lives from tdef[i] (the position where its merged nest starts) to
 * last[i] (where the merged nest of its last reader ends; for a fused reader, of the consumer whose loops
 * compute it; for outputs: the end). This is memplan.h's layout (same MemPlan type; memplan_build_timed
 * is the C backend's version), computed here because fusion and scheduling move reads and definitions
 * away from the IR's node order. */
static MemPlan *l_plan_timed(const IrFunc *f, const bool *need, const int *ord_in, int nord, const int *tdef,
	const int *last)
{
	MemPlan *p = calloc(1, sizeof *p);
	int *order = calloc((size_t)f->n + 1, sizeof *order);
	if (!p || !order) {
		free(p);
		free(order);
		return NULL;
	}
	p->n = f->n;
	p->has_slot = calloc((size_t)f->n + 1, sizeof *p->has_slot);
	p->off_b = calloc((size_t)f->n + 1, sizeof *p->off_b);
	p->off_c = calloc((size_t)f->n + 1, sizeof *p->off_c);
	if (!p->has_slot || !p->off_b || !p->off_c) {
		free(p->has_slot);
		free(p->off_b);
		free(p->off_c);
		free(p);
		free(order);
		return NULL;
	}
	int nplaced = 0;
	for (int oi = 0; oi < nord; oi++) {
		int i = ord_in[oi];
		if (!need[i])
			continue;
		const IrNode *nd = &f->nodes[i];
		bool batched = nd->shape.batch;
		int64_t sz = (l_numel(nd->shape) + 15) / 16 * 16;
		/* lowest offset in this pool not covered by a value still live at i (insertion-sorted scan) */
		int64_t off = 0;
		bool moved = true;
		while (moved) {
			moved = false;
			for (int k = 0; k < nplaced; k++) {
				int j = order[k];
				if (f->nodes[j].shape.batch != batched || last[j] < tdef[i])
					continue;
				int64_t jo = batched ? p->off_b[j] : p->off_c[j];
				int64_t jsz = (l_numel(f->nodes[j].shape) + 15) / 16 * 16;
				if (jo < off + sz && off < jo + jsz) {
					off = jo + jsz;
					moved = true;
				}
			}
		}
		p->has_slot[i] = true;
		if (batched) {
			p->off_b[i] = off;
			if (off + sz > p->total_b)
				p->total_b = off + sz;
		} else {
			p->off_c[i] = off;
			if (off + sz > p->total_c)
				p->total_c = off + sz;
		}
		order[nplaced++] = i;
	}
	/* the per-model pool starts after the batched one */
	for (int i = 0; i < f->n; i++)
		if (p->has_slot[i] && !f->nodes[i].shape.batch)
			p->off_b[i] = p->total_b;
	free(order);
	return p;
}

static void l_plan_free(MemPlan *p)
{
	if (!p)
		return;
	free(p->has_slot);
	free(p->off_b);
	free(p->off_c);
	free(p);
}

/* ---------------------------------------------------------------------------------------------------- */
/* functions                                                                                            */

/* Where a port lives in PlStepArgs: a direct pointer field, or element `index` of an array field.
 * Returns the field, or -1 for ports the ABI does not expose (SCALAR). */
static int l_port_field(IrRole role, bool input, bool *array)
{
	*array = false;
	switch (role) {
	case IR_ROLE_DATA: return input ? SA_X : -1;
	case IR_ROLE_STATE: *array = true; return input ? SA_STATE_IN : SA_STATE_OUT;
	case IR_ROLE_PRED: return input ? -1 : SA_Y;
	case IR_ROLE_OUTPUTS: return input ? -1 : SA_O;
	case IR_ROLE_STATE_BAR: *array = true; return input ? SA_STATE_OUT_BAR : SA_STATE_IN_BAR;
	case IR_ROLE_PRED_BAR: return input ? SA_Y_BAR : -1;
	case IR_ROLE_PARAM_BAR: *array = true; return input ? -1 : SA_PARAM_BAR;
	case IR_ROLE_SCALAR: return -1;
	case IR_ROLE_STATE_NEXT: *array = true; return input ? SA_STATE_OUT : -1;
	}
	return -1;
}

/* Copies (or for PARAM_BAR accumulates) an output port's value into the caller's buffer dst. */
static void l_emit_output(LlCtx *c, const IrPort *port, LLVMValueRef dst)
{
	int id = port->node;
	const IrNode *nd = &c->f->nodes[id];
	bool acc = port->role == IR_ROLE_PARAM_BAR;
	if (acc && nd->op == IR_CONST && nd->f == 0.0)
		return; /* += 0 */
	LLVMBasicBlockRef done = NULL;
	if (port->role == IR_ROLE_OUTPUTS) {
		/* o is optional (NULL: the caller does not want the outputs) */
		LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "o.write");
		done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "o.done");
		LLVMBuildCondBr(c->b, LLVMBuildIsNotNull(c->b, dst, ""), yes, done);
		LLVMPositionBuilderAtEnd(c->b, yes);
	}
	LlNest n;
	int64_t st[LL_MAXD];
	l_nest_space(c, &n, nd->shape);
	n.accumulate = acc;
	l_natural_strides(nd->shape, st);
	l_nest_dst(&n, dst, st);
	n.root = l_x_bcast(c, &n, id, nd->shape);
	l_nest_emit(c, &n);
	if (done) {
		LLVMBuildBr(c->b, done);
		LLVMPositionBuilderAtEnd(c->b, done);
	}
}

/* Output roles whose buffer the value can be computed in directly: always written (not NULL), with
 * plain assignment. */
static bool l_direct_role(IrRole r)
{
	return r == IR_ROLE_PRED || r == IR_ROLE_STATE || r == IR_ROLE_STATE_BAR;
}

/* The body: void <model>_<fn>.body(i64 B, i64 B_global, float *noalias params..., float *noalias ins...,
 * float *noalias outs..., float *noalias work). Returns the function, or NULL. */
static LLVMValueRef l_emit_body(LlCtx *c, const IrFunc *f, const char *name)
{
	int np = c->p->n_params, n = f->n;
	int nargs = 2 + np + f->nins + f->nouts + 1;
	LLVMTypeRef *at = calloc((size_t)nargs, sizeof *at);
	if (!at) {
		l_fail(c, "%s", "out of memory");
		return NULL;
	}
	at[0] = at[1] = c->t_i64;
	for (int i = 2; i < nargs; i++)
		at[i] = c->t_pf;
	LLVMValueRef fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->t_void, at, (unsigned)nargs, 0));
	free(at);
	LLVMSetLinkage(fn, LLVMInternalLinkage);
	l_attr(c, fn, LLVMAttributeFunctionIndex, "alwaysinline");
	l_attr(c, fn, LLVMAttributeFunctionIndex, "nounwind");
	for (int i = 2; i < nargs; i++)
		l_attr(c, fn, (LLVMAttributeIndex)(i + 1), "noalias");
	LLVMSetValueName2(LLVMGetParam(fn, 0), "B", 1);
	LLVMSetValueName2(LLVMGetParam(fn, 1), "B_global", 8);
	LLVMSetValueName2(LLVMGetParam(fn, (unsigned)nargs - 1), "work", 4);

	c->f = f;
	c->fn = fn;
	c->B = LLVMGetParam(fn, 0);
	c->Bg = LLVMGetParam(fn, 1);
	c->work = LLVMGetParam(fn, (unsigned)nargs - 1);
	c->extra_b = c->extra_c = 0;
	c->val = calloc((size_t)n + 1, sizeof *c->val);
	c->uni = calloc((size_t)n + 1, sizeof *c->uni);
	c->inl = calloc((size_t)n + 1, sizeof *c->inl);
	c->dnode = calloc((size_t)n + 1, sizeof *c->dnode);
	bool *live = calloc((size_t)n + 1, sizeof *live), *is_out = calloc((size_t)n + 1, sizeof *is_out);
	bool *uni_static = calloc((size_t)n + 1, sizeof *uni_static), *need = calloc((size_t)n + 1, sizeof *need);
	bool *direct = calloc((size_t)f->nouts + 1, sizeof *direct);
	int *last = calloc((size_t)n + 1, sizeof *last), *emit_at = calloc((size_t)n + 1, sizeof *emit_at);
	int *ord = calloc((size_t)n + 1, sizeof *ord), *gfirst = calloc((size_t)n + 1, sizeof *gfirst);
	int *glast = calloc((size_t)n + 1, sizeof *glast), *tdef = calloc((size_t)n + 1, sizeof *tdef);
	int *teff = calloc((size_t)n + 1, sizeof *teff);
	if (!c->val || !c->uni || !c->inl || !c->dnode || !live || !is_out || !uni_static || !need || !direct || !last ||
		!emit_at || !ord || !gfirst || !glast || !tdef || !teff) {
		l_fail(c, "%s", "out of memory");
		goto out;
	}
	c->entry = LLVMAppendBasicBlockInContext(c->ctx, fn, "entry");
	LLVMBasicBlockRef start = LLVMAppendBasicBlockInContext(c->ctx, fn, "start");
	LLVMPositionBuilderAtEnd(c->ab, c->entry);
	LLVMPositionBuilderAtEnd(c->b, start);

	/* liveness: only values that reach an output are computed */
	for (int k = 0; k < f->nouts; k++) {
		if (f->outs[k].node < 0 || f->outs[k].node >= n) {
			l_fail(c, "output port %d of %s has no node", k, f->name);
			goto out;
		}
		live[f->outs[k].node] = is_out[f->outs[k].node] = true;
	}
	for (int i = n - 1; i >= 0; i--)
		if (live[i])
			for (int k = 0; k < ir_op_info[f->nodes[i].op].nin; k++)
				live[f->nodes[i].in[k]] = true;
	/* values known to be uniform before any code exists: constants and elementwise functions of them */
	for (int i = 0; i < n; i++) {
		IrOp op = f->nodes[i].op;
		bool u = op == IR_CONST || op == IR_INV_BATCH;
		if ((ir_op_info[op].flags & IRF_EW) || op == IR_EXPAND || op == IR_RESHAPE) {
			u = true;
			for (int k = 0; k < ir_op_info[op].nin; k++)
				u = u && uni_static[f->nodes[i].in[k]];
		}
		uni_static[i] = u;
	}
	l_plan_fusion(c, live, is_out, uni_static, emit_at);
	if (c->failed)
		goto out;

	/* leaves bound to arguments */
	for (int i = 0; i < n; i++) {
		const IrNode *nd = &f->nodes[i];
		if (nd->op == IR_PARAM) {
			if (nd->a[0] < 0 || nd->a[0] >= np) {
				l_fail(c, "param node refers to a parameter out of range in %s", f->name);
				goto out;
			}
			c->val[i] = LLVMGetParam(fn, (unsigned)(2 + nd->a[0]));
		}
	}
	for (int k = 0; k < f->nins; k++) {
		int id = f->ins[k].node;
		c->val[id] = LLVMGetParam(fn, (unsigned)(2 + np + k));
		if (f->ins[k].name)
			LLVMSetValueName2(c->val[id], f->ins[k].name, strlen(f->ins[k].name));
	}
	/* computed outputs are written straight into the caller's buffer (the ABI's buffers do not overlap) */
	for (int k = 0; k < f->nouts; k++) {
		int id = f->outs[k].node;
		if (l_direct_role(f->outs[k].role) && !c->val[id] && !uni_static[id] && !l_is_leafish(f->nodes[id].op)) {
			c->val[id] = LLVMGetParam(fn, (unsigned)(2 + np + f->nins + k));
			direct[k] = true;
			c->dnode[id] = true;
		}
	}
	/* the emission order: values known uniform before any code exists first, then the rest in node order,
	 * scheduled for merged nests (l_schedule) */
	for (int i = 0; i < n; i++)
		need[i] = live[i] && !c->inl[i] && !uni_static[i] && !l_is_leafish(f->nodes[i].op) && !c->val[i];
	c->slotted = need;
	c->ustat = uni_static;
	c->is_out = is_out;
	int nord = 0;
	for (int i = 0; i < n; i++)
		if (live[i] && (uni_static[i] || l_is_leafish(f->nodes[i].op)))
			ord[nord++] = i;
	for (int i = 0; i < n; i++)
		if (live[i] && !(uni_static[i] || l_is_leafish(f->nodes[i].op)))
			ord[nord++] = i;
	l_schedule(c, ord, nord, gfirst, glast);
	/* scratch for the rest, shared between values whose live ranges do not overlap: a value lives from
	 * the start of its merged nest (or its own position) to the end of the merged nest of its last reader,
	 * where a fused value is read where its readers' loops are */
	for (int q = 0; q < nord; q++) {
		tdef[ord[q]] = gfirst[q];
		teff[ord[q]] = c->inl[ord[q]] ? -1 : glast[q];
	}
	for (int i = n - 1; i >= 0; i--) {
		last[i] = -1;
		if (!live[i])
			continue;
		for (int k = 0; k < ir_op_info[f->nodes[i].op].nin; k++) {
			int o = f->nodes[i].in[k];
			if (c->inl[o] && teff[i] > teff[o])
				teff[o] = teff[i];
		}
	}
	for (int i = 0; i < n; i++) {
		if (!live[i])
			continue;
		for (int k = 0; k < ir_op_info[f->nodes[i].op].nin; k++) {
			int o = f->nodes[i].in[k];
			if (teff[i] > last[o])
				last[o] = teff[i];
		}
	}
	for (int i = 0; i < n; i++)
		if (is_out[i])
			last[i] = nord + 1; /* read by the output copies at the end */
	c->plan = l_plan_timed(f, need, ord, nord, tdef, last);
	if (!c->plan) {
		l_fail(c, "%s", "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (!c->plan->has_slot[i])
			continue;
		LLVMValueRef off = LLVMBuildNSWAdd(c->ab, LLVMBuildNSWMul(c->ab, c->B, l_i64(c, c->plan->off_b[i]), ""),
			l_i64(c, c->plan->off_c[i]), "");
		char nm[96];
		if (f->nodes[i].name)
			snprintf(nm, sizeof nm, "%s", f->nodes[i].name);
		else
			snprintf(nm, sizeof nm, "v%d", i);
		c->val[i] = LLVMBuildInBoundsGEP2(c->ab, c->t_f32, c->work, &off, 1, nm);
	}
	c->grp = malloc(sizeof *c->grp);
	c->grp_m = 0;
	if (!c->grp) {
		l_fail(c, "%s", "out of memory");
		goto out;
	}
	for (int q = 0; q < nord && !c->failed; q++)
		l_group_emit_node(c, ord[q], l_no_code(c, ord[q]));
	l_group_flush(c);
	for (int k = 0; k < f->nouts && !c->failed; k++) {
		bool array;
		if (l_port_field(f->outs[k].role, false, &array) < 0)
			continue;
		if (direct[k] && !c->uni[f->outs[k].node])
			continue; /* already in place */
		l_emit_output(c, &f->outs[k], LLVMGetParam(fn, (unsigned)(2 + np + f->nins + k)));
	}
	LLVMBuildRetVoid(c->b);
	LLVMBuildBr(c->ab, start);
out:
	free(live);
	free(is_out);
	free(uni_static);
	free(need);
	free(direct);
	free(last);
	free(emit_at);
	free(ord);
	free(gfirst);
	free(glast);
	free(tdef);
	free(teff);
	c->slotted = c->ustat = c->is_out = NULL;
	free(c->val);
	free(c->uni);
	free(c->inl);
	free(c->dnode);
	c->dnode = NULL;
	free(c->grp);
	c->grp = NULL;
	c->val = c->uni = NULL;
	c->inl = NULL;
	return c->failed ? NULL : fn;
}

static LLVMValueRef l_load_field(LlCtx *c, LLVMValueRef args, int field, LLVMTypeRef ty, const char *name)
{
	LLVMValueRef p = LLVMBuildStructGEP2(c->b, c->t_args, args, (unsigned)field, "");
	return LLVMBuildLoad2(c->b, ty, p, name);
}

/* void <model>_<f>(const PlStepArgs *a): loads the fields and calls the body. Returns the scratch floats
 * the body needs as (per-B, constant) through *wb, *wc. */
static void l_emit_entry(LlCtx *c, const IrFunc *f, int64_t *wb, int64_t *wc)
{
	char name[192], bname[200];
	snprintf(name, sizeof name, "%s_%s", c->prefix, f->name);
	snprintf(bname, sizeof bname, "%s.body", name);
	LLVMValueRef body = l_emit_body(c, f, bname);
	if (!body)
		return;
	*wb = c->plan->total_b + c->extra_b;
	*wc = c->plan->total_c + c->extra_c;
	l_plan_free(c->plan);
	c->plan = NULL;

	LLVMValueRef fn = LLVMAddFunction(c->mod, name, c->t_step);
	l_attr(c, fn, LLVMAttributeFunctionIndex, "nounwind");
	LLVMValueRef args = LLVMGetParam(fn, 0);
	LLVMSetValueName2(args, "a", 1);
	c->fn = fn;
	LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
	int np = c->p->n_params;
	int nargs = 2 + np + f->nins + f->nouts + 1;
	LLVMValueRef *av = calloc((size_t)nargs, sizeof *av);
	if (!av) {
		l_fail(c, "%s", "out of memory");
		return;
	}
	av[0] = LLVMBuildSExt(c->b, l_load_field(c, args, SA_B, c->t_i32, "B"), c->t_i64, "");
	av[1] = LLVMBuildSExt(c->b, l_load_field(c, args, SA_B_GLOBAL, c->t_i32, "B_global"), c->t_i64, "");
	LLVMValueRef arrays[SA_COUNT] = {0};
	LLVMValueRef params = l_load_field(c, args, SA_PARAMS, c->t_ppf, "params");
	for (int j = 0; j < np; j++) {
		LLVMValueRef idx = l_i64(c, j);
		av[2 + j] = LLVMBuildLoad2(c->b, c->t_pf, LLVMBuildInBoundsGEP2(c->b, c->t_pf, params, &idx, 1, ""),
			c->p->params[j].name ? c->p->params[j].name : "");
	}
	for (int k = 0; k < f->nins + f->nouts; k++) {
		bool input = k < f->nins;
		const IrPort *port = input ? &f->ins[k] : &f->outs[k - f->nins];
		bool array;
		int field = l_port_field(port->role, input, &array);
		LLVMValueRef v;
		if (field < 0) {
			if (input) {
				l_fail(c, "input port '%s' has a role with no ABI field", port->name ? port->name : "?");
				free(av);
				return;
			}
			v = LLVMConstNull(c->t_pf);
		} else if (array) {
			if (!arrays[field])
				arrays[field] = l_load_field(c, args, field, c->t_ppf, "");
			LLVMValueRef idx = l_i64(c, port->index);
			v = LLVMBuildLoad2(c->b, c->t_pf,
				LLVMBuildInBoundsGEP2(c->b, c->t_pf, arrays[field], &idx, 1, ""), "");
		} else {
			v = l_load_field(c, args, field, c->t_pf, "");
		}
		av[2 + np + k] = v;
	}
	av[nargs - 1] = l_load_field(c, args, SA_WORK, c->t_pf, "work");
	LLVMBuildCall2(c->b, LLVMGlobalGetValueType(body), body, av, (unsigned)nargs, "");
	LLVMBuildRetVoid(c->b);
	free(av);
}

/* size_t <model>_work_floats(int B) = max over the entry points of (wb * B + wc) */
static void l_emit_work_floats(LlCtx *c, int64_t wb0, int64_t wc0, int64_t wb1, int64_t wc1)
{
	char name[192];
	snprintf(name, sizeof name, "%s_work_floats", c->prefix);
	LLVMValueRef fn = LLVMAddFunction(c->mod, name, c->t_wf);
	l_attr(c, fn, LLVMAttributeFunctionIndex, "nounwind");
	LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
	LLVMValueRef B = LLVMBuildSExt(c->b, LLVMGetParam(fn, 0), c->t_i64, "B");
	LLVMSetValueName2(LLVMGetParam(fn, 0), "B", 1);
	LLVMValueRef w0 = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, B, l_i64(c, wb0), ""), l_i64(c, wc0), "fwd");
	LLVMValueRef w1 = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, B, l_i64(c, wb1), ""), l_i64(c, wc1), "vjp");
	LLVMValueRef mx = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntUGT, w0, w1, ""), w0, w1, "");
	/* at least one float, so that a model with no scratch still gets a valid (non-NULL) block */
	mx = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, mx, l_i64(c, 0), ""), l_i64(c, 1), mx, "");
	LLVMBuildRet(c->b, mx);
}

/* ---------------------------------------------------------------------------------------------------- */
/* the descriptor                                                                                       */

static LLVMValueRef l_cstring(LlCtx *c, const char *s, const char *name)
{
	if (!s)
		return LLVMConstNull(c->t_pi8);
	LLVMValueRef init = LLVMConstStringInContext(c->ctx, s, (unsigned)strlen(s), 0);
	LLVMValueRef g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
	LLVMSetInitializer(g, init);
	LLVMSetGlobalConstant(g, 1);
	LLVMSetLinkage(g, LLVMPrivateLinkage);
	LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
	return LLVMConstPointerCast(g, c->t_pi8);
}

static LLVMTypeRef l_desc_type(LlCtx *c)
{
	LLVMTypeRef f[8] = {c->t_pi8, c->t_i32, LLVMArrayType(c->t_i64, PL_MAX_RANK), c->t_i32, c->t_f64, c->t_f64,
		c->t_i32, c->t_i32};
	return LLVMStructTypeInContext(c->ctx, f, 8, 0);
}

static LLVMTypeRef l_model_type(LlCtx *c, LLVMTypeRef tdesc)
{
	LLVMTypeRef pd = l_ptr(c, tdesc);
	LLVMTypeRef f[19] = {c->t_i32, c->t_pi8, c->t_pi8, c->t_pi8, c->t_pi8, c->t_i32, c->t_i32, c->t_i32, c->t_i32,
		c->t_i32, pd, c->t_i32, pd, l_ptr(c, c->t_wf), l_ptr(c, c->t_step), l_ptr(c, c->t_step), c->t_i32,
		l_ptr(c, c->t_step), c->t_pi8};
	return LLVMStructTypeInContext(c->ctx, f, 19, 0);
}

static LLVMValueRef l_desc_table(LlCtx *c, LLVMTypeRef tdesc, const ProgTensor *t, int n, const char *what)
{
	if (n == 0)
		return LLVMConstNull(l_ptr(c, tdesc));
	LLVMValueRef *elems = calloc((size_t)n, sizeof *elems);
	if (!elems) {
		l_fail(c, "%s", "out of memory");
		return LLVMConstNull(l_ptr(c, tdesc));
	}
	for (int i = 0; i < n; i++) {
		LLVMValueRef dims[PL_MAX_RANK];
		for (int k = 0; k < PL_MAX_RANK; k++)
			dims[k] = l_i64(c, k < t[i].shape.rank ? t[i].shape.d[k] : 0);
		char nm[64];
		snprintf(nm, sizeof nm, ".%s.name", what);
		LLVMValueRef f[8] = {l_cstring(c, t[i].name, nm), l_i32(c, t[i].shape.rank),
			LLVMConstArray(c->t_i64, dims, PL_MAX_RANK), l_i32(c, (int)t[i].init),
			LLVMConstReal(c->t_f64, t[i].init_a), LLVMConstReal(c->t_f64, t[i].init_b),
			l_i32(c, t[i].trainable ? 1 : 0), l_i32(c, t[i].running ? 1 : 0)};
		elems[i] = LLVMConstNamedStruct(tdesc, f, 8);
	}
	LLVMValueRef init = LLVMConstArray(tdesc, elems, (unsigned)n);
	free(elems);
	char gname[192];
	snprintf(gname, sizeof gname, "%s_%s", c->prefix, what);
	LLVMValueRef g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), gname);
	LLVMSetInitializer(g, init);
	LLVMSetGlobalConstant(g, 1);
	LLVMSetLinkage(g, LLVMInternalLinkage);
	return LLVMConstPointerCast(g, l_ptr(c, tdesc));
}

static void l_emit_descriptor(LlCtx *c, bool with_main)
{
	const Program *p = c->p;
	LLVMTypeRef tdesc = l_desc_type(c), tmodel = l_model_type(c, tdesc);
	char nm[192];
	snprintf(nm, sizeof nm, "%s_step_forward", c->prefix);
	LLVMValueRef fwd = LLVMGetNamedFunction(c->mod, nm);
	snprintf(nm, sizeof nm, "%s_step_vjp", c->prefix);
	LLVMValueRef vjp = LLVMGetNamedFunction(c->mod, nm);
	snprintf(nm, sizeof nm, "%s_work_floats", c->prefix);
	LLVMValueRef wf = LLVMGetNamedFunction(c->mod, nm);
	snprintf(nm, sizeof nm, "%s_step_forward_eval", c->prefix);
	LLVMValueRef fev = p->fwd_eval ? LLVMGetNamedFunction(c->mod, nm) : LLVMConstNull(l_ptr(c, c->t_step));
	if (!fwd || !vjp || !wf || !fev) {
		l_fail(c, "%s", "descriptor requested before the entry points exist");
		return;
	}
	/* bar_in_place: NULL (this backend does not prove in-place adjoints; separate buffers are always
	 * allowed) */
	LLVMValueRef f[19] = {
		l_i32(c, PL_ABI_VERSION), l_cstring(c, p->name, ".name"), l_cstring(c, p->hash, ".hash"),
		l_cstring(c, p->source, ".source"), l_cstring(c, p->settings, ".settings"), l_i32(c, p->in_size),
		l_i32(c, p->pred_size), l_i32(c, p->out_size), l_i32(c, (int)p->meta_loss), l_i32(c, p->n_params),
		l_desc_table(c, tdesc, p->params, p->n_params, "params"), l_i32(c, p->n_state),
		l_desc_table(c, tdesc, p->state, p->n_state, "state"), wf, fwd, vjp, l_i32(c, p->couples_rows ? 1 : 0),
		fev, LLVMConstNull(c->t_pi8),
	};
	snprintf(nm, sizeof nm, "%s_model", c->prefix);
	LLVMValueRef g = LLVMAddGlobal(c->mod, tmodel, nm);
	LLVMSetInitializer(g, LLVMConstNamedStruct(tmodel, f, 19));
	LLVMSetGlobalConstant(g, 1);
	if (!with_main)
		return;
	/* int main(int argc, char **argv) { return pl_main(&<model>_model, argc, argv); } */
	LLVMTypeRef ppi8 = l_ptr(c, c->t_pi8);
	LLVMTypeRef mt_args[2] = {c->t_i32, ppi8};
	LLVMValueRef mainf = LLVMAddFunction(c->mod, "main", LLVMFunctionType(c->t_i32, mt_args, 2, 0));
	LLVMTypeRef pm_args[3] = {l_ptr(c, tmodel), c->t_i32, ppi8};
	LLVMValueRef plmain = l_extern(c, "pl_main", LLVMFunctionType(c->t_i32, pm_args, 3, 0));
	c->fn = mainf;
	LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, mainf, "entry"));
	LLVMValueRef cargs[3] = {g, LLVMGetParam(mainf, 0), LLVMGetParam(mainf, 1)};
	LLVMBuildRet(c->b, l_call(c, plmain, cargs, 3, "rc"));
}

/* Our struct types must have the C layout of plastrt.h on this target: a mismatch would make generated
 * code read the wrong fields, so it is checked every time a module is built. */
static void l_check_layouts(LlCtx *c)
{
	LLVMTargetDataRef td = LLVMGetModuleDataLayout(c->mod); /* owned by the module */
	static const size_t args_off[SA_COUNT] = {
		offsetof(PlStepArgs, B), offsetof(PlStepArgs, B_global), offsetof(PlStepArgs, params),
		offsetof(PlStepArgs, x), offsetof(PlStepArgs, state_in), offsetof(PlStepArgs, state_out),
		offsetof(PlStepArgs, y), offsetof(PlStepArgs, o), offsetof(PlStepArgs, y_bar),
		offsetof(PlStepArgs, state_out_bar), offsetof(PlStepArgs, state_in_bar), offsetof(PlStepArgs, param_bar),
		offsetof(PlStepArgs, work),
	};
	for (unsigned i = 0; i < SA_COUNT; i++)
		if (LLVMOffsetOfElement(td, c->t_args, i) != args_off[i])
			l_fail(c, "PlStepArgs layout differs from the C compiler's (%s)", "field offsets");
	LLVMTypeRef tdesc = l_desc_type(c), tmodel = l_model_type(c, tdesc);
	static const size_t desc_off[8] = {offsetof(PlTensorDesc, name), offsetof(PlTensorDesc, rank),
		offsetof(PlTensorDesc, dims), offsetof(PlTensorDesc, init), offsetof(PlTensorDesc, init_a),
		offsetof(PlTensorDesc, init_b), offsetof(PlTensorDesc, trainable), offsetof(PlTensorDesc, running)};
	for (unsigned i = 0; i < 8; i++)
		if (LLVMOffsetOfElement(td, tdesc, i) != desc_off[i])
			l_fail(c, "PlTensorDesc layout differs from the C compiler's (%s)", "field offsets");
	if (LLVMABISizeOfType(td, tdesc) != sizeof(PlTensorDesc))
		l_fail(c, "PlTensorDesc size differs from the C compiler's (%s)", "sizeof");
	static const size_t model_off[19] = {offsetof(PlModel, abi_version), offsetof(PlModel, name),
		offsetof(PlModel, hash), offsetof(PlModel, source), offsetof(PlModel, settings),
		offsetof(PlModel, in_size), offsetof(PlModel, pred_size), offsetof(PlModel, out_size),
		offsetof(PlModel, meta_loss), offsetof(PlModel, n_params), offsetof(PlModel, params),
		offsetof(PlModel, n_state), offsetof(PlModel, state), offsetof(PlModel, work_floats),
		offsetof(PlModel, step_forward), offsetof(PlModel, step_vjp), offsetof(PlModel, couples_rows),
		offsetof(PlModel, step_forward_eval), offsetof(PlModel, bar_in_place)};
	for (unsigned i = 0; i < 19; i++)
		if (LLVMOffsetOfElement(td, tmodel, i) != model_off[i])
			l_fail(c, "PlModel layout differs from the C compiler's (%s)", "field offsets");
}

/* ---------------------------------------------------------------------------------------------------- */
/* public                                                                                               */

void emitll_init_native(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	LLVMInitializeNativeTarget();
	LLVMInitializeNativeAsmPrinter();
	LLVMInitializeNativeAsmParser();
}

LLVMTargetMachineRef emitll_host_machine(FILE *err)
{
	emitll_init_native();
	char *triple = LLVMGetDefaultTargetTriple();
	char *cpu = LLVMGetHostCPUName();
	char *features = LLVMGetHostCPUFeatures();
	char *msg = NULL;
	LLVMTargetRef target = NULL;
	LLVMTargetMachineRef tm = NULL;
	if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
		fprintf(err, "plastc: internal error: no LLVM target for host triple '%s': %s\n", triple, msg ? msg : "");
	} else {
		tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive, LLVMRelocPIC,
			LLVMCodeModelDefault);
		if (!tm)
			fprintf(err, "plastc: internal error: cannot create an LLVM target machine for '%s'\n", triple);
	}
	LLVMDisposeMessage(msg);
	LLVMDisposeMessage(triple);
	LLVMDisposeMessage(cpu);
	LLVMDisposeMessage(features);
	return tm;
}

LLVMModuleRef emitll_module(const Program *p, LLVMContextRef ctx, LLVMTargetMachineRef tm, unsigned flags,
	FILE *err)
{
	LlCtx c;
	memset(&c, 0, sizeof c);
	c.ctx = ctx;
	c.p = p;
	c.err = err;
	c.tm = tm;
	emitll_symbol_prefix(p, c.prefix, sizeof c.prefix);
	/* the A/B switch of the C backend's loop merging (emit_c.h), for commands that compile internally */
	const char *nlf = getenv("PLASTC_NO_LOOP_FUSE");
	c.no_loop_fuse = (flags & EMITLL_NO_LOOP_FUSE) || (nlf && nlf[0] && strcmp(nlf, "0") != 0);
	const char *nbi = getenv("PLASTC_NO_BATCH_INNER");
	c.no_batch_inner = nbi && nbi[0] && strcmp(nbi, "0") != 0;
	const char *nlc = getenv("PLASTC_NO_LOOP_CHAIN");
	c.no_loop_chain = nlc && nlc[0] && strcmp(nlc, "0") != 0;
	const char *nls = getenv("PLASTC_NO_LOOP_SCHED");
	c.no_loop_sched = nls && nls[0] && strcmp(nls, "0") != 0;
	const char *nns = getenv("PLASTC_NO_NOSTORE");
	c.no_nostore = nns && nns[0] && strcmp(nns, "0") != 0;
	c.mod = LLVMModuleCreateWithNameInContext(p->name ? p->name : "model", ctx);
	if (p->source)
		LLVMSetSourceFileName(c.mod, p->source, strlen(p->source));
	char *triple = LLVMGetTargetMachineTriple(tm);
	LLVMSetTarget(c.mod, triple);
	LLVMDisposeMessage(triple);
	LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
	LLVMSetModuleDataLayout(c.mod, td); /* copies the layout */
	LLVMDisposeTargetData(td);

	c.b = LLVMCreateBuilderInContext(ctx);
	c.ab = LLVMCreateBuilderInContext(ctx);
	c.t_void = LLVMVoidTypeInContext(ctx);
	c.t_i1 = LLVMInt1TypeInContext(ctx);
	c.t_i8 = LLVMInt8TypeInContext(ctx);
	c.t_i32 = LLVMInt32TypeInContext(ctx);
	c.t_i64 = LLVMInt64TypeInContext(ctx);
	c.t_f32 = LLVMFloatTypeInContext(ctx);
	c.t_f64 = LLVMDoubleTypeInContext(ctx);
	c.t_pf = l_ptr(&c, c.t_f32);
	c.t_ppf = l_ptr(&c, c.t_pf);
	c.t_pi8 = l_ptr(&c, c.t_i8);
	c.t_args = LLVMStructCreateNamed(ctx, "PlStepArgs");
	LLVMTypeRef fields[SA_COUNT] = {c.t_i32, c.t_i32, c.t_ppf, c.t_pf, c.t_ppf, c.t_ppf, c.t_pf, c.t_pf, c.t_pf,
		c.t_ppf, c.t_ppf, c.t_ppf, c.t_pf};
	LLVMStructSetBody(c.t_args, fields, SA_COUNT, 0);
	c.t_pargs = l_ptr(&c, c.t_args);
	c.t_step = LLVMFunctionType(c.t_void, &c.t_pargs, 1, 0);
	c.t_wf = LLVMFunctionType(c.t_i64, &c.t_i32, 1, 0);
	c.md_loop = LLVMGetMDKindIDInContext(ctx, "llvm.loop", 9);

	l_check_layouts(&c);
	int64_t wb[3] = {0, 0, 0}, wc[3] = {0, 0, 0};
	if (!p->fwd || !p->vjp)
		l_fail(&c, "%s", "program has no step_forward or step_vjp function");
	if (!c.failed)
		l_emit_entry(&c, p->fwd, &wb[0], &wc[0]);
	if (!c.failed)
		l_emit_entry(&c, p->vjp, &wb[1], &wc[1]);
	if (!c.failed && p->fwd_eval)
		l_emit_entry(&c, p->fwd_eval, &wb[2], &wc[2]);
	l_plan_free(c.plan);
	/* both forward entries within one bound: each coefficient's maximum (all are >= 0) */
	if (!c.failed)
		l_emit_work_floats(&c, wb[0] > wb[2] ? wb[0] : wb[2], wc[0] > wc[2] ? wc[0] : wc[2], wb[1], wc[1]);
	if (!c.failed && (flags & (EMITLL_DESCRIPTOR | EMITLL_MAIN)))
		l_emit_descriptor(&c, (flags & EMITLL_MAIN) != 0);
	LLVMDisposeBuilder(c.b);
	LLVMDisposeBuilder(c.ab);

	if (!c.failed) {
		char *msg = NULL;
		if (LLVMVerifyModule(c.mod, LLVMReturnStatusAction, &msg)) {
			char *text = LLVMPrintModuleToString(c.mod);
			fprintf(err, "%s\n", text);
			LLVMDisposeMessage(text);
			fprintf(err, "plastc: internal error: model '%s': generated LLVM module does not verify:\n%s\n",
				p->name ? p->name : "?", msg ? msg : "");
			c.failed = true;
		}
		LLVMDisposeMessage(msg);
	}
	if (c.failed) {
		LLVMDisposeModule(c.mod);
		return NULL;
	}
	return c.mod;
}

int emitll_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, FILE *err)
{
	LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
	LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
	LLVMPassBuilderOptionsSetSLPVectorization(opts, 1);
	LLVMPassBuilderOptionsSetLoopInterleaving(opts, 1);
	/* No loop unrolling: a step function has hundreds of short, memory-bound loop nests; the vectoriser's
	 * interleaving already gives them enough independent work, and unrolling doubled O3 time and code size
	 * (copy/lstm_gradient: 2.7 s -> 1.2 s, 147 KB -> 62 KB of .text) for no measured speed. */
	LLVMPassBuilderOptionsSetLoopUnrolling(opts, 0);
	LLVMErrorRef e = LLVMRunPasses(m, "default<O3>", tm, opts);
	LLVMDisposePassBuilderOptions(opts);
	if (e) {
		char *msg = LLVMGetErrorMessage(e); /* consumes e */
		fprintf(err, "plastc: internal error: LLVM O3 pipeline failed: %s\n", msg);
		LLVMDisposeErrorMessage(msg);
		return -1;
	}
	return 0;
}

size_t emitll_text_bytes(LLVMMemoryBufferRef obj)
{
	char *msg = NULL;
	size_t total = 0;
	LLVMBinaryRef bin = LLVMCreateBinary(obj, NULL, &msg);
	if (bin) {
		LLVMSectionIteratorRef it = LLVMObjectFileCopySectionIterator(bin);
		for (; !LLVMObjectFileIsSectionIteratorAtEnd(bin, it); LLVMMoveToNextSection(it)) {
			const char *nm = LLVMGetSectionName(it);
			if (nm && strncmp(nm, ".text", 5) == 0)
				total += (size_t)LLVMGetSectionSize(it);
		}
		LLVMDisposeSectionIterator(it);
		LLVMDisposeBinary(bin);
	}
	LLVMDisposeMessage(msg);
	return total;
}

size_t emitll_code_size(LLVMModuleRef m, LLVMTargetMachineRef tm)
{
	char *msg = NULL;
	LLVMMemoryBufferRef buf = NULL;
	if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &msg, &buf)) {
		LLVMDisposeMessage(msg);
		return 0;
	}
	size_t total = emitll_text_bytes(buf);
	LLVMDisposeMemoryBuffer(buf);
	return total;
}

/* Shared by emit-llvm and the object writer: context, machine, module, O3. */
static int l_build_optimised(const Program *p, unsigned flags, EmitllTimes *times, FILE *err,
	LLVMContextRef *ctx_out, LLVMTargetMachineRef *tm_out, LLVMModuleRef *mod_out)
{
	LLVMTargetMachineRef tm = emitll_host_machine(err);
	if (!tm)
		return 2;
	LLVMContextRef ctx = LLVMContextCreate();
	double t0 = emitll_now();
	LLVMModuleRef m = emitll_module(p, ctx, tm, flags, err);
	double t1 = emitll_now();
	if (times)
		times->ir_build = t1 - t0;
	if (!m) {
		LLVMContextDispose(ctx);
		LLVMDisposeTargetMachine(tm);
		return 2;
	}
	if (!(flags & EMITLL_NO_OPT)) {
		if (emitll_optimize(m, tm, err) != 0) {
			LLVMDisposeModule(m);
			LLVMContextDispose(ctx);
			LLVMDisposeTargetMachine(tm);
			return 2;
		}
		if (times)
			times->opt = emitll_now() - t1;
	}
	*ctx_out = ctx;
	*tm_out = tm;
	*mod_out = m;
	return 0;
}

int emitll_write_ir(const Program *p, const char *path, unsigned flags, EmitllTimes *times, FILE *err)
{
	LLVMContextRef ctx;
	LLVMTargetMachineRef tm;
	LLVMModuleRef m;
	int rc = l_build_optimised(p, flags, times, err, &ctx, &tm, &m);
	if (rc)
		return rc;
	if (times)
		times->code_bytes = emitll_code_size(m, tm);
	char *text = LLVMPrintModuleToString(m);
	FILE *out = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
	if (!out) {
		fprintf(err, "plastc: error: %s: cannot write: %s\n", path, strerror(errno));
		rc = 1;
	} else {
		fputs(text, out);
		if (out != stdout ? fclose(out) != 0 : fflush(out) != 0) {
			fprintf(err, "plastc: error: %s: write failed\n", path);
			rc = 1;
		}
	}
	LLVMDisposeMessage(text);
	LLVMDisposeModule(m);
	LLVMContextDispose(ctx);
	LLVMDisposeTargetMachine(tm);
	return rc;
}

int emitll_object(const Program *p, const char *obj_path, unsigned flags, EmitllTimes *times, FILE *err)
{
	LLVMContextRef ctx;
	LLVMTargetMachineRef tm;
	LLVMModuleRef m;
	int rc = l_build_optimised(p, (flags | EMITLL_DESCRIPTOR) & ~(unsigned)EMITLL_NO_OPT, times, err, &ctx, &tm, &m);
	if (rc)
		return rc;
	double t0 = emitll_now();
	char *path = strdup(obj_path); /* the C API takes a non-const file name */
	char *msg = NULL;
	if (!path || LLVMTargetMachineEmitToFile(tm, m, path, LLVMObjectFile, &msg)) {
		fprintf(err, "plastc: error: %s: cannot write object file: %s\n", obj_path, msg ? msg : "out of memory");
		rc = 1;
	}
	free(path);
	LLVMDisposeMessage(msg);
	if (times) {
		times->codegen = emitll_now() - t0;
		times->code_bytes = emitll_code_size(m, tm);
	}
	LLVMDisposeModule(m);
	LLVMContextDispose(ctx);
	LLVMDisposeTargetMachine(tm);
	return rc;
}
