/* compiler/memplan.h -- the memory plan shared by both backends: where each IR value lives.
 *
 * Generated code gets one scratch block (PlStepArgs.work). Every value that is not a leaf (PARAM, INPUT)
 * and not a scalar CONST folded into code gets a slot in it. Slot offsets are affine in the batch size:
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
	bool *has_slot;     /* [n] false for leaves and inlined constants */
	int64_t *off_b;     /* [n] */
	int64_t *off_c;     /* [n] */
	int64_t total_b, total_c; /* work_floats(B) = total_b * B + total_c */
} MemPlan;

MemPlan *memplan_build(const IrFunc *f);
void memplan_free(MemPlan *p);

#endif
