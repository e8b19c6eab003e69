/* compiler/lower.h -- lowering of a checked model to the step IR (program.h).
 *
 * The result's fwd is one time step of the whole batch (reference-model.md A.1): the layers, the
 * outputs, the internal loss and its one-step gradients when a rule asks for them, and the plasticity
 * update with max-norm scaling. Ownership: the returned Program is independent of the SemaModel (its
 * strings are copied); the caller frees it with program_free.
 */
#ifndef PLASTC_LOWER_H
#define PLASTC_LOWER_H

#include "diag.h"
#include "program.h"
#include "sema.h"

/* Returns the Program (vjp NULL, hash empty) or NULL after an error reported to d. */
Program *lower_model(const SemaModel *m, const char *source, DiagCtx *d);

#endif
