/* compiler/emit_c.c -- the C backend (see emit_c.h and docs/backends.md).
 *
 * Shape of the output. Each step function declares, at its top, one pointer per value it touches:
 * parameters and inputs point into PlStepArgs, every other value into its memory-plan slot of the
 * scratch block (memplan.h), named after the IR value (adjoints end in _b). Then each IR node becomes
 * one block, preceded by its IR text as a comment and a #line directive to its DSL line, whose local
 * `restrict` pointers (out, in0, in1) let gcc vectorise without run-time alias checks: the plan never
 * gives a node the storage of its own operands. Results are copied into the caller's buffers at the end
 * (parameter gradients accumulated).
 *
 * Elementwise ops, EXPAND and SUM_TO go through one loop-nest generator: the index space of the value
 * (batch dim first, then the per-trial dims) with a stride per operand (0 where it broadcasts), from
 * which extent-1 dims are dropped and adjacent dims merged whenever every operand is contiguous across
 * them. So the common cases come out as the loops one would write by hand:
 *     same shapes                  one flat loop over B*n
 *     [B] scalar times [B,i,o]     for b { s = x[b]; for k < i*o: out[b*i*o+k] = s * y[b*i*o+k] }
 *     [i,o] plus [B,i,o]           for b { for k < i*o: out[b*i*o+k] = w[k] + y[b*i*o+k] }
 * The innermost loop always has stride 1 or 0 per operand; a stride-0 operand is hoisted into a
 * scalar, and a reduction into a stride-0 destination (SUM_TO over the last axis) accumulates into a
 * local under `#pragma omp simd reduction`, because gcc -O3 will not reorder a float sum by itself
 * (docs/backends.md; the binary is built with -fopenmp-simd).
 */
#include "emit_c.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "memplan.h"

#define EM_MAX_DIMS (IR_MAX_RANK + 1)
#define EM_MAX_OPS 3 /* destination + two sources */
#define EM_PART 48   /* IR nodes per part function (see emit_function) */
#define EM_MAX_LEAVES 8 /* arrays read by one loop nest (fusion stops there) */
#define EM_GROUP_MAX 12 /* loop nests merged into one by plan_groups */
#define EM_NEST_CAP (EM_GROUP_MAX * (EM_MAX_LEAVES + 1)) /* arrays (outputs and inputs) of one merged nest */

static const char part_attr[] = "#if defined(__GNUC__)\n__attribute__((noinline))\n#endif\nstatic void ";

typedef struct Em {
	const Program *p;
	EmitcOptions o;
	FILE *out;
	FILE *err;
	char pre[128];     /* symbol prefix */
	char c_name[256];  /* for #line returning to the C file */
	const char *real;  /* "float" or "double" */
	const char *fsuf;  /* math function suffix: "f" or "" */
	/* current function */
	const IrFunc *f;
	MemPlan *mp;
	char **var;       /* [n] C name of each value (NULL: a scalar written into the code) */
	int *last;        /* [n] last reader, n for outputs, -1 when dead */
	int *direct;      /* [n] output port the value is computed into in place, or -1 */
	bool *acc_direct; /* [n] ... and that port is a parameter gradient the value is added to (+=) */
	int *fuse;        /* [n] the node whose loop computes this value inline, or -1 (stored) */
	int *grp;         /* [n] next node whose loop nest is merged with this one's (plan_groups), or -1 */
	bool *in_grp;     /* [n] a later member of a merged group (emitted with the group's first node) */
	bool *nostore;    /* [n] a member of a merged group whose value only its group reads, at the point
	                   * where it is computed: kept in a local, never stored (plan_nostore) */
	int *inplace_in;  /* [n] for a state adjoint computed into state_in_bar[j] in place of the incoming
			   * state_out_bar[j]: that input node (plan_bar_in_place), else -1 */
	unsigned char *bar_ok; /* [n_state] of the Program: PlModel.bar_in_place (set by the VJP's emission) */
	bool in_src;      /* the last #line points into the .plast file */
	char **used;      /* names taken in this function */
	int nused;
	int failed;
} Em;

static void *em_alloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		ir_fatal("out of memory");
	return p;
}

static char *em_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = em_alloc(n);
	memcpy(d, s, n);
	return d;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void out(Em *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(e->out, fmt, ap);
	va_end(ap);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void fail(Em *e, const char *fmt, ...)
{
	va_list ap;
	if (e->failed++)
		return;
	fprintf(e->err, "plastc: internal error: emit-c: %s: ", e->f ? e->f->name : "model");
	va_start(ap, fmt);
	vfprintf(e->err, fmt, ap);
	va_end(ap);
	fputc('\n', e->err);
}

/* ---- names ---- */

void emitc_symbol_prefix(const Program *p, char *buf, size_t n)
{
	const char *s = p->name && p->name[0] ? p->name : "model";
	size_t k = 0;
	if (n == 0)
		return;
	if (isdigit((unsigned char)s[0]) && k + 1 < n)
		buf[k++] = '_';
	for (; *s && k + 1 < n; s++)
		buf[k++] = isalnum((unsigned char)*s) || *s == '_' ? *s : '_';
	buf[k] = 0;
}

/* Names the generated functions use for themselves, C keywords and the math functions we call: a value
 * named like one of them gets its node id appended. */
static const char *const reserved[] = {
	"a", "B", "w", "b", "i", "j", "k", "r", "s", "acc", "out", "in0", "in1", "real", "inv_batch",
	"auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
	"extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
	"short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
	"volatile", "while", "exp", "expf", "log", "logf", "sqrt", "sqrtf", "fabs", "fabsf", "tanh", "tanhf",
	"main", "size_t", "NULL",
};

static bool name_taken(Em *e, const char *s)
{
	for (size_t k = 0; k < sizeof reserved / sizeof *reserved; k++)
		if (strcmp(reserved[k], s) == 0)
			return true;
	for (int k = 0; k < e->nused; k++)
		if (strcmp(e->used[k], s) == 0)
			return true;
	if (strncmp(s, e->pre, strlen(e->pre)) == 0)
		return true; /* keep clear of our file-scope symbols */
	return s[0] == '_' || strncmp(s, "cblas", 5) == 0 || strncmp(s, "op_", 3) == 0 || strncmp(s, "pl_", 3) == 0 ||
		strncmp(s, "Pl", 2) == 0 || strncmp(s, "PL_", 3) == 0;
}

/* A unique C identifier for value id: its IR name made an identifier ("enc.z_b" -> "enc_z_b"), or
 * t<id> for unnamed values; the id is appended on a clash. */
static char *value_name(Em *e, int id)
{
	const char *nm = e->f->nodes[id].name;
	char buf[96];
	size_t k = 0;
	if (nm && nm[0]) {
		if (isdigit((unsigned char)nm[0]))
			buf[k++] = 'v';
		/* '~' marks the plastic part of a weight in the DSL ("cell.w_hh~"): spell it _p */
		for (; *nm && k + 3 < 64; nm++) {
			if (*nm == '~') {
				buf[k++] = '_';
				buf[k++] = 'p';
			} else {
				buf[k++] = isalnum((unsigned char)*nm) || *nm == '_' ? *nm : '_';
			}
		}
		buf[k] = 0;
		while (k > 1 && buf[k - 1] == '_')
			buf[--k] = 0;
	} else {
		snprintf(buf, sizeof buf, "t%d", id);
	}
	if (name_taken(e, buf)) {
		size_t len = strlen(buf);
		snprintf(buf + len, sizeof buf - len, "_%d", id);
	}
	e->used[e->nused++] = em_strdup(buf);
	return em_strdup(buf);
}

/* ---- literals ---- */

static void fmt_real(Em *e, double v, char *buf, size_t n)
{
	char num[48];
	if (isnan(v)) {
		snprintf(buf, n, "NAN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, n, v > 0 ? "INFINITY" : "(-INFINITY)");
		return;
	}
	ir_fmt_double(v, num, sizeof num);
	bool intlike = strspn(num, "-0123456789") == strlen(num);
	snprintf(buf, n, "%s%s%s%s%s", v < 0 ? "(" : "", num, intlike ? ".0" : "",
		e->o.use_double ? "" : "f", v < 0 ? ")" : "");
}

/* C string literal body of s (quotes and backslashes escaped, control bytes as octal) */
static void put_cstring(Em *e, const char *s)
{
	fputc('"', e->out);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(e->out, "\\%c", c);
		else if (c < 32 || c == 127)
			fprintf(e->out, "\\%03o", c);
		else
			fputc(c, e->out);
	}
	fputc('"', e->out);
}

/* ---- extents and index expressions ---- */

/* "B * 16", "16", "B" */
static void fmt_extent(char *buf, size_t n, int64_t c, bool batch)
{
	if (!batch)
		snprintf(buf, n, "%" PRId64, c);
	else if (c == 1)
		snprintf(buf, n, "B");
	else
		snprintf(buf, n, "B * %" PRId64, c);
}

/* Appends " + v * st" (or the simplest equivalent) to buf. */
static void add_term(char *buf, size_t n, const char *v, int64_t st)
{
	size_t len = strlen(buf);
	if (st == 0)
		return;
	if (len == 0) {
		if (st == 1)
			snprintf(buf, n, "%s", v);
		else
			snprintf(buf, n, "%s * %" PRId64, v, st);
	} else {
		if (st == 1)
			snprintf(buf + len, n - len, " + %s", v);
		else
			snprintf(buf + len, n - len, " + %s * %" PRId64, v, st);
	}
}

/* ---- operands ---- */

/* The element of value id at index expression idx ("" = 0), as C text. */
static void elem(Em *e, int id, const char *local, const char *idx, char *buf, size_t n)
{
	const IrNode *nd = &e->f->nodes[id];
	if (!e->var[id]) {
		if (nd->op == IR_CONST)
			fmt_real(e, nd->f, buf, n);
		else
			snprintf(buf, n, "inv_batch"); /* INV_BATCH */
		return;
	}
	snprintf(buf, n, "%s[%s]", local, idx[0] ? idx : "0");
}

/* CONST without a slot and INV_BATCH: written into the code as a literal or a local scalar */
static bool is_scalar_leaf(Em *e, int id)
{
	const IrNode *nd = &e->f->nodes[id];
	return nd->op == IR_INV_BATCH || (nd->op == IR_CONST && !e->mp->has_slot[id]);
}

/* ---- loop nests ---- */

/* An index space and the arrays read or written in it, each with a stride per dim: leaf 0 is the
 * destination, the others the array operands of the expression tree computed there. ext[k] counts B
 * times when batch[k] (only dim 0 can). */
typedef struct Nest {
	int nd;
	int64_t ext[EM_MAX_DIMS];
	bool batch[EM_MAX_DIMS];
	int nleaf;
	int64_t st[EM_NEST_CAP][EM_MAX_DIMS];
	int leaf_node[EM_NEST_CAP];
	bool is_out[EM_NEST_CAP]; /* leaf written by the nest (a merged group has several) */
	bool assign[EM_NEST_CAP]; /* output leaf stored at each point (out = expr, not a sum) */
	/* a leaf read at the very point where an earlier member of the group stores it: 1 + that output's
	 * leaf, whose value the loop body keeps in a local (v<leaf>) for the reader; 0 = an array read */
	int alias1[EM_NEST_CAP];
} Nest;

/* The expression computed at each point of a nest: a tree of elementwise ops over leaves (arrays of
 * the nest) and literals (scalar leaves of the IR: CONST, INV_BATCH). */
enum { EX_LEAF = -1, EX_LIT = -2 };
typedef struct ExNode {
	int op;   /* IrOp, or EX_LEAF / EX_LIT */
	int kid[2];
	int leaf; /* EX_LEAF: index in the nest */
	int node; /* EX_LIT: the IR node */
} ExNode;

typedef struct Tree {
	ExNode n[EM_GROUP_MAX * (4 * EM_MAX_LEAVES + 8)];
	int nn;
} Tree;

/* The index space of shape s: [B or 1, d0, ..., d_{r-1}] */
static void nest_space(Nest *n, IrShape s)
{
	memset(n, 0, sizeof *n);
	n->nd = s.rank + 1;
	n->ext[0] = 1;
	n->batch[0] = s.batch;
	for (int k = 0; k < s.rank; k++)
		n->ext[k + 1] = s.d[k];
}

/* Strides of a value of shape s, viewed with `pad` extra trailing dims of extent 1, read as the space of
 * n (numpy broadcasting: right-aligned, extent-1 and missing dims have stride 0). Broadcasts compose:
 * if x broadcasts to y and y to the space, x's strides in the space are these, so a leaf deep in a fused
 * tree is placed directly. pad is how the per-trial ops place a vector on the row axis of a matrix
 * (x of bmv and a of outer are read as [B,I,1]). */
static void nest_strides_pad(const Nest *n, IrShape s, int pad, int64_t *st)
{
	int64_t acc = 1;
	int r = s.rank + pad;
	for (int k = n->nd - 1; k >= 1; k--) {
		int j = r - (n->nd - k);
		if (j >= s.rank || j < 0) {
			st[k] = 0;
		} else {
			st[k] = s.d[j] == 1 ? 0 : acc;
			acc *= s.d[j];
		}
	}
	st[0] = s.batch ? acc : 0;
}

static void nest_strides(const Nest *n, IrShape s, int64_t *st)
{
	nest_strides_pad(n, s, 0, st);
}

/* Drops extent-1 dims and merges neighbours that every leaf traverses contiguously. */
static void nest_simplify(Nest *n)
{
	int k = 0;
	for (int d = 0; d < n->nd; d++) {
		if (n->ext[d] == 1 && !n->batch[d])
			continue;
		n->ext[k] = n->ext[d];
		n->batch[k] = n->batch[d];
		for (int q = 0; q < n->nleaf; q++)
			n->st[q][k] = n->st[q][d];
		k++;
	}
	n->nd = k;
	for (int d = n->nd - 2; d >= 0; d--) {
		bool ok = true;
		for (int q = 0; q < n->nleaf; q++)
			if (n->st[q][d] != n->st[q][d + 1] * n->ext[d + 1])
				ok = false;
		if (!ok)
			continue;
		n->ext[d] *= n->ext[d + 1];
		for (int q = 0; q < n->nleaf; q++)
			n->st[q][d] = n->st[q][d + 1];
		for (int m = d + 1; m + 1 < n->nd; m++) {
			n->ext[m] = n->ext[m + 1];
			n->batch[m] = n->batch[m + 1];
			for (int q = 0; q < n->nleaf; q++)
				n->st[q][m] = n->st[q][m + 1];
		}
		n->nd--;
	}
	if (n->nd == 0) {
		n->nd = 1;
		n->ext[0] = 1;
		n->batch[0] = false;
		for (int q = 0; q < n->nleaf; q++)
			n->st[q][0] = 0;
	}
}

static int tree_op(Tree *t, int op, int k0, int k1)
{
	if (t->nn >= (int)(sizeof t->n / sizeof *t->n))
		ir_fatal("emit-c: expression tree too large");
	ExNode *x = &t->n[t->nn];
	x->op = op;
	x->kid[0] = k0;
	x->kid[1] = k1;
	x->leaf = x->node = -1;
	return t->nn++;
}

static int tree_value(Em *e, Nest *n, Tree *t, int id, int pad);

/* The tree of node id's own op over its operands (id being a root or a fused value). */
static int tree_of_op(Em *e, Nest *n, Tree *t, int id, int pad)
{
	const IrNode *nd = &e->f->nodes[id];
	if (nd->op == IR_EXPAND)
		return tree_value(e, n, t, nd->in[0], pad);
	if (nd->op == IR_OUTER) /* a[b,i] c[b,j]: a on the row axis */
		return tree_op(t, IR_MUL, tree_value(e, n, t, nd->in[0], pad + 1), tree_value(e, n, t, nd->in[1], pad));
	int k0 = tree_value(e, n, t, nd->in[0], pad);
	int k1 = ir_op_info[nd->op].nin > 1 ? tree_value(e, n, t, nd->in[1], pad) : -1;
	return tree_op(t, nd->op, k0, k1);
}

/* The tree reading value id: its fused expression, a literal, or a new leaf. */
static int tree_value(Em *e, Nest *n, Tree *t, int id, int pad)
{
	const IrNode *nd = &e->f->nodes[id];
	if (e->fuse[id] >= 0)
		return tree_of_op(e, n, t, id, pad);
	if (is_scalar_leaf(e, id)) {
		int k = tree_op(t, EX_LIT, -1, -1);
		t->n[k].node = id;
		return k;
	}
	/* an array the nest already reads at the same point is the same leaf: in a merged nest the members'
	 * trees then spell a shared value (the adjoint of a plastic matrix, recomputed inline in each) with
	 * the same variables, so the C compiler computes it once per point */
	int64_t st[EM_MAX_DIMS] = {0};
	nest_strides_pad(n, nd->shape, pad, st);
	int q = -1;
	for (int r = 0; r < n->nleaf && q < 0; r++)
		if (!n->is_out[r] && n->leaf_node[r] == id && memcmp(n->st[r], st, sizeof st) == 0)
			q = r;
	if (q < 0) {
		if (n->nleaf >= EM_NEST_CAP)
			ir_fatal("emit-c: %s: too many arrays in one loop nest", e->f->name);
		q = n->nleaf++;
		n->leaf_node[q] = id;
		memcpy(n->st[q], st, sizeof st);
	}
	int k = tree_op(t, EX_LEAF, -1, -1);
	t->n[k].leaf = q;
	return k;
}

static char *xprintf(const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 1, 2)))
#endif
	;

static char *xprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = em_alloc((size_t)len + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)len + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* The C expression of an elementwise op over the operand texts a and b (caller frees). */
static char *ew_expr(Em *e, int op, const char *a, const char *b)
{
	const char *fs = e->fsuf;
	switch (op) {
	case IR_NEG: return xprintf("-%s", a);
	case IR_EXP: return xprintf("exp%s(%s)", fs, a);
	case IR_LOG: return xprintf("log%s(%s)", fs, a);
	case IR_SQRT: return xprintf("sqrt%s(%s)", fs, a);
	case IR_SQUARE: return xprintf("op_square(%s)", a);
	case IR_ABS: return xprintf("fabs%s(%s)", fs, a);
	case IR_RELU: return xprintf("op_relu(%s)", a);
	case IR_TANH: return xprintf("tanh%s(%s)", fs, a);
	case IR_SIGMOID: return xprintf("op_sigmoid(%s)", a);
	case IR_STEP: return xprintf("op_step(%s)", a);
	case IR_SIGN: return xprintf("op_sign(%s)", a);
	case IR_ADD: return xprintf("%s + %s", a, b);
	case IR_SUB: return xprintf("%s - %s", a, b);
	case IR_MUL: return xprintf("%s * %s", a, b);
	case IR_DIV: return xprintf("%s / %s", a, b);
	case IR_MAX: return xprintf("op_max(%s, %s)", a, b);
	case IR_MIN: return xprintf("op_min(%s, %s)", a, b);
	default: fail(e, "no elementwise expression for %s", ir_op_name((IrOp)op)); return xprintf("0");
	}
}

/* The text of tree node k; leaves are the strings in leaf[]. Inner ops are parenthesised. */
static char *tree_str(Em *e, const Tree *t, int k, char *const *leaf, bool top)
{
	const ExNode *x = &t->n[k];
	if (x->op == EX_LEAF)
		return xprintf("%s", leaf[x->leaf]);
	if (x->op == EX_LIT) {
		char buf[64];
		elem(e, x->node, "", "", buf, sizeof buf);
		return xprintf("%s", buf);
	}
	char *a = tree_str(e, t, x->kid[0], leaf, false);
	char *b = x->kid[1] >= 0 ? tree_str(e, t, x->kid[1], leaf, false) : xprintf("%s", "");
	char *s = ew_expr(e, x->op, a, b);
	free(a);
	free(b);
	if (top)
		return s;
	char *p = xprintf("(%s)", s);
	free(s);
	return p;
}

typedef enum NestKind {
	NEST_ASSIGN, /* out = expr */
	NEST_ACCUM,  /* out += expr */
} NestKind;

/* Moves the batch loop of n from outermost to just outside the inner loop when some leaf is the same
 * for every trial but not for every row (a static matrix read, or a parameter gradient accumulated, such
 * as alpha and its gradient in the plastic layer's nests): the loop order becomes rows, trials, columns,
 * so that leaf's row is fetched once per block of trials and stays in L1 across them, instead of the
 * whole matrix being streamed once per trial. The points of a nest are independent (its outputs are
 * apart from its inputs, and a merged member reads another's output only at the same point, alias1),
 * and every output element still receives its terms in the same order of each loop index, so results
 * do not change. The only cost is that per-trial vectors summed over the rows ([B,n] results of bmvt)
 * are touched B rows at a time, which at the block sizes the runtime uses stays in L1 or L2. */
static void nest_batch_inner(Em *e, Nest *n)
{
	int inner = n->nd - 1;
	if (e->o.no_batch_inner || inner < 2 || !n->batch[0])
		return;
	bool shared = false;
	for (int q = 0; q < n->nleaf && !shared; q++) {
		if (n->st[q][0] != 0)
			continue;
		for (int d = 1; d < inner; d++)
			if (n->st[q][d] != 0)
				shared = true;
	}
	if (!shared)
		return;
	int to = inner - 1;
	int64_t ext = n->ext[0];
	for (int d = 0; d < to; d++) {
		n->ext[d] = n->ext[d + 1];
		n->batch[d] = n->batch[d + 1];
	}
	n->ext[to] = ext;
	n->batch[to] = true;
	for (int q = 0; q < n->nleaf; q++) {
		int64_t s0 = n->st[q][0];
		for (int d = 0; d < to; d++)
			n->st[q][d] = n->st[q][d + 1];
		n->st[q][to] = s0;
	}
}

static void indent(Em *e, int depth)
{
	for (int k = 0; k < depth; k++)
		fputc('\t', e->out);
}

/* Emits the loops of n computing m trees (root[k], kind[k]) into the output leaves outl[k]. One output
 * (leaf 0) is named `out`, as emit_node declares it; the outputs of a merged group (plan_groups) are
 * o0, o1, ... The other leaves' arrays are in1, in2, ... (declared here, restrict: the memory plan keeps
 * them apart from the outputs, and plan_groups checks that for merged nests). In the inner loop a
 * reduction (an output that does not move along it) sums in a local so the loop vectorises (see the file
 * comment); the other outputs are stored at each point. */
static void emit_nest_multi(Em *e, Nest *n, const Tree *t, const int *root, const NestKind *kind,
	const int *outl, int m, int depth, const bool *noalias)
{
	char idx[EM_NEST_CAP][200], ext[64], var[16];
	char *leaf[EM_NEST_CAP] = {NULL};
	char oname[EM_GROUP_MAX][16];
	for (int k = 0; k < m; k++) {
		if (m == 1)
			snprintf(oname[k], sizeof oname[k], "out");
		else
			snprintf(oname[k], sizeof oname[k], "o%d", k);
	}
	bool keep[EM_NEST_CAP] = {false}; /* outputs whose value a later member reads (alias1) */
	for (int q = 0; q < n->nleaf; q++) {
		if (n->alias1[q])
			keep[n->alias1[q] - 1] = true;
		if (n->is_out[q] || n->alias1[q])
			continue;
		indent(e, depth);
		out(e, "const real *%sin%d = %s;\n", noalias && noalias[q] ? "" : "restrict ", q, e->var[n->leaf_node[q]]);
	}
	nest_simplify(n);
	nest_batch_inner(e, n);
	int inner = n->nd - 1;
	for (int q = 0; q < n->nleaf; q++)
		idx[q][0] = 0;
	for (int d = 0; d < inner; d++) {
		snprintf(var, sizeof var, "i%d", d);
		fmt_extent(ext, sizeof ext, n->ext[d], n->batch[d]);
		indent(e, depth + d);
		out(e, "for (long %s = 0; %s < %s; %s++)%s\n", var, var, ext, var, d + 1 < inner ? "" : " {");
		for (int q = 0; q < n->nleaf; q++)
			add_term(idx[q], sizeof idx[q], var, n->st[q][d]);
	}
	int dd = depth + inner;
	fmt_extent(ext, sizeof ext, n->ext[inner], n->batch[inner]);
	/* leaves that do not move in the inner loop become scalars read once */
	for (int q = 0; q < n->nleaf; q++) {
		if (n->is_out[q])
			continue;
		if (n->alias1[q]) {
			leaf[q] = xprintf("v%d", n->alias1[q] - 1);
			continue;
		}
		if (n->st[q][inner] == 0) {
			indent(e, dd);
			out(e, "const real s%d = in%d[%s];\n", q, q, idx[q][0] ? idx[q] : "0");
			leaf[q] = xprintf("s%d", q);
		} else {
			char ix[240];
			snprintf(ix, sizeof ix, "%.200s", idx[q]);
			add_term(ix, sizeof ix, "i", n->st[q][inner]);
			leaf[q] = xprintf("in%d[%s]", q, ix);
		}
	}
	char *ex[EM_GROUP_MAX];
	bool red[EM_GROUP_MAX];
	char accs[200] = "";
	for (int k = 0; k < m; k++) {
		ex[k] = tree_str(e, t, root[k], leaf, true);
		red[k] = kind[k] == NEST_ACCUM && n->st[outl[k]][inner] == 0;
		if (red[k]) {
			char a1[24];
			snprintf(a1, sizeof a1, "%sacc%s", accs[0] ? "," : "", m == 1 ? "" : oname[k] + 1);
			strncat(accs, a1, sizeof accs - strlen(accs) - 1);
			indent(e, dd);
			out(e, "real acc%s = 0;\n", m == 1 ? "" : oname[k] + 1);
		}
	}
	if (accs[0]) {
		indent(e, dd);
		out(e, "#pragma omp simd reduction(+:%s)\n", accs);
	} else if (m > 1) {
		/* a merged nest: its points are independent (restrict arrays, values handed over in locals), but
		 * gcc's own analysis gives up on some of them ("complicated access pattern") */
		indent(e, dd);
		out(e, "#pragma omp simd\n");
	}
	indent(e, dd);
	out(e, "for (long i = 0; i < %s; i++)%s\n", ext, m == 1 ? "" : " {");
	for (int k = 0; k < m; k++) {
		indent(e, dd + 1);
		if (red[k]) {
			out(e, "acc%s += %s;\n", m == 1 ? "" : oname[k] + 1, ex[k]);
		} else {
			char dix[240];
			snprintf(dix, sizeof dix, "%.200s", idx[outl[k]]);
			add_term(dix, sizeof dix, "i", n->st[outl[k]][inner]);
			if (m > 1 && e->nostore && e->nostore[n->leaf_node[outl[k]]]) {
				out(e, "const real v%d = %s;\n", outl[k], ex[k]); /* a later member reads it (alias1) */
			} else if (noalias && noalias[outl[k]]) {
				/* may share its buffer with an input read at this element (bar_in_place): stored
				 * after every member has read it */
				out(e, "const real v%d = %s;\n", outl[k], ex[k]);
			} else if (keep[outl[k]]) {
				out(e, "const real v%d = %s;\n", outl[k], ex[k]);
				indent(e, dd + 1);
				out(e, "%s[%s] = v%d;\n", oname[k], dix[0] ? dix : "0", outl[k]);
			} else {
				out(e, "%s[%s] %s= %s;\n", oname[k], dix[0] ? dix : "0", kind[k] == NEST_ACCUM ? "+" : "",
					ex[k]);
			}
		}
	}
	for (int k = 0; k < m; k++) {
		if (red[k] || !noalias || !noalias[outl[k]])
			continue;
		char dix[240];
		snprintf(dix, sizeof dix, "%.200s", idx[outl[k]]);
		add_term(dix, sizeof dix, "i", n->st[outl[k]][inner]);
		indent(e, dd + 1);
		out(e, "%s[%s] = v%d;\n", oname[k], dix[0] ? dix : "0", outl[k]);
	}
	if (m > 1) {
		indent(e, dd);
		out(e, "}\n");
	}
	for (int k = 0; k < m; k++) {
		if (!red[k])
			continue;
		indent(e, dd);
		out(e, "%s[%s] += acc%s;\n", oname[k], idx[outl[k]][0] ? idx[outl[k]] : "0", m == 1 ? "" : oname[k] + 1);
	}
	if (inner > 0) {
		indent(e, depth + inner - 1);
		out(e, "}\n");
	}
	for (int k = 0; k < m; k++)
		free(ex[k]);
	for (int q = 0; q < n->nleaf; q++)
		free(leaf[q]);
}

/* ---- per-op code ---- */

static const IrShape *shape(Em *e, int id)
{
	return &e->f->nodes[id].shape;
}

/* declares `const real *restrict inK = <var>;` for array operands */
static void declare_in(Em *e, int k, int id)
{
	if (!is_scalar_leaf(e, id))
		out(e, "\t\tconst real *restrict in%d = %s;\n", k, e->var[id]);
}

static int64_t numel(IrShape s)
{
	return ir_shape_numel(s);
}

/* out[0 .. n) = 0 */
static void emit_zero(Em *e, const char *dst, IrShape s, int depth)
{
	char ext[64];
	fmt_extent(ext, sizeof ext, numel(s), s.batch);
	indent(e, depth);
	out(e, "for (long i = 0; i < %s; i++)\n", ext);
	indent(e, depth + 1);
	out(e, "%s[i] = 0;\n", dst);
}

/* Every op computed by a loop nest (elementwise, expand, outer, sum_to, bmv, bmvt), with the values
 * fused into it (e->fuse) inlined into its expression:
 *   elementwise, expand, outer   out = tree over the value's space
 *   sum_to                       out = 0; out += operand over the operand's space (0 strides on summed dims)
 *   bmv   y[b,j] = sum_i x[b,i] W[b,i,j]    space [B,I,J], x read as [B,I,1], y as [B,1,J]
 *   bmvt  y[b,i] = sum_j W[b,i,j] g[b,j]    space [B,I,J], y read as [B,I,1] (a reduction over j)
 * so bmv's inner loop is an axpy along the contiguous j and bmvt's a dot product (simd reduction). */
/* The shape of the index space node id's loop nest runs over (see emit_nest_op) */
static IrShape nest_space_shape(const IrFunc *f, int id)
{
	const IrNode *nd = &f->nodes[id];
	if (nd->op == IR_SUM_TO || nd->op == IR_BMVT)
		return f->nodes[nd->in[0]].shape;
	if (nd->op == IR_BMV)
		return f->nodes[nd->in[1]].shape;
	return nd->shape;
}

/* Adds node id's output leaf and expression tree to n (whose space is nest_space_shape(id)); returns
 * the tree's root and sets *kind and *outl (the output's leaf). */
static int nest_add(Em *e, Nest *n, Tree *t, int id, NestKind *kind, int *outl)
{
	const IrNode *nd = &e->f->nodes[id];
	int o = n->nleaf++;
	if (o >= EM_NEST_CAP)
		ir_fatal("emit-c: %s: too many arrays in one loop nest", e->f->name);
	n->leaf_node[o] = id;
	n->is_out[o] = true;
	*outl = o;
	*kind = NEST_ACCUM;
	switch (nd->op) {
	case IR_SUM_TO:
		nest_strides(n, nd->shape, n->st[o]);
		return tree_value(e, n, t, nd->in[0], 0);
	case IR_BMV:
		nest_strides(n, nd->shape, n->st[o]);
		return tree_op(t, IR_MUL, tree_value(e, n, t, nd->in[0], 1), tree_value(e, n, t, nd->in[1], 0));
	case IR_BMVT:
		nest_strides_pad(n, nd->shape, 1, n->st[o]);
		return tree_op(t, IR_MUL, tree_value(e, n, t, nd->in[0], 0), tree_value(e, n, t, nd->in[1], 0));
	default:
		*kind = NEST_ASSIGN;
		n->assign[o] = true;
		nest_strides(n, nd->shape, n->st[o]);
		return tree_of_op(e, n, t, id, 0);
	}
}

/* Every op computed by a loop nest (elementwise, expand, outer, sum_to, bmv, bmvt), with the values
 * fused into it (e->fuse) inlined into its expression:
 *   elementwise, expand, outer   out = tree over the value's space
 *   sum_to                       out = 0; out += operand over the operand's space (0 strides on summed dims)
 *   bmv   y[b,j] = sum_i x[b,i] W[b,i,j]    space [B,I,J], x read as [B,I,1], y as [B,1,J]
 *   bmvt  y[b,i] = sum_j W[b,i,j] g[b,j]    space [B,I,J], y read as [B,I,1] (a reduction over j)
 * so bmv's inner loop is an axpy along the contiguous j and bmvt's a dot product (simd reduction). */
static void emit_nest_op(Em *e, int id)
{
	const IrNode *nd = &e->f->nodes[id];
	Nest n;
	Tree t;
	t.nn = 0;
	nest_space(&n, nest_space_shape(e->f, id));
	if (nd->op == IR_BMV)
		out(e, "\t\t/* out[b,j] = sum_i x[b,i] W[b,i,j] */\n");
	else if (nd->op == IR_BMVT)
		out(e, "\t\t/* out[b,i] = sum_j W[b,i,j] g[b,j] */\n");
	NestKind kind;
	int outl;
	int root = nest_add(e, &n, &t, id, &kind, &outl);
	if (kind == NEST_ACCUM && !e->acc_direct[id])
		emit_zero(e, "out", nd->shape, 2);
	emit_nest_multi(e, &n, &t, &root, &kind, &outl, 1, 2, NULL);
}

static bool nest_link(Em *e, Nest *n, int q, int before);

/* A merged group (plan_groups): the loop nests of first and the nodes chained by e->grp after it, all
 * over the same index space, as one nest that computes every output at each point. */
static void emit_group(Em *e, int first)
{
	Nest n;
	Tree t;
	t.nn = 0;
	nest_space(&n, nest_space_shape(e->f, first));
	int root[EM_GROUP_MAX], outl[EM_GROUP_MAX], mem[EM_GROUP_MAX], m = 0;
	NestKind kind[EM_GROUP_MAX];
	for (int id = first; id >= 0; id = e->grp[id]) {
		if (m >= EM_GROUP_MAX)
			ir_fatal("emit-c: loop group too large");
		int before = n.nleaf;
		mem[m] = id;
		root[m] = nest_add(e, &n, &t, id, &kind[m], &outl[m]);
		for (int q = before; q < n.nleaf; q++)
			if (!nest_link(e, &n, q, before)) {
				for (int o = 0; o < before; o++)
					if (n.is_out[o] && n.leaf_node[o] == n.leaf_node[q])
						ir_fatal("emit-c: a merged nest reads the result of its member %%%d", n.leaf_node[q]);
			}
		m++;
	}
	/* an in-place state adjoint (plan_bar_in_place): every read of the incoming adjoint in this nest must
	 * be at the element the member stores; otherwise the adjoint keeps its two buffers */
	bool noalias[EM_NEST_CAP] = {false};
	for (int k = 0; k < m; k++) {
		int x = e->inplace_in ? e->inplace_in[mem[k]] : -1;
		if (x < 0)
			continue;
		bool same = kind[k] != NEST_ACCUM;
		for (int q = 0; q < n.nleaf; q++)
			if (!n.is_out[q] && n.leaf_node[q] == x &&
				memcmp(n.st[q], n.st[outl[k]], sizeof n.st[q]) != 0)
				same = false;
		const IrPort *pt = &e->f->outs[e->direct[mem[k]]];
		if (!same) {
			e->inplace_in[mem[k]] = -1;
			e->bar_ok[pt->index] = 0;
			continue;
		}
		noalias[outl[k]] = true;
		for (int q = 0; q < n.nleaf; q++)
			if (!n.is_out[q] && n.leaf_node[q] == x)
				noalias[q] = true;
	}
	for (int k = 0; k < m; k++) {
		if (e->nostore[mem[k]]) {
			out(e, "\t\t/* o%d = %s: not stored, only later members read it (plan_nostore) */\n", k,
				e->var[mem[k]]);
			continue;
		}
		out(e, "\t\treal *%so%d = %s;%s\n", noalias[outl[k]] ? "" : "restrict ", k, e->var[mem[k]],
			noalias[outl[k]] ? " /* may be the incoming adjoint's buffer (bar_in_place) */" : "");
		if (kind[k] == NEST_ACCUM && !e->acc_direct[mem[k]]) {
			char nm[16];
			snprintf(nm, sizeof nm, "o%d", k);
			emit_zero(e, nm, e->f->nodes[mem[k]].shape, 2);
		}
	}
	emit_nest_multi(e, &n, &t, root, kind, outl, m, 2, noalias);
}

/* rows of a value when its last axis (length last) is taken as the row length */
static void rows_extent(IrShape s, int64_t last, char *buf, size_t n)
{
	fmt_extent(buf, n, numel(s) / last, s.batch);
}

static void emit_slice_pad_concat(Em *e, int id)
{
	const IrNode *nd = &e->f->nodes[id];
	IrShape so = nd->shape, sx = *shape(e, nd->in[0]);
	int64_t N = so.d[so.rank - 1];
	char rows[64], v[200], ix[200];
	rows_extent(so, N, rows, sizeof rows);
	declare_in(e, 0, nd->in[0]);
	if (nd->op == IR_CONCAT)
		declare_in(e, 1, nd->in[1]);
	out(e, "\t\tfor (long r = 0; r < %s; r++) {\n", rows);
	if (nd->op == IR_SLICE) {
		int64_t lx = sx.d[sx.rank - 1];
		snprintf(ix, sizeof ix, "r * %" PRId64 " + %" PRId64 " + i", lx, nd->a[0]);
		elem(e, nd->in[0], "in0", ix, v, sizeof v);
		out(e, "\t\t\tfor (long i = 0; i < %" PRId64 "; i++)\n", N);
		out(e, "\t\t\t\tout[r * %" PRId64 " + i] = %s;\n", N, v);
	} else if (nd->op == IR_PAD) {
		int64_t lx = sx.d[sx.rank - 1], lo = nd->a[0];
		snprintf(ix, sizeof ix, "r * %" PRId64 " + i", lx);
		elem(e, nd->in[0], "in0", ix, v, sizeof v);
		out(e, "\t\t\tfor (long i = 0; i < %" PRId64 "; i++)\n", N);
		out(e, "\t\t\t\tout[r * %" PRId64 " + i] = 0;\n", N);
		out(e, "\t\t\tfor (long i = 0; i < %" PRId64 "; i++)\n", lx);
		out(e, "\t\t\t\tout[r * %" PRId64 " + %" PRId64 " + i] = %s;\n", N, lo, v);
	} else {
		int64_t na = sx.d[sx.rank - 1], nb = N - na;
		snprintf(ix, sizeof ix, "r * %" PRId64 " + i", na);
		elem(e, nd->in[0], "in0", ix, v, sizeof v);
		out(e, "\t\t\tfor (long i = 0; i < %" PRId64 "; i++)\n", na);
		out(e, "\t\t\t\tout[r * %" PRId64 " + i] = %s;\n", N, v);
		snprintf(ix, sizeof ix, "r * %" PRId64 " + i", nb);
		elem(e, nd->in[1], "in1", ix, v, sizeof v);
		out(e, "\t\t\tfor (long i = 0; i < %" PRId64 "; i++)\n", nb);
		out(e, "\t\t\t\tout[r * %" PRId64 " + %" PRId64 " + i] = %s;\n", N, na, v);
	}
	out(e, "\t\t}\n");
}

static void emit_copy_flat(Em *e, int id)
{
	const IrNode *nd = &e->f->nodes[id];
	char ext[64], v[200];
	declare_in(e, 0, nd->in[0]);
	elem(e, nd->in[0], "in0", "i", v, sizeof v);
	fmt_extent(ext, sizeof ext, numel(nd->shape), nd->shape.batch);
	out(e, "\t\tfor (long i = 0; i < %s; i++)\n\t\t\tout[i] = %s;\n", ext, v);
}

/* A MATMUL operand as a stored row-major matrix: rows and cols as C text (B for the batch). */
static void mat_text(IrShape s, char *r, char *c, size_t n)
{
	if (s.batch) {
		snprintf(r, n, "(int)B");
		snprintf(c, n, "%" PRId64, s.d[0]);
	} else {
		snprintf(r, n, "%" PRId64, s.d[0]);
		snprintf(c, n, "%" PRId64, s.d[1]);
	}
}

/* Row-major C = op(A) op(W): M = rows of op(A), K = its cols, N = cols of op(W); lda and ldb are the
 * stored column counts. The batch is an ordinary matrix dimension here: [B,K] @ [K,N] is one GEMM with
 * M = B, and the weight gradient x^T g is one GEMM with K = B. */
static void emit_matmul(Em *e, int id)
{
	const IrNode *nd = &e->f->nodes[id];
	bool ta = nd->a[0], tb = nd->a[1];
	char ar[32], ac[32], br[32], bc[32];
	mat_text(*shape(e, nd->in[0]), ar, ac, sizeof ar);
	mat_text(*shape(e, nd->in[1]), br, bc, sizeof br);
	const char *M = ta ? ac : ar, *K = ta ? ar : ac, *N = tb ? br : bc;
	declare_in(e, 0, nd->in[0]);
	declare_in(e, 1, nd->in[1]);
	const char *one = e->o.use_double ? "1.0" : "1.0f", *zero = e->o.use_double ? "0.0" : "0.0f";
	out(e, "\t\tcblas_%cgemm(CblasRowMajor, %s, %s, %s, %s, %s, %s, in0, %s, in1, %s, %s, out, %s);\n",
		e->o.use_double ? 'd' : 's', ta ? "CblasTrans" : "CblasNoTrans", tb ? "CblasTrans" : "CblasNoTrans",
		M, N, K, one, ac, bc, e->acc_direct[id] ? one : zero, N);
}

static void emit_const_fill(Em *e, int id)
{
	const IrNode *nd = &e->f->nodes[id];
	char ext[64], v[64];
	fmt_extent(ext, sizeof ext, numel(nd->shape), nd->shape.batch);
	fmt_real(e, nd->f, v, sizeof v);
	out(e, "\t\tfor (long i = 0; i < %s; i++)\n\t\t\tout[i] = %s;\n", ext, v);
}

/* ---- images ---- */

/* The convolution family: one call of the im2col + GEMM kernel of runtime/pl_img.h (conv2d y = w @ cols,
 * conv2d_w dw = g @ cols^T, conv2d_t x = col2im(w^T @ g); docs/oneshot.md section 6). Measured against
 * direct loops ordered for an axpy over the output row (bench/conv_kernels.c): 20-40x faster on the
 * Conv-4 blocks, whose rows are 3 to 28 long. Unbatched operands are shared by all trials; the result is
 * batched iff an operand is; n is B for a batched result, else 1. */
static void emit_conv(Em *e, int id)
{
	const IrNode *nd = &e->f->nodes[id];
	IrShape s0 = *shape(e, nd->in[0]), s1 = *shape(e, nd->in[1]);
	/* the image side: the operand of conv2d and conv2d_w, the result of conv2d_t; Co from the kernel */
	IrShape img = nd->op == IR_CONV2D_T ? nd->shape : s0;
	int64_t Co = nd->op == IR_CONV2D_W ? nd->shape.d[0] : s1.d[0];
	declare_in(e, 0, nd->in[0]);
	declare_in(e, 1, nd->in[1]);
	out(e, "\t\tpl_img_%s(%s, %d, %d, %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
		", %" PRId64 ", in0, in1, out);\n",
		ir_op_name(nd->op), nd->shape.batch ? "B" : "1", s0.batch, s1.batch, img.d[0], img.d[1], img.d[2], Co,
		nd->a[0], nd->a[1], nd->a[2]);
}

/* Pooling over k x k windows with stride s (no padding), as the interpreter: maxpool and pool_argmax
 * scan each window (ties: the first position), pool_gather reads and pool_scatter adds through the
 * selector u*k+v (rounded, clamped to the window like the interpreter's sel_pos). */
static void emit_pool(Em *e, int id)
{
	const IrNode *nd = &e->f->nodes[id];
	IrOp op = nd->op;
	IrShape sx = *shape(e, nd->in[0]), so = nd->shape;
	IrShape sy = op == IR_POOL_GATHER || op == IR_POOL_SCATTER ? *shape(e, nd->in[1]) : so;
	IrShape si = op == IR_POOL_SCATTER ? so : sx, sp = op == IR_POOL_SCATTER ? sx : so;
	int64_t k = nd->a[0], s = nd->a[1];
	int64_t C = si.d[0], H = si.d[1], W = si.d[2], Ho = sp.d[1], Wo = sp.d[2];
	int64_t nx = ir_shape_numel(sx), ny = ir_shape_numel(sy), no = ir_shape_numel(so);
	char v[200], ix[200];
	declare_in(e, 0, nd->in[0]);
	if (op == IR_POOL_GATHER || op == IR_POOL_SCATTER)
		declare_in(e, 1, nd->in[1]);
	out(e, "\t\t/* windows %" PRId64 " x %" PRId64 ", stride %" PRId64 ": [%" PRId64 ",%" PRId64 ",%" PRId64
		"] <-> [%" PRId64 ",%" PRId64 ",%" PRId64 "] */\n", k, k, s, C, H, W, C, Ho, Wo);
	if (op == IR_POOL_SCATTER)
		emit_zero(e, "out", so, 2);
	out(e, "\t\tfor (long b = 0; b < %s; b++)\n", so.batch ? "B" : "1");
	out(e, "\t\t\tfor (long c = 0; c < %" PRId64 "; c++)\n", C);
	out(e, "\t\t\t\tfor (long i = 0; i < %" PRId64 "; i++)\n", Ho);
	out(e, "\t\t\t\t\tfor (long j = 0; j < %" PRId64 "; j++) {\n", Wo);
	out(e, "\t\t\t\t\t\tconst long ip = (c * %" PRId64 " + i) * %" PRId64 " + j;\n", Ho, Wo);
	if (op == IR_POOL_GATHER || op == IR_POOL_SCATTER) {
		if (sy.batch)
			snprintf(ix, sizeof ix, "b * %" PRId64 " + ip", ny);
		else
			snprintf(ix, sizeof ix, "ip");
		elem(e, nd->in[1], "in1", ix, v, sizeof v);
		out(e, "\t\t\t\t\t\tlong q = lround%s(%s);\n", e->fsuf, v);
		out(e, "\t\t\t\t\t\tq = q < 0 ? 0 : q >= %" PRId64 " ? %" PRId64 " : q;\n", k * k, k * k - 1);
		out(e, "\t\t\t\t\t\tconst long ii = (c * %" PRId64 " + %" PRId64 " * i + q / %" PRId64 ") * %" PRId64 " + %" PRId64
			" * j + q %% %" PRId64 ";\n", H, s, k, W, s, k);
		if (op == IR_POOL_GATHER) {
			if (sx.batch)
				snprintf(ix, sizeof ix, "b * %" PRId64 " + ii", nx);
			else
				snprintf(ix, sizeof ix, "ii");
			elem(e, nd->in[0], "in0", ix, v, sizeof v);
			out(e, "\t\t\t\t\t\tout[b * %" PRId64 " + ip] = %s;\n", no, v);
		} else {
			if (sx.batch)
				snprintf(ix, sizeof ix, "b * %" PRId64 " + ip", nx);
			else
				snprintf(ix, sizeof ix, "ip");
			elem(e, nd->in[0], "in0", ix, v, sizeof v);
			out(e, "\t\t\t\t\t\tout[b * %" PRId64 " + ii] += %s;\n", no, v);
		}
	} else {
		if (is_scalar_leaf(e, nd->in[0])) {
			/* a constant image: every element is the maximum, the first position wins */
			elem(e, nd->in[0], "in0", "", v, sizeof v);
			out(e, "\t\t\t\t\t\tout[b * %" PRId64 " + ip] = %s;\n", no, op == IR_MAXPOOL ? v : "0");
		} else {
			char boff[64] = "";
			if (sx.batch)
				snprintf(boff, sizeof boff, "b * %" PRId64 " + ", nx);
			out(e, "\t\t\t\t\t\tconst real *win = in0 + %s(c * %" PRId64 " + %" PRId64 " * i) * %" PRId64
				" + %" PRId64 " * j;\n", boff, H, s, W, s);
			out(e, "\t\t\t\t\t\tlong best = 0;\n");
			out(e, "\t\t\t\t\t\tfor (long u = 0; u < %" PRId64 "; u++)\n", k);
			out(e, "\t\t\t\t\t\t\tfor (long v = 0; v < %" PRId64 "; v++)\n", k);
			out(e, "\t\t\t\t\t\t\t\tif (win[u * %" PRId64 " + v] > win[(best / %" PRId64 ") * %" PRId64 " + best %% %" PRId64
				"])\n", W, k, W, k);
			out(e, "\t\t\t\t\t\t\t\t\tbest = u * %" PRId64 " + v;\n", k);
			if (op == IR_MAXPOOL)
				out(e, "\t\t\t\t\t\tout[b * %" PRId64 " + ip] = win[(best / %" PRId64 ") * %" PRId64 " + best %% %" PRId64
					"];\n", no, k, W, k);
			else
				out(e, "\t\t\t\t\t\tout[b * %" PRId64 " + ip] = (real)best;\n", no);
		}
	}
	out(e, "\t\t\t\t\t}\n");
}

/* ---- #line ---- */

static void line_to_src(Em *e, const IrNode *nd)
{
	if (e->o.no_line)
		return;
	if (nd->loc.file && nd->loc.line > 0) {
		out(e, "#line %d ", nd->loc.line);
		put_cstring(e, nd->loc.file);
		out(e, "\n");
		e->in_src = true;
	}
}

/* Back to the C file: the line number is filled in by fix_lines once the whole text exists. */
static void line_to_c(Em *e)
{
	if (e->o.no_line || !e->in_src)
		return;
	out(e, "#line @@ ");
	put_cstring(e, e->c_name);
	out(e, "\n");
	e->in_src = false;
}

/* ---- one node ---- */

/* Is node i a block of code of its own? (Leaves are read where used; dead values are skipped.) */
static bool node_emitted(Em *e, int i)
{
	const IrNode *nd = &e->f->nodes[i];
	if (nd->op == IR_PARAM || nd->op == IR_INPUT || nd->op == IR_INV_BATCH)
		return false;
	if (nd->op == IR_CONST && !e->mp->has_slot[i])
		return false;
	return e->last[i] >= 0 && e->fuse[i] < 0;
}


static void node_comment(Em *e, int id)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		ir_fatal("out of memory");
	ir_print_node(e->f, id, m);
	fclose(m);
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = 0;
	for (size_t k = 0; k + 1 < len; k++)
		if (buf[k] == '*' && buf[k + 1] == '/')
			buf[k + 1] = '|';
	out(e, "\t/* %s */\n", buf);
	free(buf);
}

static void emit_node(Em *e, int id)
{
	const IrNode *nd = &e->f->nodes[id];
	unsigned flags = ir_op_info[nd->op].flags;
	if (!node_emitted(e, id))
		return;
	if (!e->mp->has_slot[id]) {
		fail(e, "node %%%d (%s) has no memory slot", id, ir_op_name(nd->op));
		return;
	}
	if (e->in_grp[id])
		return; /* emitted with its group's first node */
	node_comment(e, id);
	for (int g = e->grp[id]; g >= 0; g = e->grp[g])
		node_comment(e, g);
	if (nd->loc.file && !e->o.no_line)
		line_to_src(e, nd);
	else
		line_to_c(e);
	if (e->grp[id] >= 0) {
		int m = 0;
		for (int g = id; g >= 0; g = e->grp[g])
			m++;
		out(e, "\t{ /* one loop nest for the %d nodes above (plan_groups) */\n", m);
		emit_group(e, id);
		out(e, "\t}\n");
		return;
	}
	out(e, "\t{\n\t\treal *restrict out = %s;\n", e->var[id]);
	if (flags & IRF_EW) {
		emit_nest_op(e, id);
	} else {
		switch (nd->op) {
		case IR_CONST: emit_const_fill(e, id); break;
		case IR_EXPAND:
		case IR_SUM_TO:
		case IR_BMV:
		case IR_BMVT:
		case IR_OUTER: emit_nest_op(e, id); break;
		case IR_RESHAPE: emit_copy_flat(e, id); break;
		case IR_SLICE:
		case IR_PAD:
		case IR_CONCAT: emit_slice_pad_concat(e, id); break;
		case IR_MATMUL: emit_matmul(e, id); break;
		case IR_CONV2D:
		case IR_CONV2D_T:
		case IR_CONV2D_W: emit_conv(e, id); break;
		case IR_MAXPOOL:
		case IR_POOL_ARGMAX:
		case IR_POOL_GATHER:
		case IR_POOL_SCATTER: emit_pool(e, id); break;
		default: fail(e, "no C lowering for %s (node %%%d)", ir_op_name(nd->op), id); break;
		}
	}
	out(e, "\t}\n");
}

/* ---- ports ---- */

/* The PlStepArgs expression of an input port's buffer. */
static void in_port_expr(Em *e, const IrPort *pt, char *buf, size_t n)
{
	switch (pt->role) {
	case IR_ROLE_DATA: snprintf(buf, n, "a->x"); return;
	case IR_ROLE_STATE: snprintf(buf, n, "a->state_in[%d]", pt->index); return;
	case IR_ROLE_PRED_BAR: snprintf(buf, n, "a->y_bar"); return;
	case IR_ROLE_STATE_BAR: snprintf(buf, n, "a->state_out_bar[%d]", pt->index); return;
	case IR_ROLE_STATE_NEXT: snprintf(buf, n, "a->state_out[%d]", pt->index); return;
	default: snprintf(buf, n, "NULL"); fail(e, "input port of role %s", ir_role_name(pt->role)); return;
	}
}

/* The buffer of an output port, or false for ports the ABI does not expose (SCALAR). */
static bool out_port_expr(Em *e, const IrPort *pt, char *buf, size_t n)
{
	switch (pt->role) {
	case IR_ROLE_PRED: snprintf(buf, n, "a->y"); return true;
	case IR_ROLE_OUTPUTS: snprintf(buf, n, "a->o"); return true;
	case IR_ROLE_STATE: snprintf(buf, n, "a->state_out[%d]", pt->index); return true;
	case IR_ROLE_STATE_BAR: snprintf(buf, n, "a->state_in_bar[%d]", pt->index); return true;
	case IR_ROLE_PARAM_BAR: snprintf(buf, n, "a->param_bar[%d]", pt->index); return true;
	case IR_ROLE_SCALAR: return false;
	default: fail(e, "output port of role %s", ir_role_name(pt->role)); return false;
	}
}

static void emit_output(Em *e, const IrPort *pt)
{
	char dst[96];
	int id = pt->node;
	const IrNode *nd = &e->f->nodes[id];
	bool acc = pt->role == IR_ROLE_PARAM_BAR;
	if (!out_port_expr(e, pt, dst, sizeof dst)) {
		out(e, "\t/* %s (%s) is not part of the ABI */\n", pt->name ? pt->name : "output",
			ir_role_name(pt->role));
		return;
	}
	if (acc && is_scalar_leaf(e, id) && nd->op == IR_CONST && nd->f == 0.0) {
		out(e, "\t/* %s += 0 */\n", dst);
		return;
	}
	out(e, "\t/* %s %s %s%s%s */\n", dst, acc ? "+=" : "=", e->var[id] ? e->var[id] : "constant",
		pt->name ? ": " : "", pt->name ? pt->name : "");
	if (pt->role == IR_ROLE_OUTPUTS)
		out(e, "\tif (a->o) {\n");
	else
		out(e, "\t{\n");
	out(e, "\t\treal *restrict out = %s;\n", dst);
	Nest n;
	Tree t;
	t.nn = 0;
	nest_space(&n, nd->shape);
	n.nleaf = 1;
	n.leaf_node[0] = -1;
	n.is_out[0] = true;
	nest_strides(&n, nd->shape, n.st[0]);
	int root = tree_value(e, &n, &t, id, 0);
	NestKind kind = acc ? NEST_ACCUM : NEST_ASSIGN;
	int outl = 0;
	emit_nest_multi(e, &n, &t, &root, &kind, &outl, 1, 2, NULL);
	out(e, "\t}\n");
}

/* ---- functions ---- */

static void fmt_offset(Em *e, int id, char *buf, size_t n)
{
	int64_t ob = e->mp->off_b[id], oc = e->mp->off_c[id];
	if (ob && oc)
		snprintf(buf, n, "w + %" PRId64 " * B + %" PRId64, ob, oc);
	else if (ob)
		snprintf(buf, n, "w + %" PRId64 " * B", ob);
	else if (oc)
		snprintf(buf, n, "w + %" PRId64, oc);
	else
		snprintf(buf, n, "w");
}

static void func_header(Em *e, const char *what, const char *fn)
{
	const Program *p = e->p;
	const IrFunc *f = e->f;
	char sh[64];
	out(e, "/* %s_%s: %s\n", e->pre, fn, what);
	out(e, " *   in: ");
	for (int k = 0; k < f->nins; k++) {
		ir_shape_str(f->nodes[f->ins[k].node].shape, sh, sizeof sh);
		out(e, "%s%s %s", k ? ", " : "", f->ins[k].name ? f->ins[k].name : ir_role_name(f->ins[k].role), sh);
		if (k % 6 == 5 && k + 1 < f->nins)
			out(e, "\n *       ");
	}
	out(e, "\n *   out: ");
	for (int k = 0; k < f->nouts; k++) {
		ir_shape_str(f->nodes[f->outs[k].node].shape, sh, sizeof sh);
		out(e, "%s%s %s", k ? ", " : "", f->outs[k].name ? f->outs[k].name : ir_role_name(f->outs[k].role),
			sh);
		if (k % 6 == 5 && k + 1 < f->nouts)
			out(e, "\n *        ");
	}
	out(e, "\n *   %d IR nodes; %d parameters; scratch: %" PRId64 " * B + %" PRId64 " %ss (memory plan) */\n",
		f->n, p->n_params, e->mp->total_b, e->mp->total_c, e->real);
}

/* The declarations at the top of a function body: B, the scratch block, 1/B_global, and a pointer for
 * every value in need[] (parameters and inputs into PlStepArgs, the rest into their slots). */
static void emit_decls(Em *e, const bool *need)
{
	const IrFunc *f = e->f;
	int n = f->n;
	bool any_slot = false, inv = false;
	for (int i = 0; i < n; i++) {
		if (!need[i])
			continue;
		if (f->nodes[i].op == IR_INV_BATCH)
			inv = true;
		if (e->var[i] && e->mp->has_slot[i] && e->direct[i] < 0 && !(e->nostore && e->nostore[i]))
			any_slot = true;
	}
	out(e, "\tconst long B = a->B;\n");
	if (any_slot)
		out(e, "\treal *const w = a->work;\n");
	if (inv)
		out(e, "\tconst real inv_batch = (real)1 / (real)a->B_global;\n");
	for (int i = 0; i < n; i++) {
		const IrNode *nd = &f->nodes[i];
		if (!need[i] || !e->var[i])
			continue;
		if (nd->op == IR_PARAM) {
			out(e, "\tconst real *const %s = a->params[%" PRId64 "];\n", e->var[i], nd->a[0]);
		} else if (nd->op == IR_INPUT) {
			char ex[64];
			int k = (int)nd->a[0];
			if (k < 0 || k >= f->nins) {
				fail(e, "input node %%%d names port %d", i, k);
				continue;
			}
			in_port_expr(e, &f->ins[k], ex, sizeof ex);
			out(e, "\tconst real *const %s = %s;\n", e->var[i], ex);
		}
	}
	for (int i = 0; i < n; i++) {
		char off[96], sh[64];
		if (!need[i] || !e->var[i] || !e->mp->has_slot[i] || (e->nostore && e->nostore[i]))
			continue;
		ir_shape_str(f->nodes[i].shape, sh, sizeof sh);
		if (e->direct[i] >= 0) {
			out_port_expr(e, &f->outs[e->direct[i]], off, sizeof off);
			out(e, "\treal *const %s = %s; /* %s, %s in place */\n", e->var[i], off, sh,
				e->acc_direct[i] ? "accumulated" : "computed");
			continue;
		}
		fmt_offset(e, i, off, sizeof off);
		out(e, "\treal *const %s = %s; /* %s */\n", e->var[i], off, sh);
	}
	out(e, "\t(void)B;\n\n");
}

/* ---- fusion ---- */

static bool nest_reader(IrOp op)
{
	return (ir_op_info[op].flags & IRF_EW) || op == IR_EXPAND || op == IR_SUM_TO || op == IR_BMV ||
		op == IR_BMVT || op == IR_OUTER;
}

static bool fusable(IrOp op)
{
	return (ir_op_info[op].flags & IRF_EW) || op == IR_EXPAND || op == IR_OUTER;
}

static bool expensive(IrOp op)
{
	return op == IR_EXP || op == IR_LOG || op == IR_SQRT || op == IR_TANH || op == IR_SIGMOID || op == IR_DIV;
}

/* CONST read by no LINALG op, INV_BATCH: what memplan leaves without a slot (decided before the plan) */
static bool scalar_leaf_pre(const IrFunc *f, int id)
{
	const IrNode *nd = &f->nodes[id];
	if (nd->op == IR_INV_BATCH)
		return true;
	if (nd->op != IR_CONST)
		return false;
	for (int j = id + 1; j < f->n; j++)
		if ((ir_op_info[f->nodes[j].op].flags & IRF_LINALG) && (f->nodes[j].in[0] == id || f->nodes[j].in[1] == id))
			return false;
	return true;
}

/* Which values are computed inside the loop of their reader instead of being stored (e->fuse).
 *
 * A value is fused into its reader R when it is elementwise, an expand or an outer product, R is its only
 * reader and is itself a loop nest (elementwise, expand, outer, sum_to, bmv, bmvt), no port returns it,
 * and either R's loop visits each of its elements once or its expression holds no expensive op (exp,
 * log, sqrt, tanh, sigmoid, div: recomputing those costs more than the memory round trip saved). At most
 * EM_MAX_LEAVES arrays per nest. Decided in node order, readers first in, so chains fuse whole:
 * `(1 - eta) * hebb + eta * outer(pre, post)` becomes one loop writing state_out, `w + alpha * hebb` is
 * read inside bmv's loop, and `sum_to(g * hebb)` (the gradient of alpha) never stores the product. */
/* Arrays of per-trial rank >= 2 (or static matrices) that value id's loop would read: its own if stored,
 * else those of its fused operands. Recomputing a value in k readers reads these k times; storing it
 * reads them once, writes it once and reads it k times. */
static int big_leaves(Em *e, int id)
{
	const IrNode *nd = &e->f->nodes[id];
	if (e->fuse[id] < 0 || scalar_leaf_pre(e->f, id))
		return !scalar_leaf_pre(e->f, id) && nd->shape.rank >= 2;
	int c = 0;
	for (int k = 0; k < ir_op_info[nd->op].nin; k++)
		if (k == 0 || nd->in[k] != nd->in[0])
			c += big_leaves(e, nd->in[k]);
	return c;
}

static void plan_fusion(Em *e)
{
	const IrFunc *f = e->f;
	int n = f->n;
	int *nread = em_alloc(sizeof *nread * (size_t)(n ? n : 1));
	int *leaves = em_alloc(sizeof *leaves * (size_t)(n ? n : 1));
	bool *exp_sub = em_alloc(sizeof *exp_sub * (size_t)(n ? n : 1));
	bool *is_out = em_alloc(sizeof *is_out * (size_t)(n ? n : 1));
	/* Values with several readers (multi): an outer product, or a cheap elementwise value of at most two
	 * arrays read twice, is recomputed inside each reader's loop instead of stored -- a store is a full
	 * write plus one read per reader of a [B,I,J] tensor, the recomputation reads two vectors (outer) or
	 * the same two arrays again. All its readers must be loops; if one of them cannot take it (too many
	 * arrays), it is stored after all (reject). The value's fuse entry ends as the reader that runs
	 * last, which is how long its operands must live. */
	bool *allnest = em_alloc(sizeof *allnest * (size_t)(n ? n : 1));
	bool *multi = em_alloc(sizeof *multi * (size_t)(n ? n : 1));
	bool *reject = em_alloc(sizeof *reject * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++)
		allnest[i] = true;
	for (int k = 0; k < f->nouts; k++)
		is_out[f->outs[k].node] = true;
	for (int r = 0; r < n; r++) {
		if (e->last[r] < 0)
			continue;
		const IrNode *nd = &f->nodes[r];
		for (int k = 0; k < ir_op_info[nd->op].nin; k++)
			if (k == 0 || nd->in[1] != nd->in[0]) {
				nread[nd->in[k]]++;
				if (!nest_reader(nd->op))
					allnest[nd->in[k]] = false;
			}
	}
	for (int r = 0; r < n; r++) {
		const IrNode *nd = &f->nodes[r];
		int nin = ir_op_info[nd->op].nin;
		int total = 0;
		for (int k = 0; k < nin; k++)
			total += scalar_leaf_pre(f, nd->in[k]) ? 0 : 1;
		exp_sub[r] = expensive(nd->op);
		leaves[r] = total;
		if (e->last[r] < 0 || !nest_reader(nd->op))
			continue;
		/* the space R's loop runs over */
		IrShape sp = nd->op == IR_SUM_TO || nd->op == IR_BMVT ? f->nodes[nd->in[0]].shape :
			nd->op == IR_BMV ? f->nodes[nd->in[1]].shape : nd->shape;
		for (int k = 0; k < nin; k++) {
			int x = nd->in[k];
			if (k == 1 && x == nd->in[0])
				break;
			const IrNode *xn = &f->nodes[x];
			if (!fusable(xn->op) || is_out[x] || e->last[x] < 0)
				continue;
			if (nread[x] != 1) {
				int big = 0;
				for (int q = 0; q < ir_op_info[xn->op].nin; q++)
					if (q == 0 || xn->in[q] != xn->in[0])
						big += big_leaves(e, xn->in[q]);
				bool cheap = xn->op == IR_OUTER || ((ir_op_info[xn->op].flags & IRF_EW) && !exp_sub[x] &&
					(big <= 1 || (big == 2 && nread[x] <= 3)));
				if (e->o.no_multi_fuse || !allnest[x] || !cheap || reject[x])
					continue;
				multi[x] = true;
			}
			int mult = (nin == 2 && nd->in[0] == nd->in[1]) ? 2 : 1;
			bool once = mult == 1 && xn->shape.batch == sp.batch &&
				ir_shape_numel(xn->shape) == ir_shape_numel(sp);
			if (!once && exp_sub[x]) {
				reject[x] = multi[x];
				continue;
			}
			int nt = total - mult + mult * leaves[x];
			if (nt > EM_MAX_LEAVES) {
				reject[x] = multi[x];
				continue;
			}
			e->fuse[x] = r;
			total = nt;
			exp_sub[r] = exp_sub[r] || exp_sub[x];
		}
		leaves[r] = total;
	}
	/* multi values: stored after all if one reader refused them; else tied to the reader whose loop
	 * (after its own fusion) runs last */
	for (int x = n - 1; x >= 0; x--) { /* readers (> x) first, so their own entries are final */
		if (!multi[x])
			continue;
		if (reject[x]) {
			e->fuse[x] = -1;
			continue;
		}
		int best = -1, best_eff = -1;
		for (int r = x + 1; r < n; r++) {
			const IrNode *nd = &f->nodes[r];
			if (e->last[r] < 0)
				continue;
			bool reads = false;
			for (int k = 0; k < ir_op_info[nd->op].nin; k++)
				reads = reads || nd->in[k] == x;
			if (!reads)
				continue;
			int eff = r;
			while (e->fuse[eff] >= 0)
				eff = e->fuse[eff];
			if (eff > best_eff) {
				best_eff = eff;
				best = r;
			}
		}
		e->fuse[x] = best;
	}
	free(nread);
	free(leaves);
	free(exp_sub);
	free(is_out);
	free(allnest);
	free(multi);
	free(reject);
}

/* Horizontal loop fusion (e->grp): consecutive loop nests over the same index space run as one nest.
 * At block 1 a per-trial [H,H] tensor does not stay in cache between two nests, so each nest over it
 * streams it from memory again; merged, the tensors they share are read once per point.
 *
 * Rule (kept simple so it is safe by construction): nodes order[k], order[k+1], ... (consecutive in
 * emission order, in one part function, or moved up by the schedule below) join a group while each
 *   - is a loop nest (elementwise, expand, outer, sum_to, bmv, bmvt) whose space equals the first's
 *     (nest_space_shape: same batch flag and dims), of rank >= 2 (a matrix per trial, where it pays);
 *   - is computed into its own slot, accumulated into a parameter gradient, or written into a state or
 *     state-adjoint buffer of the caller (group_out_ok: the ABI keeps those apart from every argument);
 *   - reads an array written by an earlier member only at the very point where that member stores it
 *     (nest_link: the value is handed over in a local, so the points stay independent), and otherwise
 *     no such array; and its output's slot overlaps no array read or written by any other member (the
 *     memory plan may have reused a slot freed by an earlier member);
 * and the group has at most EM_GROUP_MAX members. Each output keeps its own expression and summation
 * (a reduction gets its own accumulator), so only the loop order of sums changes, never what is summed. */
static void mark_need(Em *e, bool *need, int id, bool root);

/* Producer to consumer inside a merged nest: if leaf q (added by a member after the first `before` leaves)
 * reads an earlier member's result that is stored at each point (assign) at that same point (equal
 * strides), the loop body hands the value over in a local instead (alias1). Returns whether it did. */
static bool nest_link(Em *e, Nest *n, int q, int before)
{
	if (e->o.no_loop_chain || n->is_out[q])
		return false;
	for (int o = 0; o < before; o++)
		if (n->is_out[o] && n->leaf_node[o] == n->leaf_node[q] && n->assign[o] &&
			memcmp(n->st[o], n->st[q], sizeof n->st[q]) == 0) {
			n->alias1[q] = o + 1;
			return true;
		}
	return false;
}

/* Whether node id's result may be written by a merged nest: its own slot, a parameter gradient it
 * accumulates into, or (unless no_loop_chain) a state or state-adjoint buffer of the caller, which by the
 * ABI overlaps no other argument (the emitted code declares them all restrict already). */
static bool group_out_ok(Em *e, int id)
{
	if (e->direct[id] < 0 || e->acc_direct[id])
		return true;
	IrRole r = e->f->outs[e->direct[id]].role;
	return !e->o.no_loop_chain && (r == IR_ROLE_STATE || r == IR_ROLE_STATE_BAR);
}

/* Trial of adding node id to a group whose members mem[0..m-1] made the nest *n (tree *t) over space
 * sp: on success *n and *t include it and *rd0 and *rd1 bound the leaves it added (the arrays it reads
 * and its output); the rule is the one described above plan_groups. */
static bool group_try(Em *e, Nest *n, Tree *t, const int *mem, int m, int id, IrShape sp, int *rd0, int *rd1)
{
	const IrFunc *f = e->f;
	const IrNode *nd = &f->nodes[id];
	IrShape s2 = nest_space_shape(f, id);
	if (!nest_reader(nd->op) || !group_out_ok(e, id) || s2.batch != sp.batch || s2.rank != sp.rank)
		return false;
	for (int d = 0; d < sp.rank; d++)
		if (s2.d[d] != sp.d[d])
			return false;
	Nest n2 = *n;
	Tree t2 = *t;
	int before = n2.nleaf;
	if (before + EM_MAX_LEAVES + 1 > EM_NEST_CAP)
		return false;
	NestKind kind;
	int outl;
	nest_add(e, &n2, &t2, id, &kind, &outl);
	for (int q = before; q < n2.nleaf; q++) {
		int x = n2.leaf_node[q];
		if (nest_link(e, &n2, q, before))
			continue;
		for (int r = 0; r < m; r++)
			if (x == mem[r])
				return false;
	}
	/* the new output against every array the earlier members read */
	for (int q = 0; q < before; q++)
		if (!n->is_out[q] && !n->alias1[q] && n->leaf_node[q] == id)
			return false;
	*rd0 = before;
	*rd1 = n2.nleaf;
	*n = n2;
	*t = t2;
	return true;
}

/* Whether node h, whose nest leaves (arrays read, and its output) are nest->leaf_node[rd0..rd1-1],
 * may run before the nodes skip[0..ns-1] that precede it in emission order: the true dependences only
 * (h reads what a skipped node writes, or a skipped node reads h, also through a fused value), as the
 * memory plan is made afterwards for the order that runs (emit_function, memplan_build_timed). Skipped
 * nodes that write a caller's buffer directly are not crossed (a parameter gradient they accumulate into
 * is not a node h could depend on), except state and state-adjoint buffers (group_out_ok), which the ABI
 * keeps apart from every other argument: a true dependence on them shows as h reading the node itself. */
static bool hoist_safe(Em *e, const Nest *nest, int rd0, int rd1, int h, const int *skip, int ns, bool *tmp)
{
	int n = e->f->n;
	for (int i = 0; i < ns; i++) {
		int s = skip[i];
		if (!group_out_ok(e, s))
			return false;
		for (int q = rd0; q < rd1; q++)
			if (nest->leaf_node[q] == s)
				return false;
		memset(tmp, 0, sizeof *tmp * (size_t)n);
		mark_need(e, tmp, s, true);
		if (tmp[h])
			return false;
	}
	return true;
}

/* Scheduling for the groups (unless no_loop_sched): when the next node in emission order cannot join
 * the current group, a later node of the same part within EM_SCHED_WINDOW that can join, and may run
 * before the nodes between (hoist_safe), is moved up next to the group. In a step's VJP the adjoints
 * over one [H,H] plastic tensor are often separated by BLAS calls on small vectors, so this merges
 * nests that plan_groups alone would leave apart. A node is not hoisted away from a later nest that
 * shares its data (splits_sharing), which would cost a pass more than it saves. */
#define EM_SCHED_WINDOW 24

/* Whether hoisting node h into the current group would split it from a later nest that shares its data:
 * one of the nodes order[from..to-1] is a nest over space sp that reads h's value (a consumer that could
 * take it at the same point, alias1) or reads a per-trial array of that space which h brings into the
 * group (its leaves nest->leaf_node[rd0..rd1-1] not read by the group already). Either way the later
 * nest would stream that array again in a pass of its own, where leaving h in place lets plan_groups
 * merge the two and stream it once. */
static bool splits_sharing(Em *e, const int *order, int from, int to, int h, IrShape sp, const Nest *nest,
	int rd0, int rd1, bool *tmp)
{
	const IrFunc *f = e->f;
	int big[EM_NEST_CAP + 1], nb = 0;
	big[nb++] = h;
	for (int q = rd0; q < rd1; q++) {
		int x = nest->leaf_node[q];
		IrShape sx = f->nodes[x].shape;
		if (nest->is_out[q] || !sx.batch || sx.rank != sp.rank)
			continue;
		bool old = false;
		for (int r = 0; r < rd0 && !old; r++)
			old = nest->leaf_node[r] == x;
		if (!old)
			big[nb++] = x;
	}
	for (int i = from; i < to; i++) {
		int x = order[i];
		if (x == h || !nest_reader(f->nodes[x].op))
			continue;
		IrShape s2 = nest_space_shape(f, x);
		if (s2.batch != sp.batch || s2.rank != sp.rank || memcmp(s2.d, sp.d, sizeof sp.d[0] * (size_t)sp.rank) != 0)
			continue;
		memset(tmp, 0, sizeof *tmp * (size_t)f->n);
		mark_need(e, tmp, x, true);
		for (int k = 0; k < nb; k++)
			if (tmp[big[k]])
				return true;
	}
	return false;
}

static void plan_groups(Em *e, int *order, int nemit)
{
	const IrFunc *f = e->f;
	bool *tmp = em_alloc(sizeof *tmp * (size_t)(f->n ? f->n : 1));
	for (int k = 0; k < nemit;) {
		int first = order[k];
		const IrNode *fn = &f->nodes[first];
		IrShape sp = nest_space_shape(f, first);
		bool ok0 = nest_reader(fn->op) && sp.rank >= 2 && group_out_ok(e, first);
		if (!ok0) {
			k++;
			continue;
		}
		int mem[EM_GROUP_MAX], m = 1;
		mem[0] = first;
		Nest n;
		Tree t;
		t.nn = 0;
		nest_space(&n, sp);
		NestKind kind;
		int outl;
		nest_add(e, &n, &t, first, &kind, &outl);
		int part_end = nemit; /* parts are cut between groups (emit_function) */
		int j = k + 1;
		for (; j < part_end && m < EM_GROUP_MAX; j++) {
			int rd0, rd1;
			if (group_try(e, &n, &t, mem, m, order[j], sp, &rd0, &rd1)) {
				mem[m++] = order[j];
				continue;
			}
			if (e->o.no_loop_sched)
				break;
			bool found = false;
			for (int j2 = j + 1; j2 < part_end && j2 <= j + EM_SCHED_WINDOW && !found; j2++) {
				Nest n2 = n;
				Tree t2 = t;
				if (!group_try(e, &n2, &t2, mem, m, order[j2], sp, &rd0, &rd1))
					continue;
				if (!hoist_safe(e, &n2, rd0, rd1, order[j2], order + j, j2 - j, tmp))
					continue;
				if (splits_sharing(e, order, j, part_end, order[j2], sp, &n2, rd0, rd1, tmp))
					continue;
				int h = order[j2];
				memmove(order + j + 1, order + j, sizeof *order * (size_t)(j2 - j));
				order[j] = h;
				n = n2;
				t = t2;
				mem[m++] = h;
				found = true;
			}
			if (!found)
				break;
		}
		for (int r = 0; r + 1 < m; r++) {
			e->grp[mem[r]] = mem[r + 1];
			e->in_grp[mem[r + 1]] = true;
		}
		k += m;
	}
	free(tmp);
}

/* need[] gets id and, through fused values, every array its loop reads */
static void mark_need(Em *e, bool *need, int id, bool root)
{
	need[id] = true;
	if (!root && e->fuse[id] < 0)
		return;
	const IrNode *nd = &e->f->nodes[id];
	for (int k = 0; k < ir_op_info[nd->op].nin; k++)
		mark_need(e, need, nd->in[k], false);
}

/* Members of merged nests that need no store (e->nostore): a member stored at each point (not a sum, not
 * a caller's buffer, not an output of the function) whose readers are all members of its own nest and
 * take its value from a local at that point (alias1). With the memory plan made after the groups, such
 * a value would otherwise cost a full write of its array per step for nothing (e.g. the adjoint chain
 * inside the nest over a plastic matrix's adjoint). */
static void plan_nostore(Em *e, const int *order, int nemit)
{
	const IrFunc *f = e->f;
	int n = f->n;
	bool *tmp = em_alloc(sizeof *tmp * (size_t)(n ? n : 1));
	bool *is_out = em_alloc(sizeof *is_out * (size_t)(n ? n : 1));
	for (int k = 0; k < f->nouts; k++)
		is_out[f->outs[k].node] = true;
	for (int i = 0; i < nemit; i++) {
		int first = order[i];
		if (e->in_grp[first] || e->grp[first] < 0)
			continue;
		Nest nest;
		Tree t;
		t.nn = 0;
		nest_space(&nest, nest_space_shape(f, first));
		int mem[EM_GROUP_MAX], outl[EM_GROUP_MAX], m = 0;
		NestKind kind[EM_GROUP_MAX];
		for (int id = first; id >= 0 && m < EM_GROUP_MAX; id = e->grp[id]) {
			int before = nest.nleaf;
			mem[m] = id;
			nest_add(e, &nest, &t, id, &kind[m], &outl[m]);
			for (int q = before; q < nest.nleaf; q++)
				nest_link(e, &nest, q, before);
			m++;
		}
		for (int k = 0; k + 1 < m; k++) {
			int x = mem[k];
			if (kind[k] == NEST_ACCUM || !nest.assign[outl[k]] || e->direct[x] >= 0 || is_out[x])
				continue;
			bool ok = false; /* read by a later member, always through the local */
			for (int q = 0; q < nest.nleaf; q++)
				if (!nest.is_out[q] && nest.leaf_node[q] == x) {
					if (nest.alias1[q] != outl[k] + 1) {
						ok = false;
						break;
					}
					ok = true;
				}
			for (int z = 0; ok && z < nemit; z++) {
				int y = order[z];
				bool member = false;
				for (int r = 0; r < m && !member; r++)
					member = mem[r] == y;
				if (member)
					continue;
				memset(tmp, 0, sizeof *tmp * (size_t)n);
				mark_need(e, tmp, y, true);
				ok = !tmp[x];
			}
			e->nostore[x] = ok;
		}
	}
	free(tmp);
	free(is_out);
}

/* In-place state adjoints of a step VJP (PlModel.bar_in_place). A VJP reads each state's incoming
 * adjoint (state_out_bar[j]) and writes its outgoing one (state_in_bar[j]); the runtime keeps the two in
 * separate ping-pong buffers. When the outgoing adjoint Y is computed straight into the caller's buffer by
 * a member of a merged nest that stores it (not a sum), and the incoming one X is read by nothing but the
 * members of that nest up to and including Y's own (each read then happens at Y's element before Y stores
 * it: emit_group checks the strides), one buffer can serve both, and the plastic matrix's adjoint is read
 * and written in place: one memory transfer less per element and step. Marks inplace_in[Y] = X and
 * bar_ok[j]; emit_group may still withdraw both. The pointers of X and Y in that nest are then declared
 * without restrict, so the code is right with one buffer or two. */
static void plan_bar_in_place(Em *e, const int *order, int nemit)
{
	const IrFunc *f = e->f;
	int n = f->n;
	bool *tmp = em_alloc(sizeof *tmp * (size_t)(n ? n : 1));
	for (int k = 0; k < f->nins; k++) {
		const IrPort *in = &f->ins[k];
		if (in->role != IR_ROLE_STATE_BAR)
			continue;
		int x = in->node, y = -1;
		bool x_out = false;
		for (int o = 0; o < f->nouts; o++) {
			if (f->outs[o].node == x)
				x_out = true;
			if (f->outs[o].role == IR_ROLE_STATE_BAR && f->outs[o].index == in->index)
				y = f->outs[o].node;
		}
		if (y < 0 || x_out || y == x || e->direct[y] < 0 || e->acc_direct[y] ||
			f->outs[e->direct[y]].role != IR_ROLE_STATE_BAR || e->fuse[y] >= 0 || !node_emitted(e, y))
			continue;
		IrOp op = f->nodes[y].op;
		if (!nest_reader(op) || op == IR_SUM_TO || op == IR_BMV || op == IR_BMVT)
			continue;
		IrShape sx = f->nodes[x].shape, sy = f->nodes[y].shape;
		if (sx.batch != sy.batch || sx.rank != sy.rank || sx.rank < 1 ||
			memcmp(sx.d, sy.d, sizeof sx.d[0] * (size_t)sx.rank) != 0)
			continue;
		/* y's group: its first member, then the chain */
		int first = -1;
		for (int i = 0; i < nemit && first < 0; i++) {
			if (e->in_grp[order[i]] || e->grp[order[i]] < 0)
				continue; /* only the heads of merged nests */
			for (int g = order[i]; g >= 0; g = e->grp[g])
				if (g == y)
					first = order[i];
		}
		if (first < 0)
			continue; /* not in a merged nest */
		bool ok = true;
		for (int i = 0; i < nemit && ok; i++) {
			int z = order[i];
			bool member = false;
			for (int g = first; g >= 0 && !member; g = e->grp[g])
				member = g == z;
			if (member)
				continue;
			memset(tmp, 0, sizeof *tmp * (size_t)n);
			mark_need(e, tmp, z, true);
			ok = !tmp[x];
		}
		if (!ok)
			continue;
		e->inplace_in[y] = x;
		e->bar_ok[in->index] = 1;
	}
	free(tmp);
}

static void emit_function(Em *e, const IrFunc *f, const char *fn, const char *what)
{
	int n = f->n;
	e->f = f;
	e->var = em_alloc(sizeof *e->var * (size_t)(n ? n : 1));
	e->last = em_alloc(sizeof *e->last * (size_t)(n ? n : 1));
	e->used = em_alloc(sizeof *e->used * (size_t)(n + 1));
	e->direct = em_alloc(sizeof *e->direct * (size_t)(n ? n : 1));
	e->acc_direct = em_alloc(sizeof *e->acc_direct * (size_t)(n ? n : 1));
	e->fuse = em_alloc(sizeof *e->fuse * (size_t)(n ? n : 1));
	e->grp = em_alloc(sizeof *e->grp * (size_t)(n ? n : 1));
	e->in_grp = em_alloc(sizeof *e->in_grp * (size_t)(n ? n : 1));
	e->nostore = em_alloc(sizeof *e->nostore * (size_t)(n ? n : 1));
	e->nused = 0;
	e->in_src = false;
	for (int i = 0; i < n; i++) {
		e->last[i] = e->direct[i] = e->fuse[i] = e->grp[i] = -1;
		e->acc_direct[i] = e->in_grp[i] = false;
	}
	for (int i = 0; i < n; i++)
		for (int k = 0; k < ir_op_info[f->nodes[i].op].nin; k++)
			e->last[f->nodes[i].in[k]] = i;
	for (int k = 0; k < f->nouts; k++)
		e->last[f->outs[k].node] = n;
	/* dead values: only what an output depends on is computed (opt normally removed the rest) */
	bool *live = em_alloc(sizeof *live * (size_t)(n ? n : 1));
	for (int k = 0; k < f->nouts; k++)
		live[f->outs[k].node] = true;
	for (int i = n - 1; i >= 0; i--)
		if (live[i])
			for (int k = 0; k < ir_op_info[f->nodes[i].op].nin; k++)
				live[f->nodes[i].in[k]] = true;
	for (int i = 0; i < n; i++)
		if (!live[i])
			e->last[i] = -1;
	free(live);
	if (!e->o.no_fuse)
		plan_fusion(e);
	e->mp = memplan_build_fused(f, e->fuse);
	/* Results that the caller's buffers can hold from the start are computed there, saving a copy (for a
	 * plastic state [B,H,H] that is a full pass over the largest tensor of the step). Not o, which may be
	 * NULL, and not parameter gradients, which accumulate. */
	for (int k = 0; k < f->nouts; k++) {
		IrRole r = f->outs[k].role;
		int id = f->outs[k].node;
		if ((r == IR_ROLE_PRED || r == IR_ROLE_STATE || r == IR_ROLE_STATE_BAR) && e->mp->has_slot[id] &&
			f->nodes[id].op != IR_CONST && e->direct[id] < 0)
			e->direct[id] = k;
	}
	/* A parameter gradient made by a reduction over the batch (sum_to, or a matmul whose K is the
	 * batch) and read by nothing else is accumulated straight into the caller's param_bar (sum_to
	 * without its zeroing pass, sgemm with beta = 1): that saves a zeroed temporary and the final
	 * `param_bar += tmp` pass. Both are passes over a static-size tensor, cheap at B = 64 but as costly as
	 * the plastic passes when the runtime runs one trial per call (--block 1). */
	int *readers = em_alloc(sizeof *readers * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++)
		readers[i] = 0;
	for (int i = 0; i < n; i++)
		if (e->last[i] >= 0 || e->fuse[i] >= 0)
			for (int k = 0; k < ir_op_info[f->nodes[i].op].nin; k++)
				readers[f->nodes[i].in[k]]++;
	for (int k = 0; k < f->nouts; k++)
		readers[f->outs[k].node]++;
	for (int k = 0; k < f->nouts; k++) {
		int id = f->outs[k].node;
		IrOp op = f->nodes[id].op;
		if (f->outs[k].role == IR_ROLE_PARAM_BAR && (op == IR_SUM_TO || op == IR_MATMUL) && readers[id] == 1 &&
			e->mp->has_slot[id] && e->fuse[id] < 0 && e->direct[id] < 0 && !f->nodes[id].shape.batch) {
			e->direct[id] = k;
			e->acc_direct[id] = true;
		}
	}
	free(readers);

	for (int i = 0; i < n; i++) {
		const IrNode *nd = &f->nodes[i];
		if (e->last[i] < 0 || nd->op == IR_INV_BATCH || e->fuse[i] >= 0)
			continue;
		if (nd->op == IR_CONST && !e->mp->has_slot[i])
			continue;
		e->var[i] = value_name(e, i);
	}

	func_header(e, what, fn);
	const char *args = e->o.use_double ? "PlStepArgsD" : "PlStepArgs";
	bool *need = em_alloc(sizeof *need * (size_t)(n ? n : 1));
	int *order = em_alloc(sizeof *order * (size_t)(n ? n : 1));
	int nemit = 0;
	for (int i = 0; i < n; i++)
		if (node_emitted(e, i))
			order[nemit++] = i;
	/* gcc's optimiser is superlinear in the size of a function: a double-backward step of a few hundred
	 * nodes in one function takes minutes at -O3. Steps longer than EM_PART nodes are cut into parts,
	 * one noinline function each, called in order. */
	if (!e->o.no_fuse && !e->o.no_loop_fuse) {
		plan_groups(e, order, nemit);
		/* The memory plan again, for the order that runs: a merged nest writes its members' results and
		 * reads their operands over all its points, so those arrays are live from its first member to
		 * its last (plan_groups checks true dependences only; storage follows from this plan). */
		int *t_def = em_alloc(sizeof *t_def * (size_t)(n ? n : 1));
		int *t_read = em_alloc(sizeof *t_read * (size_t)(n ? n : 1));
		for (int i = 0; i < n; i++)
			t_def[i] = t_read[i] = -1;
		/* the values each loop reads, through fused and recomputed values too (mark_need): a value
		 * recomputed inline by several readers (plan_fusion) is read by all of them, and after the
		 * schedule its fuse entry need not be the reader that runs last */
		for (int k = 0; k < nemit;) {
			int g1 = k;
			while (g1 + 1 < nemit && e->in_grp[order[g1 + 1]])
				g1++;
			for (int j = k; j <= g1; j++) {
				t_def[order[j]] = k;
				memset(need, 0, sizeof *need * (size_t)n);
				mark_need(e, need, order[j], true);
				for (int x = 0; x < n; x++)
					if (need[x] && x != order[j] && t_read[x] < g1)
						t_read[x] = g1;
			}
			k = g1 + 1;
		}
		MemPlan *mp = memplan_build_timed(f, e->fuse, t_def, t_read, nemit);
		for (int i = 0; i < n; i++)
			if (mp->has_slot[i] != e->mp->has_slot[i])
				ir_fatal("emit-c: the memory plan for the merged order differs in which values have slots");
		memplan_free(e->mp);
		e->mp = mp;
		free(t_def);
		free(t_read);
		plan_nostore(e, order, nemit);
	}
	/* part p is order[bound[p]..bound[p+1]-1]: EM_PART nodes, or a few more so that no merged nest is cut */
	int *bound = em_alloc(sizeof *bound * (size_t)(nemit / EM_PART + 2));
	int nparts = 0;
	if (nemit > EM_PART) {
		bound[0] = 0;
		for (int lo = 0; lo < nemit;) {
			int hi = lo + EM_PART < nemit ? lo + EM_PART : nemit;
			while (hi < nemit && e->in_grp[order[hi]])
				hi++;
			bound[++nparts] = hi;
			lo = hi;
		}
	}
	e->inplace_in = em_alloc(sizeof *e->inplace_in * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++)
		e->inplace_in[i] = -1;
	if (e->bar_ok && strcmp(fn, "step_vjp") == 0 && !e->o.no_fuse && !e->o.no_loop_fuse && !e->o.no_bar_in_place)
		plan_bar_in_place(e, order, nemit);
	for (int part = 0; part < nparts; part++) {
		int lo = bound[part], hi = bound[part + 1];
		memset(need, 0, sizeof *need * (size_t)n);
		for (int k = lo; k < hi; k++)
			mark_need(e, need, order[k], true);
		out(e, "/* %s, part %d of %d: IR nodes %%%d to %%%d */\n", fn, part + 1, nparts, order[lo], order[hi - 1]);
		out(e, "%s%s_%s_%d(const %s *a)\n{\n", part_attr, e->pre, fn, part + 1, args);
		emit_decls(e, need);
		for (int k = lo; k < hi; k++)
			emit_node(e, order[k]);
		line_to_c(e);
		out(e, "}\n\n");
	}
	out(e, "%svoid %s_%s(const %s *a)\n{\n", e->o.use_double ? "" : "static ", e->pre, fn, args);
	memset(need, 0, sizeof *need * (size_t)n);
	if (nparts) {
		for (int part = 0; part < nparts; part++)
			out(e, "\t%s_%s_%d(a);\n", e->pre, fn, part + 1);
	} else {
		for (int k = 0; k < nemit; k++)
			mark_need(e, need, order[k], true);
	}
	for (int k = 0; k < f->nouts; k++)
		if (e->direct[f->outs[k].node] != k)
			need[f->outs[k].node] = true;
	emit_decls(e, need);
	for (int k = 0; nparts == 0 && k < nemit; k++)
		emit_node(e, order[k]);
	line_to_c(e);
	out(e, "\n");
	for (int k = 0; k < f->nouts; k++)
		if (e->direct[f->outs[k].node] != k)
			emit_output(e, &f->outs[k]);
	out(e, "}\n\n");
	free(need);
	free(order);
	free(bound);

	for (int i = 0; i < n; i++)
		free(e->var[i]);
	for (int k = 0; k < e->nused; k++)
		free(e->used[k]);
	free(e->used);
	free(e->var);
	free(e->last);
	free(e->direct);
	free(e->acc_direct);
	free(e->fuse);
	free(e->grp);
	free(e->in_grp);
	free(e->nostore);
	e->nostore = NULL;
	free(e->inplace_in);
	e->inplace_in = NULL;
	e->in_grp = NULL;
	e->direct = e->fuse = e->grp = NULL;
	e->acc_direct = NULL;
	e->var = NULL;
	e->last = NULL;
	e->used = NULL;
	e->f = NULL;
}

/* ---- the file ---- */

static const char *init_name(PlInit i)
{
	switch (i) {
	case PL_INIT_ZERO: return "PL_INIT_ZERO";
	case PL_INIT_CONST: return "PL_INIT_CONST";
	case PL_INIT_UNIFORM: return "PL_INIT_UNIFORM";
	case PL_INIT_UNIFORM_AB: return "PL_INIT_UNIFORM_AB";
	case PL_INIT_NORMAL: return "PL_INIT_NORMAL";
	case PL_INIT_ABS_NORMAL: return "PL_INIT_ABS_NORMAL";
	case PL_INIT_IDENTITY: return "PL_INIT_IDENTITY";
	}
	return "PL_INIT_ZERO";
}

static void emit_tensor_table(Em *e, const char *what, const ProgTensor *t, int n)
{
	if (n == 0)
		return;
	out(e, "static const PlTensorDesc %s_%s[%d] = {\n", e->pre, what, n);
	for (int i = 0; i < n; i++) {
		char a[48], b[48];
		snprintf(a, sizeof a, "%.17g", t[i].init_a);
		snprintf(b, sizeof b, "%.17g", t[i].init_b);
		out(e, "\t{");
		put_cstring(e, t[i].name);
		out(e, ", %d, {", t[i].shape.rank);
		for (int k = 0; k < PL_MAX_RANK; k++)
			out(e, "%s%" PRId64, k ? ", " : "", k < t[i].shape.rank ? t[i].shape.d[k] : 0);
		out(e, "}, %s, %s, %s, %d, %d},\n", init_name(t[i].init), a, b, t[i].trainable ? 1 : 0,
			t[i].running ? 1 : 0);
	}
	out(e, "};\n\n");
}

static const char *loss_name(PlLoss l)
{
	switch (l) {
	case PL_LOSS_MSE: return "PL_LOSS_MSE";
	case PL_LOSS_CE: return "PL_LOSS_CE";
	case PL_LOSS_SSE: return "PL_LOSS_SSE";
	}
	return "PL_LOSS_MSE";
}

static void emit_prologue(Em *e)
{
	const Program *p = e->p;
	out(e, "/* Generated by plastc %s from %s -- do not edit; regenerate with `plastc emit-c`.\n",
		PACKAGE_VERSION, p->source ? p->source : "(unknown source)");
	out(e, " * model %s, hash %s, settings: %s\n", p->name ? p->name : "?", p->hash,
		p->settings && p->settings[0] ? p->settings : "(defaults)");
	out(e, " * %s arithmetic; parameters, inputs and state follow runtime/plastrt.h (row-major, batch first).\n */\n",
		e->real);
	out(e, "#include <math.h>\n#include <stddef.h>\n\n#include <cblas.h>\n\n#include \"plastrt.h\"\n");
	/* the convolution kernels (im2col + GEMM, runtime/pl_img.h) in this file's precision */
	out(e, "%s#include \"pl_img.h\"\n\n", e->o.use_double ? "#define PL_IMG_DOUBLE 1\n" : "");
	out(e, "typedef %s real;\n\n", e->real);
	/* ops whose C form names its operand twice: as functions, a fused operand is written once */
	out(e, "/* elementwise ops of the IR that are not C operators (max/min: ties go to b, as the VJP) */\n");
	out(e, "static inline real op_square(real x) { return x * x; }\n");
	out(e, "static inline real op_relu(real x) { return x > 0 ? x : 0; }\n");
	out(e, "static inline real op_sigmoid(real x) { return 1 / (1 + exp%s(-x)); }\n", e->fsuf);
	out(e, "static inline real op_step(real x) { return (real)(x > 0); }\n");
	out(e, "static inline real op_sign(real x) { return (real)((x > 0) - (x < 0)); }\n");
	out(e, "static inline real op_max(real a, real b) { return a > b ? a : b; }\n");
	out(e, "static inline real op_min(real a, real b) { return a < b ? a : b; }\n\n");
	if (e->o.use_double) {
		out(e, "/* PlStepArgs with double buffers (derivative checks); same fields, same meaning. */\n");
		out(e, "typedef struct PlStepArgsD {\n\tint B;\n\tint B_global;\n\tdouble *const *params;\n"
		       "\tconst double *x;\n\tdouble *const *state_in;\n\tdouble *const *state_out;\n\tdouble *y;\n"
		       "\tdouble *o;\n\tconst double *y_bar;\n\tdouble *const *state_out_bar;\n"
		       "\tdouble *const *state_in_bar;\n\tdouble *const *param_bar;\n\tdouble *work;\n} PlStepArgsD;\n\n");
		out(e, "void %s_step_forward(const PlStepArgsD *a);\nvoid %s_step_vjp(const PlStepArgsD *a);\n"
		       "size_t %s_work_floats(int B);\n",
			e->pre, e->pre, e->pre);
		if (e->p->fwd_eval)
			out(e, "void %s_step_forward_eval(const PlStepArgsD *a);\n", e->pre);
		out(e, "\n");
	}
}

static void emit_descriptor(Em *e, MemPlan *pf, MemPlan *pv, MemPlan *pe)
{
	const Program *p = e->p;
	bool dbl = e->o.use_double;
	out(e, "/* %s_work_floats: scratch (in %ss) that either step function needs for B trials */\n", e->pre,
		e->real);
	out(e, "%ssize_t %s_work_floats(int B)\n{\n", dbl ? "" : "static ", e->pre);
	out(e, "\tsize_t fwd = (size_t)%" PRId64 " * (size_t)B + %" PRId64 ";\n", pf->total_b, pf->total_c);
	if (pv)
		out(e, "\tsize_t vjp = (size_t)%" PRId64 " * (size_t)B + %" PRId64 ";\n", pv->total_b, pv->total_c);
	else
		out(e, "\tsize_t vjp = 0;\n");
	if (pe) {
		out(e, "\tsize_t eval = (size_t)%" PRId64 " * (size_t)B + %" PRId64 ";\n", pe->total_b, pe->total_c);
		out(e, "\tif (eval > fwd)\n\t\tfwd = eval;\n");
	}
	out(e, "\treturn fwd > vjp ? fwd : vjp;\n}\n\n");
	if (dbl)
		return;
	emit_tensor_table(e, "params", p->params, p->n_params);
	emit_tensor_table(e, "state", p->state, p->n_state);
	bool any_ok = false;
	for (int j = 0; j < p->n_state; j++)
		any_ok = any_ok || e->bar_ok[j];
	if (any_ok) {
		out(e, "/* states whose adjoint step_vjp may update in place (PlModel.bar_in_place) */\n");
		out(e, "static const unsigned char %s_bar_in_place[%d] = {", e->pre, p->n_state);
		for (int j = 0; j < p->n_state; j++)
			out(e, "%s%d", j ? ", " : "", e->bar_ok[j] ? 1 : 0);
		out(e, "};\n\n");
	}
	out(e, "const PlModel %s_model = {\n", e->pre);
	out(e, "\t.abi_version = PL_ABI_VERSION,\n\t.name = ");
	put_cstring(e, p->name ? p->name : "model");
	out(e, ",\n\t.hash = ");
	put_cstring(e, p->hash);
	out(e, ",\n\t.source = ");
	put_cstring(e, p->source ? p->source : "");
	out(e, ",\n\t.settings = ");
	put_cstring(e, p->settings ? p->settings : "");
	out(e, ",\n\t.in_size = %d,\n\t.pred_size = %d,\n\t.out_size = %d,\n", p->in_size, p->pred_size, p->out_size);
	out(e, "\t.meta_loss = %s,\n", loss_name(p->meta_loss));
	if (p->n_params)
		out(e, "\t.n_params = %d,\n\t.params = %s_params,\n", p->n_params, e->pre);
	else
		out(e, "\t.n_params = 0,\n\t.params = NULL,\n");
	if (p->n_state)
		out(e, "\t.n_state = %d,\n\t.state = %s_state,\n", p->n_state, e->pre);
	else
		out(e, "\t.n_state = 0,\n\t.state = NULL,\n");
	out(e, "\t.work_floats = %s_work_floats,\n\t.step_forward = %s_step_forward,\n", e->pre, e->pre);
	out(e, "\t.step_vjp = %s%s,\n", p->vjp ? e->pre : "NULL", p->vjp ? "_step_vjp" : "");
	out(e, "\t.couples_rows = %d,\n", p->couples_rows ? 1 : 0);
	out(e, "\t.step_forward_eval = %s%s,\n", p->fwd_eval ? e->pre : "NULL",
		p->fwd_eval ? "_step_forward_eval" : "");
	if (any_ok)
		out(e, "\t.bar_in_place = %s_bar_in_place,\n};\n", e->pre);
	else
		out(e, "\t.bar_in_place = NULL,\n};\n");
	if (e->o.main)
		out(e, "\nint main(int argc, char **argv)\n{\n\treturn pl_main(&%s_model, argc, argv);\n}\n", e->pre);
}

/* Replaces each "#line @@" with the number of the line after it, so that the C compiler's line numbers
 * return to the generated file after a stretch mapped to the .plast file. */
static void fix_lines(const char *text, size_t len, FILE *dst)
{
	long line = 1;
	for (size_t k = 0; k < len;) {
		const char *nl = memchr(text + k, '\n', len - k);
		size_t end = nl ? (size_t)(nl - text) + 1 : len;
		if (strncmp(text + k, "#line @@ ", 9) == 0 && end - k >= 9) {
			fprintf(dst, "#line %ld ", line + 1);
			fwrite(text + k + 9, 1, end - k - 9, dst);
		} else {
			fwrite(text + k, 1, end - k, dst);
		}
		line++;
		k = end;
	}
}

int emitc_program(const Program *p, const EmitcOptions *o, FILE *dst, FILE *err)
{
	Em e;
	memset(&e, 0, sizeof e);
	e.p = p;
	if (o)
		e.o = *o;
	/* for A/B timing through commands that compile internally (train, bench; see docs/PERFORMANCE.md) */
	const char *nlf = getenv("PLASTC_NO_LOOP_FUSE");
	if (nlf && nlf[0] && strcmp(nlf, "0") != 0)
		e.o.no_loop_fuse = true;
	const char *nls = getenv("PLASTC_NO_LOOP_SCHED");
	if (nls && nls[0] && strcmp(nls, "0") != 0)
		e.o.no_loop_sched = true;
	const char *nlc = getenv("PLASTC_NO_LOOP_CHAIN");
	if (nlc && nlc[0] && strcmp(nlc, "0") != 0)
		e.o.no_loop_chain = true;
	const char *nbp = getenv("PLASTC_NO_BAR_IN_PLACE");
	if (nbp && nbp[0] && strcmp(nbp, "0") != 0)
		e.o.no_bar_in_place = true;
	const char *nbi = getenv("PLASTC_NO_BATCH_INNER");
	if (nbi && nbi[0] && strcmp(nbi, "0") != 0)
		e.o.no_batch_inner = true;
	e.err = err ? err : stderr;
	e.real = e.o.use_double ? "double" : "float";
	e.fsuf = e.o.use_double ? "" : "f";
	emitc_symbol_prefix(p, e.pre, sizeof e.pre);
	if (e.o.c_name)
		snprintf(e.c_name, sizeof e.c_name, "%s", e.o.c_name);
	else
		snprintf(e.c_name, sizeof e.c_name, "%s.c", e.pre);
	if (!p->fwd) {
		fprintf(e.err, "plastc: internal error: emit-c: model %s has no step function\n", e.pre);
		return 2;
	}
	const IrFunc *fs[3] = {p->fwd, p->vjp, p->fwd_eval};
	for (int k = 0; k < 3; k++)
		if (fs[k] && ir_verify(fs[k], e.err) != 0)
			return 2;

	e.bar_ok = em_alloc((size_t)(p->n_state > 0 ? p->n_state : 1));
	char *text = NULL;
	size_t len = 0;
	e.out = open_memstream(&text, &len);
	if (!e.out)
		ir_fatal("out of memory");
	emit_prologue(&e);
	emit_function(&e, p->fwd, "step_forward",
		"one time step of the model for a->B trials: the prediction y, all outputs o (if a->o)\n"
		" * and the state leaving the step, from the parameters, the input x and the state entering the\n"
		" * step (including the plasticity update).");
	MemPlan *pf = e.mp;
	MemPlan *pv = NULL;
	if (p->vjp) {
		emit_function(&e, p->vjp, "step_vjp",
			"the vector-Jacobian product of step_forward: given y_bar and state_out_bar (the\n"
			" * adjoints of its results), the adjoints of its inputs with respect to every parameter\n"
			" * (accumulated into param_bar) and every state tensor entering the step (state_in_bar).\n"
			" * The forward step is recomputed first from params, x and state_in.");
		pv = e.mp;
	}
	MemPlan *pe = NULL;
	if (p->fwd_eval) {
		emit_function(&e, p->fwd_eval, "step_forward_eval",
			"step_forward for evaluation: batch norm normalises with the running statistics (parameters)\n"
			" * instead of the batch's, and nothing is written to param_bar.");
		pe = e.mp;
	}
	emit_descriptor(&e, pf, pv, pe);
	free(e.bar_ok);
	fclose(e.out);
	memplan_free(pf);
	memplan_free(pv);
	memplan_free(pe);
	if (e.failed) {
		free(text);
		return 2;
	}
	fix_lines(text, len, dst);
	free(text);
	return 0;
}

int emitc_write(const Program *p, const EmitcOptions *o, const char *path, FILE *err)
{
	FILE *f = stdout;
	if (!err)
		err = stderr;
	if (strcmp(path, "-") != 0) {
		f = fopen(path, "w");
		if (!f) {
			fprintf(err, "plastc: error: %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	EmitcOptions opt = {0};
	if (o)
		opt = *o;
	if (!opt.c_name && f != stdout)
		opt.c_name = path;
	int rc = emitc_program(p, &opt, f, err);
	if (f != stdout) {
		if (fclose(f) != 0 && rc == 0) {
			fprintf(err, "plastc: error: %s: %s\n", path, strerror(errno));
			rc = 1;
		}
	} else {
		fflush(f);
	}
	return rc;
}
