/* compiler/ir.h -- the typed tensor IR of one time step (SSA), its builder, verifier and printer.
 *
 * An IrFunc is a list of nodes in topological order; a node's operands always have smaller ids (SSA:
 * each node is one value, defined once). The op table is ops.def. Shapes are static per trial; the
 * batch dimension B is a flag on the shape and a run-time number (see ops.def header).
 *
 * Ownership: an IrFunc owns its node array and its name strings; ir_func_free releases everything.
 * Nodes are referred to by id (int), never by pointer, because the node array grows while passes
 * append to it (autodiff appends the backward graph to the function it differentiates).
 */
#ifndef PLASTC_IR_H
#define PLASTC_IR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "diag.h" /* SrcSpan */

enum {
	IRF_LEAF = 1 << 0,   /* no operands */
	IRF_EW = 1 << 1,     /* elementwise, broadcasting */
	IRF_SHAPE = 1 << 2,  /* moves or reduces elements */
	IRF_LINALG = 1 << 3, /* BLAS-shaped */
	IRF_NODIFF = 1 << 4, /* derivative identically zero */
	IRF_COMMUTE = 1 << 5,
};

typedef enum IrOp {
#define OP(name, nin, flags, doc) IR_##name,
#include "ops.def"
#undef OP
	IR_OP_COUNT
} IrOp;

typedef struct IrOpInfo {
	const char *name; /* lower case, as printed */
	int nin;
	unsigned flags;
	const char *doc;
} IrOpInfo;

extern const IrOpInfo ir_op_info[IR_OP_COUNT];

#define IR_MAX_RANK 3 /* per-trial rank; the batch dim comes on top */
#define IR_MAX_IN 2

typedef enum IrDType { IR_REAL = 0 } IrDType; /* float32 in generated code, float64 in the interpreter */

typedef struct IrShape {
	bool batch; /* carries the leading batch dimension B */
	int rank;   /* per-trial rank, 0..IR_MAX_RANK */
	int64_t d[IR_MAX_RANK];
} IrShape;

typedef struct IrNode {
	IrOp op;
	IrDType dtype;
	IrShape shape;
	int in[IR_MAX_IN]; /* operand ids, -1 when unused */
	double f;          /* CONST value */
	int64_t a[4];      /* integer attributes, see ops.def */
	SrcSpan loc;       /* the DSL text this value came from (zero span when synthetic) */
	char *name;        /* optional, for dumps and generated-code names ("enc.w", "h_b") */
} IrNode;

/* Role of a function input or output, so the runtime and the interpreter know what to bind. */
typedef enum IrRole {
	IR_ROLE_DATA,      /* x_t [B,I] */
	IR_ROLE_STATE,     /* a state tensor s (index = state table index) */
	IR_ROLE_PRED,      /* the prediction y_t [B,Oy] (output) */
	IR_ROLE_OUTPUTS,   /* all outputs o_t (output, optional) */
	IR_ROLE_STATE_BAR, /* adjoint of a state tensor */
	IR_ROLE_PRED_BAR,  /* adjoint of y_t (input of the VJP) */
	IR_ROLE_PARAM_BAR, /* gradient of a parameter (output of the VJP; accumulated with += by callers) */
	IR_ROLE_SCALAR,    /* a scalar output (e.g. the internal loss, for dumps) */
	IR_ROLE_STATE_NEXT,/* input of the VJP: a state tensor leaving the step (state_out, read; retime.c) */
} IrRole;

typedef struct IrPort {
	IrRole role;
	int index; /* state or parameter index for the roles that have one, else 0 */
	int node;  /* for inputs: the INPUT node; for outputs: the node whose value is returned */
	char *name;
} IrPort;

typedef struct IrFunc {
	char *name; /* "step_forward", "step_vjp" */
	IrNode *nodes;
	int n, cap;
	IrPort *ins;
	int nins, cap_ins;
	IrPort *outs;
	int nouts, cap_outs;
} IrFunc;

/* ---- shapes ---- */
IrShape ir_shape(bool batch, int rank, const int64_t *d);
IrShape ir_shape0(bool batch);                         /* per-trial scalar */
IrShape ir_shape1(bool batch, int64_t n);
IrShape ir_shape2(bool batch, int64_t m, int64_t n);
bool ir_shape_eq(IrShape a, IrShape b);
int64_t ir_shape_numel(IrShape s);                     /* per trial (excludes B) */
bool ir_shape_broadcast(IrShape a, IrShape b, IrShape *out); /* false if incompatible */
bool ir_shape_broadcastable_to(IrShape from, IrShape to);
int ir_shape_str(IrShape s, char *buf, size_t n);      /* "[B,16,256]", "[]" */

/* ---- functions and the builder ---- */
IrFunc *ir_func_new(const char *name);
void ir_func_free(IrFunc *f);
IrFunc *ir_func_clone(const IrFunc *f, const char *name);

/* Generic node append: checks operand count and infers the shape for ops whose shape follows from
 * their operands. For EXPAND, SUM_TO, RESHAPE, CONST, PARAM, INPUT the caller gives the shape.
 * Returns the node id. Aborts (internal error) on an ill-typed request: callers check user-facing
 * errors in sema, so reaching an ill-typed node here is a compiler bug. */
int ir_add(IrFunc *f, IrOp op, int a, int b, SrcSpan loc);
int ir_add_shaped(IrFunc *f, IrOp op, int a, int b, IrShape shape, SrcSpan loc);
int ir_const(IrFunc *f, double v, IrShape shape, SrcSpan loc);
int ir_param(IrFunc *f, int param_index, IrShape shape, const char *name);
int ir_input(IrFunc *f, IrRole role, int index, IrShape shape, const char *name); /* also appends to ins */
void ir_output(IrFunc *f, IrRole role, int index, int node, const char *name);
int ir_slice(IrFunc *f, int x, int64_t lo, int64_t hi, SrcSpan loc);
int ir_pad(IrFunc *f, int x, int64_t off, int64_t n, SrcSpan loc);
int ir_matmul(IrFunc *f, int A, int B, bool ta, bool tb, SrcSpan loc);
int ir_expand(IrFunc *f, int x, IrShape to, SrcSpan loc);   /* no-op (returns x) when shapes equal */
int ir_sum_to(IrFunc *f, int x, IrShape to, SrcSpan loc);   /* no-op (returns x) when shapes equal */
int ir_reshape(IrFunc *f, int x, IrShape to, SrcSpan loc);
void ir_set_name(IrFunc *f, int node, const char *name);
/* Image ops (ops.def): k = kernel or window side, s = stride, p = zero padding. conv2d_t and pool_scatter
 * take the shape of their result (the input image's [C,H,W] and batch flag), since with a stride the
 * output side does not determine the input side. */
int ir_conv2d(IrFunc *f, int x, int w, int64_t k, int64_t s, int64_t p, SrcSpan loc);
int ir_conv2d_t(IrFunc *f, int g, int w, IrShape to, int64_t k, int64_t s, int64_t p, SrcSpan loc);
int ir_conv2d_w(IrFunc *f, int x, int g, int64_t k, int64_t s, int64_t p, SrcSpan loc);
int ir_pool(IrFunc *f, IrOp op, int x, int idx, int64_t k, int64_t s, SrcSpan loc); /* maxpool, pool_argmax, pool_gather */
int ir_pool_scatter(IrFunc *f, int g, int idx, IrShape to, int64_t k, int64_t s, SrcSpan loc);
/* Output side of a convolution or pooling window over an input side n: (n + 2p - k)/s + 1, or 0 if the
 * window does not fit. */
int64_t ir_conv_out_side(int64_t n, int64_t k, int64_t s, int64_t p);

/* True for the ops whose result shape the caller gives (leaves but INV_BATCH, EXPAND, SUM_TO, RESHAPE,
 * CONV2D_T, POOL_SCATTER); the shape rule then only checks it. */
bool ir_op_shape_given(IrOp op);

/* The general append used by the helpers above, clone-like passes and tests: shape is required for
 * the ops of ir_op_shape_given, and optional (checked) for the rest; attrs may
 * be NULL (all zero). */
int ir_add_full(IrFunc *f, IrOp op, int a, int b, const IrShape *shape, double fv, const int64_t *attrs,
	SrcSpan loc);
/* The one shape rule of each op, shared by the builder and the verifier. For ops whose shape the
 * caller gives, *out holds it on entry and is only checked. Returns NULL or a static message. */
const char *ir_infer_shape(IrOp op, const IrShape *x, const IrShape *y, double f, const int64_t *a,
	IrShape *out);
const char *ir_op_name(IrOp op);      /* lower case, as printed */
const char *ir_role_name(IrRole r);   /* "data", "pred_bar", ... */
/* Prints "plastc: internal error: ..." to stderr and exits with status 2. */
void ir_fatal(const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 1, 2), noreturn))
#endif
	;

static inline IrNode *ir_node(IrFunc *f, int id) { return &f->nodes[id]; }

/* ---- verifier and printer ---- */
/* Checks SSA order, operand counts, shapes against ops.def rules, ports. Returns 0 if valid; else
 * prints "internal error: ..." lines to err naming the function, node and problem and returns -1. */
int ir_verify(const IrFunc *f, FILE *err);
/* Stable text form, one node per line:  %12 = mul %3, %11 : [B,16]   ; enc.z  @ file:line */
void ir_print(const IrFunc *f, FILE *out);
void ir_print_node(const IrFunc *f, int id, FILE *out);
void ir_fmt_double(double v, char *buf, size_t n); /* shortest text that reads back exactly */

#endif
