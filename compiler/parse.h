/* compiler/parse.h -- the interface between the generated scanner/parser (grammar/) and the front end.
 *
 * One ParseCtx parses one file. The scanner keeps its position and bracket stack here (Flex's yyextra),
 * and the parser appends declarations to `decls`. Ownership: the ParseCtx borrows the arena and the
 * DiagCtx; the parse result (an AstFile) lives in the arena.
 */
#ifndef PLASTC_PARSE_H
#define PLASTC_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "ast.h"
#include "diag.h"

typedef struct ParseCtx {
	AstArena *arena;
	DiagCtx *diag;
	const char *file;      /* stable name from diag_add_source */
	/* scanner state */
	int line, col;         /* position of the next character */
	char brackets[AST_MAX_DEPTH]; /* open ( [ { */
	int depth;
	bool eof_nl;           /* the synthetic end-of-line before EOF was returned */
	bool stop;             /* a fatal error (nesting limit, too many errors): the scanner returns EOF */
	bool at_stmt_start;    /* the next token starts a statement */
	int stmt_tok;          /* the first token of the current statement */
	/* parser state */
	AstList *decls;
	bool pending;          /* a syntax error waiting for its hint (see parser.y) */
	int pend_stmt;         /* stmt_tok when it was detected */
	SrcSpan pend_at;
	char pend_msg[320];
	bool depth_reported;
} ParseCtx;

/* Parses text (len bytes, not necessarily NUL-terminated) as `file`. The text must already have passed
 * lex_check_text. Returns the file (possibly partial after errors; errors went to diag). */
AstFile *parse_text(AstArena *arena, DiagCtx *diag, const char *file, const char *text, size_t len);

/* Rejects what the scanner should never see: NUL bytes, lines longer than LEX_MAX_LINE, files larger than
 * LEX_MAX_FILE. Reports a located error and returns -1, else 0. */
#define LEX_MAX_LINE (64 * 1024)
#define LEX_MAX_FILE (16 * 1024 * 1024)
int lex_check_text(DiagCtx *diag, const char *file, const char *text, size_t len);

/* Emits (once) the syntax error waiting in ctx, with an optional hint. */
void parse_flush_error(ParseCtx *ctx, const char *hint);

#endif
