/* compiler/diag.h -- source spans and located diagnostics.
 *
 * Every AST node and IR node carries a SrcSpan, so an error found in sema, lowering, autodiff or a
 * backend still points at the DSL text. Messages follow PostgreSQL's style: a short lower-case primary
 * line, then optional "detail:" and "hint:" lines. Output format (stderr):
 *
 *   models/x.plast:12:7: error: unknown name 'hiden'
 *      12 |   rnn cell (enc -> hiden) relu
 *         |                    ^~~~~
 *   hint: did you mean 'hidden'?
 *
 * With PLASTC_DIAG_FORMAT=machine (used by the golden-test runner) each diagnostic is one line:
 *   file:line:col: error: message
 *
 * Ownership: a DiagCtx owns copies of the source texts it was given (diag_add_source); SrcSpan.file
 * points into that storage and stays valid until diag_ctx_free.
 */
#ifndef PLASTC_DIAG_H
#define PLASTC_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct SrcSpan {
	const char *file; /* NULL for synthetic nodes */
	int line, col;    /* 1-based start */
	int end_line, end_col; /* inclusive end */
} SrcSpan;

typedef enum DiagLevel { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct DiagCtx DiagCtx;

DiagCtx *diag_ctx_new(FILE *out);
void diag_ctx_free(DiagCtx *d);
/* Registers the text of a file so that diagnostics can quote its lines; returns the stable file name. */
const char *diag_add_source(DiagCtx *d, const char *filename, const char *text, size_t len);
/* Emits a diagnostic. detail and hint may be NULL. Returns the number of errors so far. */
int diag_emit(DiagCtx *d, DiagLevel lvl, SrcSpan at, const char *detail, const char *hint, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 6, 7)))
#endif
	;
int diag_error_count(const DiagCtx *d);
/* Caps the number of errors printed (default 20); later ones are counted, not printed. */
void diag_set_max_errors(DiagCtx *d, int n);

#define diag_error(d, at, ...) diag_emit((d), DIAG_ERROR, (at), NULL, NULL, __VA_ARGS__)

#endif
