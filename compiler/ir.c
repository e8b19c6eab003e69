/* compiler/ir.c -- the op table, shapes and broadcasting, the IR builder with shape inference, the
 * verifier and the printer.
 *
 * Shape rules (one function, ir_infer_shape, used by the builder and the verifier alike so the two can
 * never disagree):
 *   EW       broadcast of the operands (per-trial dims right-aligned, batch flag or-ed)
 *   EXPAND   caller's shape; the operand must broadcast to it
 *   SUM_TO   caller's shape; it must broadcast to the operand
 *   RESHAPE  caller's shape; same per-trial numel and batch flag
 *   SLICE    last axis a0:a1          PAD  last axis a1, operand at offset a0
 *   CONCAT   equal but for the last axis, which adds up
 *   MATMUL   see ir_matmul_dims; BMV/BMVT/OUTER need batched vectors and matrices.
 *   CONV2D*, MAXPOOL, POOL_*   images [C,H,W], kernels [Co,C,k*k]: conv_shape and pool_shape.
 */
#include "ir.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The table stores names in lower case, as the dumps print them. The preprocessor cannot change case,
 * so the entries point into ir_lower_names, which a constructor fills from the enum spelling before
 * main runs (and ir_op_name fills on demand, for safety in unusual link orders). */
static char ir_lower_names[IR_OP_COUNT][16];
static const char *const ir_upper_names[IR_OP_COUNT] = {
#define OP(name, nin, flags, doc) [IR_##name] = #name,
#include "ops.def"
#undef OP
};

const IrOpInfo ir_op_info[IR_OP_COUNT] = {
#define OP(name, nin, flags, doc) [IR_##name] = {ir_lower_names[IR_##name], nin, flags, doc},
#include "ops.def"
#undef OP
};

static void fill_lower_names(void)
{
	for (int op = 0; op < IR_OP_COUNT; op++) {
		const char *s = ir_upper_names[op];
		size_t i;
		for (i = 0; s[i] && i + 1 < sizeof ir_lower_names[op]; i++)
			ir_lower_names[op][i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
		ir_lower_names[op][i] = 0;
	}
}

#if defined(__GNUC__)
__attribute__((constructor)) static void ir_init_names(void)
{
	fill_lower_names();
}
#endif

/* The table must agree with itself: leaves and only leaves have no operands, nothing has more than
 * IR_MAX_IN, and the categories EW / SHAPE / LINALG / LEAF are exclusive. */
#define OP(name, nin, flags, doc)                                                                        \
	static_assert((nin) >= 0 && (nin) <= IR_MAX_IN, #name ": operand count out of range");           \
	static_assert((((flags) & IRF_LEAF) != 0) == ((nin) == 0), #name ": leaf flag disagrees with nin"); \
	static_assert(((((flags) & IRF_LEAF) != 0) + (((flags) & IRF_EW) != 0) + (((flags) & IRF_SHAPE) != 0) + \
			      (((flags) & IRF_LINALG) != 0)) == 1,                                         \
		#name ": exactly one of LEAF, EW, SHAPE, LINALG");                                       \
	static_assert(!((flags) & IRF_COMMUTE) || (nin) == 2, #name ": commutative ops are binary");
#include "ops.def"
#undef OP

const char *ir_op_name(IrOp op)
{
	if ((int)op < 0 || op >= IR_OP_COUNT)
		return "?";
	if (!ir_lower_names[0][0])
		fill_lower_names();
	return ir_lower_names[op];
}

void ir_fatal(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "plastc: internal error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		ir_fatal("out of memory");
	return q;
}

static char *xstrdup(const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *d = xrealloc(NULL, n);
	memcpy(d, s, n);
	return d;
}

/* ---- shapes ---- */

IrShape ir_shape(bool batch, int rank, const int64_t *d)
{
	IrShape s = {batch, rank, {0, 0, 0}};
	if (rank < 0 || rank > IR_MAX_RANK)
		ir_fatal("shape rank %d out of range", rank);
	for (int i = 0; i < rank; i++)
		s.d[i] = d[i];
	return s;
}

IrShape ir_shape0(bool batch)
{
	return ir_shape(batch, 0, NULL);
}

IrShape ir_shape1(bool batch, int64_t n)
{
	return ir_shape(batch, 1, &n);
}

IrShape ir_shape2(bool batch, int64_t m, int64_t n)
{
	int64_t d[2] = {m, n};
	return ir_shape(batch, 2, d);
}

bool ir_shape_eq(IrShape a, IrShape b)
{
	if (a.batch != b.batch || a.rank != b.rank)
		return false;
	for (int i = 0; i < a.rank; i++)
		if (a.d[i] != b.d[i])
			return false;
	return true;
}

int64_t ir_shape_numel(IrShape s)
{
	int64_t n = 1;
	for (int i = 0; i < s.rank; i++)
		n *= s.d[i];
	return n;
}

bool ir_shape_broadcast(IrShape a, IrShape b, IrShape *out)
{
	IrShape r;
	r.batch = a.batch || b.batch;
	r.rank = a.rank > b.rank ? a.rank : b.rank;
	for (int i = 0; i < IR_MAX_RANK; i++)
		r.d[i] = 0;
	for (int k = 0; k < r.rank; k++) {
		/* k counts from the right */
		int64_t da = k < a.rank ? a.d[a.rank - 1 - k] : 1;
		int64_t db = k < b.rank ? b.d[b.rank - 1 - k] : 1;
		int64_t dr;
		if (da == db || db == 1)
			dr = da;
		else if (da == 1)
			dr = db;
		else
			return false;
		r.d[r.rank - 1 - k] = dr;
	}
	if (out)
		*out = r;
	return true;
}

bool ir_shape_broadcastable_to(IrShape from, IrShape to)
{
	if (from.batch && !to.batch)
		return false;
	if (from.rank > to.rank)
		return false;
	for (int k = 0; k < from.rank; k++) {
		int64_t df = from.d[from.rank - 1 - k], dt = to.d[to.rank - 1 - k];
		if (df != dt && df != 1)
			return false;
	}
	return true;
}

int ir_shape_str(IrShape s, char *buf, size_t n)
{
	size_t len = 0;
	int w;
#define PUT(...)                                                              \
	do {                                                                  \
		w = snprintf(buf + (len < n ? len : n), len < n ? n - len : 0, __VA_ARGS__); \
		if (w > 0)                                                    \
			len += (size_t)w;                                     \
	} while (0)
	if (n)
		buf[0] = 0;
	PUT("[");
	if (s.batch)
		PUT("B%s", s.rank ? "," : "");
	for (int i = 0; i < s.rank; i++)
		PUT("%" PRId64 "%s", s.d[i], i + 1 < s.rank ? "," : "");
	PUT("]");
#undef PUT
	return (int)len;
}

/* A MATMUL operand as a matrix: rows x cols where -1 stands for the run-time batch dimension B.
 * Unbatched rank 2 [m,n] is m x n; batched rank 1 [B,k] is B x k. Anything else is not a matrix. */
static bool matmul_dims(IrShape s, bool t, int64_t *r, int64_t *c)
{
	int64_t rr, cc;
	if (!s.batch && s.rank == 2) {
		rr = s.d[0];
		cc = s.d[1];
	} else if (s.batch && s.rank == 1) {
		rr = -1;
		cc = s.d[0];
	} else {
		return false;
	}
	*r = t ? cc : rr;
	*c = t ? rr : cc;
	return true;
}

static bool is_bvec(IrShape s)
{
	return s.batch && s.rank == 1;
}

static bool is_bmat(IrShape s)
{
	return s.batch && s.rank == 2;
}

int64_t ir_conv_out_side(int64_t n, int64_t k, int64_t s, int64_t p)
{
	if (k < 1 || s < 1 || p < 0 || n + 2 * p < k)
		return 0;
	return (n + 2 * p - k) / s + 1;
}

/* Shapes of the convolution family (ops.def): the image x [C,H,W], the kernel w [Co,C,k*k] and the
 * output-side image g [Co,Ho,Wo] with Ho, Wo = ir_conv_out_side(H, W). Each op gets two of the three and
 * yields the third; conv2d_t cannot infer H, W (strides), so its caller gives them and they are checked. */
static const char *conv_shape(IrOp op, const IrShape *x, const IrShape *y, const int64_t *a, IrShape *out)
{
	int64_t k = a[0], s = a[1], p = a[2];
	if (k < 1 || s < 1 || p < 0 || p >= k)
		return "convolution needs k >= 1, stride >= 1 and 0 <= padding < k";
	if (x->rank != 3 || y->rank != 3)
		return "convolution operands must be [C,H,W] images and [Co,C,k*k] kernels";
	const IrShape *img, *ker, *og;
	IrShape res;
	switch (op) {
	case IR_CONV2D: /* x = img, y = ker */
		img = x;
		ker = y;
		if (ker->d[1] != img->d[0] || ker->d[2] != k * k)
			return "conv2d kernel is not [Co,C,k*k] for the image's C";
		res.batch = img->batch || ker->batch;
		res.rank = 3;
		res.d[0] = ker->d[0];
		res.d[1] = ir_conv_out_side(img->d[1], k, s, p);
		res.d[2] = ir_conv_out_side(img->d[2], k, s, p);
		if (res.d[1] < 1 || res.d[2] < 1)
			return "conv2d kernel larger than the padded image";
		*out = res;
		return NULL;
	case IR_CONV2D_T: /* x = og, y = ker, out = img (given) */
		og = x;
		ker = y;
		if (out->rank != 3 || out->batch != (og->batch || ker->batch))
			return "conv2d_t result must be a [C,H,W] image, batched iff an operand is";
		if (ker->d[2] != k * k || ker->d[0] != og->d[0] || ker->d[1] != out->d[0])
			return "conv2d_t kernel is not [Co,C,k*k] for the channels of g and of the result";
		if (ir_conv_out_side(out->d[1], k, s, p) != og->d[1] || ir_conv_out_side(out->d[2], k, s, p) != og->d[2])
			return "conv2d_t result side does not convolve to the side of g";
		return NULL;
	case IR_CONV2D_W: /* x = img, y = og, out = ker */
		img = x;
		og = y;
		if (ir_conv_out_side(img->d[1], k, s, p) != og->d[1] || ir_conv_out_side(img->d[2], k, s, p) != og->d[2])
			return "conv2d_w image side does not convolve to the side of g";
		res.batch = img->batch || og->batch;
		res.rank = 3;
		res.d[0] = og->d[0];
		res.d[1] = img->d[0];
		res.d[2] = k * k;
		*out = res;
		return NULL;
	default:
		return "not a convolution";
	}
}

/* Shapes of pooling: windows k x k with stride s over [C,H,W]. The selector idx has the pooled shape. */
static const char *pool_shape(IrOp op, const IrShape *x, const IrShape *y, const int64_t *a, IrShape *out)
{
	int64_t k = a[0], s = a[1];
	if (k < 1 || s < 1)
		return "pooling needs k >= 1 and stride >= 1";
	if (x->rank != 3)
		return "pooling operand must be a [C,H,W] image";
	switch (op) {
	case IR_MAXPOOL:
	case IR_POOL_ARGMAX:
	case IR_POOL_GATHER: {
		IrShape res = *x;
		res.d[1] = ir_conv_out_side(x->d[1], k, s, 0);
		res.d[2] = ir_conv_out_side(x->d[2], k, s, 0);
		if (res.d[1] < 1 || res.d[2] < 1)
			return "pooling window larger than the image";
		if (op == IR_POOL_GATHER) {
			if (y->rank != 3 || y->d[0] != res.d[0] || y->d[1] != res.d[1] || y->d[2] != res.d[2])
				return "pool_gather selector is not the pooled shape of the image";
			res.batch = x->batch || y->batch;
		}
		*out = res;
		return NULL;
	}
	case IR_POOL_SCATTER: /* x = g (pooled), y = idx, out = image (given) */
		if (y->rank != 3 || y->d[0] != x->d[0] || y->d[1] != x->d[1] || y->d[2] != x->d[2])
			return "pool_scatter selector is not the shape of g";
		if (out->rank != 3 || out->batch != (x->batch || y->batch) || out->d[0] != x->d[0])
			return "pool_scatter result must be a [C,H,W] image with g's C, batched iff an operand is";
		if (ir_conv_out_side(out->d[1], k, s, 0) != x->d[1] || ir_conv_out_side(out->d[2], k, s, 0) != x->d[2])
			return "pool_scatter result side does not pool to the side of g";
		return NULL;
	default:
		return "not a pooling op";
	}
}

/* The one shape rule per op. For ops whose shape is the caller's (leaves, EXPAND, SUM_TO, RESHAPE)
 * `out` holds that shape on entry and is only checked. Returns NULL if fine, else a static message. */
const char *ir_infer_shape(IrOp op, const IrShape *x, const IrShape *y, double f, const int64_t *a,
	IrShape *out)
{
	(void)f;
	switch (op) {
	case IR_PARAM:
		if (out->batch)
			return "a parameter has no batch dimension";
		return NULL;
	case IR_INPUT:
	case IR_CONST:
		return NULL;
	case IR_INV_BATCH:
		if (out->batch || out->rank != 0)
			return "inv_batch is an unbatched scalar";
		return NULL;
	case IR_EXPAND:
		if (!ir_shape_broadcastable_to(*x, *out))
			return "operand does not broadcast to the expand shape";
		return NULL;
	case IR_SUM_TO:
		if (!ir_shape_broadcastable_to(*out, *x))
			return "sum_to shape does not broadcast to the operand";
		return NULL;
	case IR_RESHAPE:
		if (out->batch != x->batch || ir_shape_numel(*out) != ir_shape_numel(*x))
			return "reshape changes the element count or the batch flag";
		return NULL;
	case IR_SLICE:
		if (x->rank < 1)
			return "slice of a scalar";
		if (a[0] < 0 || a[1] <= a[0] || a[1] > x->d[x->rank - 1])
			return "slice bounds out of range";
		*out = *x;
		out->d[x->rank - 1] = a[1] - a[0];
		return NULL;
	case IR_PAD:
		if (x->rank < 1)
			return "pad of a scalar";
		if (a[0] < 0 || a[0] + x->d[x->rank - 1] > a[1])
			return "pad does not fit";
		*out = *x;
		out->d[x->rank - 1] = a[1];
		return NULL;
	case IR_CONCAT:
		if (x->rank < 1 || x->rank != y->rank || x->batch != y->batch)
			return "concat operands differ in rank or batch";
		for (int i = 0; i + 1 < x->rank; i++)
			if (x->d[i] != y->d[i])
				return "concat operands differ before the last axis";
		*out = *x;
		out->d[x->rank - 1] = x->d[x->rank - 1] + y->d[y->rank - 1];
		return NULL;
	case IR_MATMUL: {
		int64_t ra, ca, rb, cb;
		if (a[0] < 0 || a[0] > 1 || a[1] < 0 || a[1] > 1)
			return "matmul transpose flags must be 0 or 1";
		if (!matmul_dims(*x, a[0], &ra, &ca) || !matmul_dims(*y, a[1], &rb, &cb))
			return "matmul operand is not a matrix ([m,n] or [B,k])";
		if (ca != rb)
			return "matmul inner dimensions differ";
		if (cb == -1)
			return "matmul result would have the batch as its column dimension";
		*out = ra == -1 ? ir_shape1(true, cb) : ir_shape2(false, ra, cb);
		return NULL;
	}
	case IR_BMV:
		if (!is_bvec(*x) || !is_bmat(*y) || x->d[0] != y->d[0])
			return "bmv needs x [B,I] and W [B,I,J]";
		*out = ir_shape1(true, y->d[1]);
		return NULL;
	case IR_BMVT:
		if (!is_bmat(*x) || !is_bvec(*y) || x->d[1] != y->d[0])
			return "bmvt needs W [B,I,J] and g [B,J]";
		*out = ir_shape1(true, x->d[0]);
		return NULL;
	case IR_OUTER:
		if (!is_bvec(*x) || !is_bvec(*y))
			return "outer needs a [B,I] and c [B,J]";
		*out = ir_shape2(true, x->d[0], y->d[0]);
		return NULL;
	case IR_CONV2D:
	case IR_CONV2D_T:
	case IR_CONV2D_W:
		return conv_shape(op, x, y, a, out);
	case IR_MAXPOOL:
	case IR_POOL_ARGMAX:
	case IR_POOL_GATHER:
	case IR_POOL_SCATTER:
		return pool_shape(op, x, y, a, out);
	default:
		break;
	}
	if (ir_op_info[op].flags & IRF_EW) {
		if (ir_op_info[op].nin == 1) {
			*out = *x;
			return NULL;
		}
		if (!ir_shape_broadcast(*x, *y, out))
			return "operand shapes do not broadcast";
		return NULL;
	}
	return "op has no shape rule";
}

/* ---- functions ---- */

IrFunc *ir_func_new(const char *name)
{
	IrFunc *f = xrealloc(NULL, sizeof *f);
	memset(f, 0, sizeof *f);
	f->name = xstrdup(name ? name : "f");
	return f;
}

void ir_func_free(IrFunc *f)
{
	if (!f)
		return;
	for (int i = 0; i < f->n; i++)
		free(f->nodes[i].name);
	for (int i = 0; i < f->nins; i++)
		free(f->ins[i].name);
	for (int i = 0; i < f->nouts; i++)
		free(f->outs[i].name);
	free(f->nodes);
	free(f->ins);
	free(f->outs);
	free(f->name);
	free(f);
}

IrFunc *ir_func_clone(const IrFunc *f, const char *name)
{
	IrFunc *g = ir_func_new(name ? name : f->name);
	g->cap = f->n > 0 ? f->n : 1;
	g->nodes = xrealloc(NULL, sizeof *g->nodes * (size_t)g->cap);
	g->n = f->n;
	for (int i = 0; i < f->n; i++) {
		g->nodes[i] = f->nodes[i];
		g->nodes[i].name = xstrdup(f->nodes[i].name);
	}
	g->cap_ins = g->nins = f->nins;
	g->ins = xrealloc(NULL, sizeof *g->ins * (size_t)(f->nins ? f->nins : 1));
	for (int i = 0; i < f->nins; i++) {
		g->ins[i] = f->ins[i];
		g->ins[i].name = xstrdup(f->ins[i].name);
	}
	g->cap_outs = g->nouts = f->nouts;
	g->outs = xrealloc(NULL, sizeof *g->outs * (size_t)(f->nouts ? f->nouts : 1));
	for (int i = 0; i < f->nouts; i++) {
		g->outs[i] = f->outs[i];
		g->outs[i].name = xstrdup(f->outs[i].name);
	}
	if (g->cap_ins == 0)
		g->cap_ins = 1;
	if (g->cap_outs == 0)
		g->cap_outs = 1;
	return g;
}

static int push_node(IrFunc *f, IrNode nd)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 64;
		f->nodes = xrealloc(f->nodes, sizeof *f->nodes * (size_t)f->cap);
	}
	f->nodes[f->n] = nd;
	return f->n++;
}

bool ir_op_shape_given(IrOp op)
{
	return op == IR_EXPAND || op == IR_SUM_TO || op == IR_RESHAPE || op == IR_CONV2D_T || op == IR_POOL_SCATTER ||
		((ir_op_info[op].flags & IRF_LEAF) && op != IR_INV_BATCH);
}

int ir_add_full(IrFunc *f, IrOp op, int a, int b, const IrShape *shape, double fv, const int64_t *attrs,
	SrcSpan loc)
{
	if ((int)op < 0 || op >= IR_OP_COUNT)
		ir_fatal("ir_add: bad op %d", (int)op);
	const IrOpInfo *info = &ir_op_info[op];
	int in[IR_MAX_IN] = {a, b};
	for (int k = 0; k < IR_MAX_IN; k++) {
		if (k < info->nin) {
			if (in[k] < 0 || in[k] >= f->n)
				ir_fatal("%s: %s operand %d is %d, not a node of %s", f->name, ir_op_name(op), k, in[k],
					f->name);
		} else {
			in[k] = -1;
		}
	}
	IrNode nd;
	memset(&nd, 0, sizeof nd);
	nd.op = op;
	nd.dtype = IR_REAL;
	nd.in[0] = in[0];
	nd.in[1] = in[1];
	nd.f = fv;
	if (attrs)
		memcpy(nd.a, attrs, sizeof nd.a);
	nd.loc = loc;
	bool given = ir_op_shape_given(op);
	if (given) {
		if (!shape)
			ir_fatal("%s: %s needs an explicit shape", f->name, ir_op_name(op));
		nd.shape = *shape;
	} else if (op == IR_INV_BATCH) {
		nd.shape = ir_shape0(false);
	}
	const IrShape *x = info->nin > 0 ? &f->nodes[in[0]].shape : NULL;
	const IrShape *y = info->nin > 1 ? &f->nodes[in[1]].shape : NULL;
	const char *why = ir_infer_shape(op, x, y, fv, nd.a, &nd.shape);
	if (why) {
		char sx[64] = "", sy[64] = "", so[64] = "";
		if (x)
			ir_shape_str(*x, sx, sizeof sx);
		if (y)
			ir_shape_str(*y, sy, sizeof sy);
		ir_shape_str(nd.shape, so, sizeof so);
		ir_fatal("%s: ill-typed %s (%s %s -> %s): %s", f->name, ir_op_name(op), sx, sy, given ? so : "?",
			why);
	}
	if (!given && shape && !ir_shape_eq(*shape, nd.shape)) {
		char s1[64], s2[64];
		ir_shape_str(*shape, s1, sizeof s1);
		ir_shape_str(nd.shape, s2, sizeof s2);
		ir_fatal("%s: %s requested shape %s but the operands give %s", f->name, ir_op_name(op), s1, s2);
	}
	return push_node(f, nd);
}

int ir_add(IrFunc *f, IrOp op, int a, int b, SrcSpan loc)
{
	/* SLICE, PAD and the image ops have no meaningful default attributes; MATMUL defaults to no
	 * transposes */
	if (op == IR_SLICE || op == IR_PAD)
		ir_fatal("%s: %s needs attributes (use ir_slice / ir_pad)", f->name, ir_op_name(op));
	if (op == IR_CONV2D || op == IR_CONV2D_T || op == IR_CONV2D_W || op == IR_MAXPOOL || op == IR_POOL_ARGMAX ||
		op == IR_POOL_GATHER || op == IR_POOL_SCATTER)
		ir_fatal("%s: %s needs attributes (use ir_conv2d* / ir_pool*)", f->name, ir_op_name(op));
	return ir_add_full(f, op, a, b, NULL, 0.0, NULL, loc);
}

int ir_add_shaped(IrFunc *f, IrOp op, int a, int b, IrShape shape, SrcSpan loc)
{
	return ir_add_full(f, op, a, b, &shape, 0.0, NULL, loc);
}

int ir_const(IrFunc *f, double v, IrShape shape, SrcSpan loc)
{
	return ir_add_full(f, IR_CONST, -1, -1, &shape, v, NULL, loc);
}

int ir_param(IrFunc *f, int param_index, IrShape shape, const char *name)
{
	int64_t a[4] = {param_index, 0, 0, 0};
	SrcSpan none = {0};
	int id = ir_add_full(f, IR_PARAM, -1, -1, &shape, 0.0, a, none);
	ir_set_name(f, id, name);
	return id;
}

int ir_input(IrFunc *f, IrRole role, int index, IrShape shape, const char *name)
{
	int64_t a[4] = {f->nins, 0, 0, 0};
	SrcSpan none = {0};
	int id = ir_add_full(f, IR_INPUT, -1, -1, &shape, 0.0, a, none);
	ir_set_name(f, id, name);
	if (f->nins == f->cap_ins) {
		f->cap_ins = f->cap_ins ? 2 * f->cap_ins : 8;
		f->ins = xrealloc(f->ins, sizeof *f->ins * (size_t)f->cap_ins);
	}
	IrPort p = {role, index, id, xstrdup(name)};
	f->ins[f->nins++] = p;
	return id;
}

void ir_output(IrFunc *f, IrRole role, int index, int node, const char *name)
{
	if (node < 0 || node >= f->n)
		ir_fatal("%s: output %s is not a node", f->name, name ? name : "?");
	if (f->nouts == f->cap_outs) {
		f->cap_outs = f->cap_outs ? 2 * f->cap_outs : 8;
		f->outs = xrealloc(f->outs, sizeof *f->outs * (size_t)f->cap_outs);
	}
	IrPort p = {role, index, node, xstrdup(name)};
	f->outs[f->nouts++] = p;
}

int ir_slice(IrFunc *f, int x, int64_t lo, int64_t hi, SrcSpan loc)
{
	int64_t a[4] = {lo, hi, 0, 0};
	return ir_add_full(f, IR_SLICE, x, -1, NULL, 0.0, a, loc);
}

int ir_pad(IrFunc *f, int x, int64_t off, int64_t n, SrcSpan loc)
{
	int64_t a[4] = {off, n, 0, 0};
	return ir_add_full(f, IR_PAD, x, -1, NULL, 0.0, a, loc);
}

int ir_matmul(IrFunc *f, int A, int B, bool ta, bool tb, SrcSpan loc)
{
	int64_t a[4] = {ta, tb, 0, 0};
	return ir_add_full(f, IR_MATMUL, A, B, NULL, 0.0, a, loc);
}

int ir_expand(IrFunc *f, int x, IrShape to, SrcSpan loc)
{
	if (ir_shape_eq(f->nodes[x].shape, to))
		return x;
	return ir_add_full(f, IR_EXPAND, x, -1, &to, 0.0, NULL, loc);
}

int ir_sum_to(IrFunc *f, int x, IrShape to, SrcSpan loc)
{
	if (ir_shape_eq(f->nodes[x].shape, to))
		return x;
	return ir_add_full(f, IR_SUM_TO, x, -1, &to, 0.0, NULL, loc);
}

int ir_reshape(IrFunc *f, int x, IrShape to, SrcSpan loc)
{
	if (ir_shape_eq(f->nodes[x].shape, to))
		return x;
	return ir_add_full(f, IR_RESHAPE, x, -1, &to, 0.0, NULL, loc);
}

int ir_conv2d(IrFunc *f, int x, int w, int64_t k, int64_t s, int64_t p, SrcSpan loc)
{
	int64_t a[4] = {k, s, p, 0};
	return ir_add_full(f, IR_CONV2D, x, w, NULL, 0.0, a, loc);
}

int ir_conv2d_t(IrFunc *f, int g, int w, IrShape to, int64_t k, int64_t s, int64_t p, SrcSpan loc)
{
	int64_t a[4] = {k, s, p, 0};
	return ir_add_full(f, IR_CONV2D_T, g, w, &to, 0.0, a, loc);
}

int ir_conv2d_w(IrFunc *f, int x, int g, int64_t k, int64_t s, int64_t p, SrcSpan loc)
{
	int64_t a[4] = {k, s, p, 0};
	return ir_add_full(f, IR_CONV2D_W, x, g, NULL, 0.0, a, loc);
}

int ir_pool(IrFunc *f, IrOp op, int x, int idx, int64_t k, int64_t s, SrcSpan loc)
{
	int64_t a[4] = {k, s, 0, 0};
	if (op != IR_MAXPOOL && op != IR_POOL_ARGMAX && op != IR_POOL_GATHER)
		ir_fatal("%s: ir_pool with %s", f->name, ir_op_name(op));
	return ir_add_full(f, op, x, op == IR_POOL_GATHER ? idx : -1, NULL, 0.0, a, loc);
}

int ir_pool_scatter(IrFunc *f, int g, int idx, IrShape to, int64_t k, int64_t s, SrcSpan loc)
{
	int64_t a[4] = {k, s, 0, 0};
	return ir_add_full(f, IR_POOL_SCATTER, g, idx, &to, 0.0, a, loc);
}

void ir_set_name(IrFunc *f, int node, const char *name)
{
	if (node < 0 || node >= f->n)
		ir_fatal("%s: ir_set_name on node %d", f->name, node);
	free(f->nodes[node].name);
	f->nodes[node].name = xstrdup(name);
}

/* ---- verifier ---- */

static const char *role_name(IrRole r)
{
	switch (r) {
	case IR_ROLE_DATA: return "data";
	case IR_ROLE_STATE: return "state";
	case IR_ROLE_PRED: return "pred";
	case IR_ROLE_OUTPUTS: return "outputs";
	case IR_ROLE_STATE_BAR: return "state_bar";
	case IR_ROLE_PRED_BAR: return "pred_bar";
	case IR_ROLE_PARAM_BAR: return "param_bar";
	case IR_ROLE_SCALAR: return "scalar";
	case IR_ROLE_STATE_NEXT: return "state_next";
	}
	return "?";
}

const char *ir_role_name(IrRole r)
{
	return role_name(r);
}

int ir_verify(const IrFunc *f, FILE *err)
{
	int bad = 0;
#define VFAIL(...)                                                            \
	do {                                                                  \
		if (err) {                                                    \
			fprintf(err, "internal error: %s: ", f->name);        \
			fprintf(err, __VA_ARGS__);                            \
			fputc('\n', err);                                     \
		}                                                             \
		bad++;                                                        \
	} while (0)
	for (int i = 0; i < f->n; i++) {
		const IrNode *nd = &f->nodes[i];
		if ((int)nd->op < 0 || nd->op >= IR_OP_COUNT) {
			VFAIL("%%%d: bad op %d", i, (int)nd->op);
			continue;
		}
		const IrOpInfo *info = &ir_op_info[nd->op];
		bool ok = true;
		for (int k = 0; k < IR_MAX_IN; k++) {
			if (k < info->nin) {
				if (nd->in[k] < 0 || nd->in[k] >= i) {
					VFAIL("%%%d = %s: operand %d is %%%d (not an earlier node)", i, ir_op_name(nd->op),
						k, nd->in[k]);
					ok = false;
				}
			} else if (nd->in[k] != -1) {
				VFAIL("%%%d = %s: has %d operand(s) but slot %d is %%%d", i, ir_op_name(nd->op), info->nin,
					k, nd->in[k]);
				ok = false;
			}
		}
		if (nd->shape.rank < 0 || nd->shape.rank > IR_MAX_RANK) {
			VFAIL("%%%d: rank %d out of range", i, nd->shape.rank);
			continue;
		}
		for (int k = 0; k < nd->shape.rank; k++)
			if (nd->shape.d[k] < 1) {
				VFAIL("%%%d: dimension %d is %" PRId64, i, k, nd->shape.d[k]);
				ok = false;
			}
		if (!ok)
			continue;
		IrShape s = nd->shape;
		const IrShape *x = info->nin > 0 ? &f->nodes[nd->in[0]].shape : NULL;
		const IrShape *y = info->nin > 1 ? &f->nodes[nd->in[1]].shape : NULL;
		const char *why = ir_infer_shape(nd->op, x, y, nd->f, nd->a, &s);
		if (why)
			VFAIL("%%%d = %s: %s", i, ir_op_name(nd->op), why);
		else if (!ir_shape_eq(s, nd->shape)) {
			char s1[64], s2[64];
			ir_shape_str(nd->shape, s1, sizeof s1);
			ir_shape_str(s, s2, sizeof s2);
			VFAIL("%%%d = %s: shape %s, rule gives %s", i, ir_op_name(nd->op), s1, s2);
		}
		if (nd->op == IR_INPUT) {
			int k = (int)nd->a[0];
			if (k < 0 || k >= f->nins || f->ins[k].node != i)
				VFAIL("%%%d = input: a0=%d does not name the input port that holds it", i, k);
		}
	}
	for (int k = 0; k < f->nins; k++) {
		int nd = f->ins[k].node;
		if (nd < 0 || nd >= f->n || f->nodes[nd].op != IR_INPUT)
			VFAIL("input port %d (%s) is not an input node", k, role_name(f->ins[k].role));
		for (int j = 0; j < k; j++)
			if (f->ins[j].role == f->ins[k].role && f->ins[j].index == f->ins[k].index)
				VFAIL("input ports %d and %d both bind %s %d", j, k, role_name(f->ins[k].role),
					f->ins[k].index);
	}
	for (int k = 0; k < f->nouts; k++) {
		int nd = f->outs[k].node;
		if (nd < 0 || nd >= f->n)
			VFAIL("output port %d (%s) names node %d", k, role_name(f->outs[k].role), nd);
		for (int j = 0; j < k; j++)
			if (f->outs[j].role == f->outs[k].role && f->outs[j].index == f->outs[k].index)
				VFAIL("output ports %d and %d both bind %s %d", j, k, role_name(f->outs[k].role),
					f->outs[k].index);
	}
#undef VFAIL
	return bad ? -1 : 0;
}

/* ---- printer ---- */

/* shortest text that reads back to the same double, so dumps are both stable and exact */
void ir_fmt_double(double v, char *buf, size_t n)
{
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

void ir_print_node(const IrFunc *f, int i, FILE *out)
{
	const IrNode *nd = &f->nodes[i];
	char sh[64], num[40];
	fprintf(out, "%%%d = %s", i, ir_op_name(nd->op));
	for (int k = 0; k < ir_op_info[nd->op].nin; k++)
		fprintf(out, "%s%%%d", k ? ", " : " ", nd->in[k]);
	switch (nd->op) {
	case IR_PARAM:
	case IR_INPUT:
		fprintf(out, " #%" PRId64, nd->a[0]);
		break;
	case IR_CONST:
		ir_fmt_double(nd->f, num, sizeof num);
		fprintf(out, " %s", num);
		break;
	case IR_SLICE:
		fprintf(out, " [%" PRId64 ":%" PRId64 "]", nd->a[0], nd->a[1]);
		break;
	case IR_PAD:
		fprintf(out, " at %" PRId64 " to %" PRId64, nd->a[0], nd->a[1]);
		break;
	case IR_MATMUL:
		if (nd->a[0] || nd->a[1])
			fprintf(out, " ta=%" PRId64 " tb=%" PRId64, nd->a[0], nd->a[1]);
		break;
	case IR_CONV2D:
	case IR_CONV2D_T:
	case IR_CONV2D_W:
		fprintf(out, " k=%" PRId64 " s=%" PRId64 " p=%" PRId64, nd->a[0], nd->a[1], nd->a[2]);
		break;
	case IR_MAXPOOL:
	case IR_POOL_ARGMAX:
	case IR_POOL_GATHER:
	case IR_POOL_SCATTER:
		fprintf(out, " k=%" PRId64 " s=%" PRId64, nd->a[0], nd->a[1]);
		break;
	default:
		break;
	}
	ir_shape_str(nd->shape, sh, sizeof sh);
	fprintf(out, " : %s", sh);
	if (nd->name || nd->loc.file) {
		fprintf(out, "  ;");
		if (nd->name)
			fprintf(out, " %s", nd->name);
		if (nd->loc.file)
			fprintf(out, " @ %s:%d", nd->loc.file, nd->loc.line);
	}
	fputc('\n', out);
}

void ir_print(const IrFunc *f, FILE *out)
{
	fprintf(out, "func %s (%d nodes)\n", f->name, f->n);
	for (int k = 0; k < f->nins; k++)
		fprintf(out, "  in  %s %d = %%%d%s%s\n", role_name(f->ins[k].role), f->ins[k].index, f->ins[k].node,
			f->ins[k].name ? "  ; " : "", f->ins[k].name ? f->ins[k].name : "");
	for (int i = 0; i < f->n; i++) {
		fputs("  ", out);
		ir_print_node(f, i, out);
	}
	for (int k = 0; k < f->nouts; k++)
		fprintf(out, "  out %s %d = %%%d%s%s\n", role_name(f->outs[k].role), f->outs[k].index,
			f->outs[k].node, f->outs[k].name ? "  ; " : "", f->outs[k].name ? f->outs[k].name : "");
}
