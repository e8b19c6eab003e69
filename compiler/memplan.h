/* compiler/memplan.h -- the memory plan shared by both backends: where each IR value lives.
 *
 * Generated code gets one scratch block (PlStepArgs.work). Every value that is not a leaf gets a slot in
 * it. Leaves: PARAM and INPUT are read from PlStepArgs; INV_BATCH and CONST are scalars written into the
 * code, except a CONST that a LINALG op reads, which gets a slot (BLAS needs an array) that the emitter
 * fills where the CONST is defined. Slot offsets are affine in the batch size:
 * offset (in floats) = off_b[i] * B + off_c[i], so one plan serves every B. Values whose live ranges do
 * not overlap share storage (greedy first fit in node order); offsets are 16-float (64-byte) aligned.
 * Ownership: a MemPlan owns its arrays; memplan_free releases them.
 */
#ifndef PLASTC_MEMPLAN_H
#define PLASTC_MEMPLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "ir.h"

typedef struct MemPlan {
	int n;              /* == f->n */
	bool *has_slot;     /* [n] false for PARAM, INPUT, INV_BATCH and CONSTs no LINALG op reads */
	int64_t *off_b;     /* [n] */
	int64_t *off_c;     /* [n] */
	int64_t total_b, total_c; /* work_floats(B) = total_b * B + total_c */
} MemPlan;

/* Liveness: a value is live from its node to its last reader, or to the end of the function when an
 * output port returns it (outputs are copied out after the last node); a node's slot never overlaps its
 * operands' slots. Batched values come first (off_c = 0); unbatched ones follow (off_b = total_b). */
MemPlan *memplan_build(const IrFunc *f);
/* The same for an emitter that fuses values into the loop of a later node: fused_into[i] is that node
 * (or -1). A fused value gets no slot, and its operands stay live until the fused-into node has run. */
MemPlan *memplan_build_fused(const IrFunc *f, const int *fused_into);
/* The same for an emitter that runs the nodes in an order of its own and may run several at once (a
 * merged loop nest): node i's slot is written from time t_def[i] (-1: the node is never run; a slot it
 * has then overlaps anything, as nothing refers to it) and its value is read up to time t_read[i] (-1:
 * not read; the emitter counts every loop that reads it, also through values fused or recomputed in
 * that loop); outputs live to t_end. A merged nest that runs over [t0, t1] writes its members from t0
 * and reads its arrays up to t1, so its arrays never share storage with each other. fused_into: as
 * above (a fused value has no slot). */
MemPlan *memplan_build_timed(const IrFunc *f, const int *fused_into, const int *t_def, const int *t_read,
	int t_end);
void memplan_free(MemPlan *p);

#endif
