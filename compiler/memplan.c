/* compiler/memplan.c -- liveness-based placement of IR values in the scratch block (see memplan.h).
 *
 * Why two regions. A slot's offset must be affine in B and two slots that are live together must never
 * overlap for any B >= 1. Per-trial (batched) values are B * numel floats, unbatched ones numel floats.
 * Putting the batched values in a first region whose offsets are multiples of B (off_b * B) and the
 * unbatched values after it (total_b * B + off_c) reduces the problem to two ordinary 1-D interval
 * packings: batched slots [off_b, off_b + numel) that are disjoint stay disjoint when scaled by B.
 *
 * Liveness. Nodes are in topological order and the generated code runs them in that order, so value i
 * is live from its definition i to its last use (the largest id of a node reading it), or to the end of
 * the function when an output port returns it (outputs are copied out after the last node). A node's
 * result never shares storage with its own operands (the emitters mark per-node pointers restrict).
 *
 * Packing: greedy first fit in node order. Slots whose value died before node i are released before i
 * is placed; i takes the lowest 16-float-aligned gap that fits. Not optimal, but simple and in practice
 * close: a step function is a chain of short-lived temporaries around a few long-lived states.
 */
#include "memplan.h"

#include <stdlib.h>
#include <string.h>

#define MP_ALIGN 16 /* floats: 64 bytes, one cache line, the widest vector */

static void *mp_calloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (!p)
		ir_fatal("out of memory");
	return p;
}

/* Does value i need memory of its own? Leaves are read from PlStepArgs; CONST and INV_BATCH are
 * scalars written into the code, except a CONST read by a linear-algebra op (BLAS needs an array). */
static bool needs_slot(const IrFunc *f, int i, const bool *linalg_user)
{
	IrOp op = f->nodes[i].op;
	if (op == IR_PARAM || op == IR_INPUT || op == IR_INV_BATCH)
		return false;
	if (op == IR_CONST)
		return linalg_user[i];
	return true;
}

/* One region's live slots, kept sorted by offset. */
typedef struct Live {
	int64_t off, size;
	int end; /* last node that reads it */
} Live;

typedef struct Region {
	Live *v;
	int n;
	int64_t high; /* high-water mark */
} Region;

static void region_release(Region *r, int now)
{
	int k = 0;
	for (int j = 0; j < r->n; j++)
		if (r->v[j].end >= now)
			r->v[k++] = r->v[j];
	r->n = k;
}

static int64_t region_place(Region *r, int64_t size, int end)
{
	int64_t at = 0;
	int pos = 0;
	for (; pos < r->n; pos++) {
		if (r->v[pos].off - at >= size)
			break;
		int64_t top = r->v[pos].off + r->v[pos].size;
		if (top > at)
			at = top;
	}
	memmove(&r->v[pos + 1], &r->v[pos], sizeof *r->v * (size_t)(r->n - pos));
	r->v[pos] = (Live){at, size, end};
	r->n++;
	if (at + size > r->high)
		r->high = at + size;
	return at;
}

MemPlan *memplan_build(const IrFunc *f)
{
	return memplan_build_fused(f, NULL);
}

/* The node whose code reads the operands of i: i itself, or the end of its fusion chain. */
static int effective_reader(const int *fused_into, int i)
{
	while (fused_into && fused_into[i] >= 0)
		i = fused_into[i];
	return i;
}

MemPlan *memplan_build_fused(const IrFunc *f, const int *fused_into)
{
	int n = f->n;
	MemPlan *p = mp_calloc(1, sizeof *p);
	p->n = n;
	p->has_slot = mp_calloc((size_t)n, sizeof *p->has_slot);
	p->off_b = mp_calloc((size_t)n, sizeof *p->off_b);
	p->off_c = mp_calloc((size_t)n, sizeof *p->off_c);

	int *last = mp_calloc((size_t)n, sizeof *last);
	bool *linalg_user = mp_calloc((size_t)n, sizeof *linalg_user);
	for (int i = 0; i < n; i++) {
		if (last[i] < i)
			last[i] = i;
		const IrNode *nd = &f->nodes[i];
		int at = effective_reader(fused_into, i);
		for (int k = 0; k < ir_op_info[nd->op].nin; k++) {
			if (last[nd->in[k]] < at)
				last[nd->in[k]] = at;
			if (ir_op_info[nd->op].flags & IRF_LINALG)
				linalg_user[nd->in[k]] = true; /* BLAS and the convolution kernels read arrays */
		}
	}
	for (int k = 0; k < f->nouts; k++)
		last[f->outs[k].node] = n; /* copied out after the last node */

	Region rb = {mp_calloc((size_t)n, sizeof(Live)), 0, 0};
	Region rc = {mp_calloc((size_t)n, sizeof(Live)), 0, 0};
	for (int i = 0; i < n; i++) {
		region_release(&rb, i);
		region_release(&rc, i);
		if (!needs_slot(f, i, linalg_user) || (fused_into && fused_into[i] >= 0))
			continue;
		IrShape s = f->nodes[i].shape;
		int64_t size = (ir_shape_numel(s) + MP_ALIGN - 1) / MP_ALIGN * MP_ALIGN;
		p->has_slot[i] = true;
		if (s.batch)
			p->off_b[i] = region_place(&rb, size, last[i]);
		else
			p->off_c[i] = region_place(&rc, size, last[i]);
	}
	/* the unbatched region starts where the batched one ends */
	p->total_b = rb.high;
	p->total_c = rc.high;
	for (int i = 0; i < n; i++)
		if (p->has_slot[i] && !f->nodes[i].shape.batch)
			p->off_b[i] = p->total_b;
	free(rb.v);
	free(rc.v);
	free(last);
	free(linalg_user);
	return p;
}

MemPlan *memplan_build_timed(const IrFunc *f, const int *fused_into, const int *t_def, const int *t_read, int t_end)
{
	int n = f->n;
	MemPlan *p = mp_calloc(1, sizeof *p);
	p->n = n;
	p->has_slot = mp_calloc((size_t)n, sizeof *p->has_slot);
	p->off_b = mp_calloc((size_t)n, sizeof *p->off_b);
	p->off_c = mp_calloc((size_t)n, sizeof *p->off_c);

	int *last = mp_calloc((size_t)n, sizeof *last);
	bool *linalg_user = mp_calloc((size_t)n, sizeof *linalg_user);
	for (int i = 0; i < n; i++) {
		last[i] = t_def[i] > t_read[i] ? t_def[i] : t_read[i];
		const IrNode *nd = &f->nodes[i];
		for (int k = 0; k < ir_op_info[nd->op].nin; k++)
			if (ir_op_info[nd->op].flags & IRF_LINALG)
				linalg_user[nd->in[k]] = true;
	}
	for (int k = 0; k < f->nouts; k++)
		last[f->outs[k].node] = t_end; /* copied out after the last node */

	/* slots in order of definition time (ties by node id) */
	int *ord = mp_calloc((size_t)n, sizeof *ord), m = 0;
	for (int i = 0; i < n; i++) {
		if (!needs_slot(f, i, linalg_user) || (fused_into && fused_into[i] >= 0))
			continue;
		p->has_slot[i] = true;
		if (t_def[i] >= 0)
			ord[m++] = i;
	}
	for (int a = 1; a < m; a++) { /* insertion sort: stable, the order is nearly sorted already */
		int v = ord[a], b = a;
		while (b > 0 && t_def[ord[b - 1]] > t_def[v]) {
			ord[b] = ord[b - 1];
			b--;
		}
		ord[b] = v;
	}
	Region rb = {mp_calloc((size_t)n, sizeof(Live)), 0, 0};
	Region rc = {mp_calloc((size_t)n, sizeof(Live)), 0, 0};
	for (int k = 0; k < m; k++) {
		int i = ord[k];
		region_release(&rb, t_def[i]);
		region_release(&rc, t_def[i]);
		IrShape s = f->nodes[i].shape;
		int64_t size = (ir_shape_numel(s) + MP_ALIGN - 1) / MP_ALIGN * MP_ALIGN;
		if (s.batch)
			p->off_b[i] = region_place(&rb, size, last[i]);
		else
			p->off_c[i] = region_place(&rc, size, last[i]);
	}
	p->total_b = rb.high;
	p->total_c = rc.high;
	for (int i = 0; i < n; i++)
		if (p->has_slot[i] && !f->nodes[i].shape.batch)
			p->off_b[i] = p->total_b;
	free(rb.v);
	free(rc.v);
	free(ord);
	free(last);
	free(linalg_user);
	return p;
}

void memplan_free(MemPlan *p)
{
	if (!p)
		return;
	free(p->has_slot);
	free(p->off_b);
	free(p->off_c);
	free(p);
}
