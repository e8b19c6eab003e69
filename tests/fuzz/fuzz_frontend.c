/* tests/fuzz/fuzz_frontend.c -- libFuzzer target: arbitrary bytes through the front end (parse + sema).
 *
 * The front end has no in-memory entry point that takes a whole program (frontend_parse reads files),
 * so this target drives its stages directly, as frontend.c does, without any file I/O:
 *   lex_check_text -> parse_text -> ast_print_file -> sema_check.
 * The input is cut into up to FUZZ_MAX_FILES "files" at each line `#---`: files[0] is the main file
 * and the others play its imports, so sema sees multi-file programs (names defined twice across files,
 * rules in a library) although nothing is read from disk; `import` declarations themselves are not
 * followed. Leading lines `#set NAME=VALUE` (comments to the parser) become --set arguments.
 * Diagnostics, with their quoted lines and carets, are written to /dev/null so their code runs too
 * (to stderr with FUZZ_DIAG=1, for replaying a reproducer).
 * Each piece is handed over as a malloc'd copy of exactly its bytes (no NUL terminator), so
 * AddressSanitizer catches any read past its end. Built and run by tests/fuzz/run-fuzz.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "diag.h"
#include "parse.h"
#include "sema.h"

#define FUZZ_MAX_FILES 4
#define FUZZ_MAX_SETS 8

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* FUZZ_DIAG=1 shows the diagnostics (and AST) when replaying a reproducer by hand. */
	const char *show = getenv("FUZZ_DIAG");
	sink = show && *show ? stderr : fopen("/dev/null", "w");
	if (!sink)
		sink = stderr;
	return 0;
}

/* Start of the line after the one starting at p, or end. */
static const char *next_line(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	return nl ? nl + 1 : end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	/* --set arguments from the leading `#set ` lines */
	char *sets[FUZZ_MAX_SETS];
	int nset = 0;
	while (nset < FUZZ_MAX_SETS && end - p > 5 && memcmp(p, "#set ", 5) == 0) {
		const char *q = next_line(p, end);
		size_t n = (size_t)(q - p) - 5;
		if (n > 0 && p[5 + n - 1] == '\n')
			n--;
		sets[nset] = malloc(n + 1);
		if (!sets[nset])
			abort();
		memcpy(sets[nset], p + 5, n);
		sets[nset][n] = '\0'; /* --set values come from argv: NUL-terminated */
		nset++;
		p = q;
	}

	/* the files, split at lines `#---` */
	const char *piece[FUZZ_MAX_FILES];
	size_t len[FUZZ_MAX_FILES];
	int nfiles = 0;
	const char *start = p;
	for (const char *q = p; q < end; q = next_line(q, end)) {
		if (nfiles < FUZZ_MAX_FILES - 1 && end - q >= 4 && memcmp(q, "#---", 4) == 0) {
			piece[nfiles] = start;
			len[nfiles++] = (size_t)(q - start);
			start = next_line(q, end);
		}
	}
	piece[nfiles] = start;
	len[nfiles++] = (size_t)(end - start);

	DiagCtx *d = diag_ctx_new(sink);
	AstArena *arena = ast_arena_new();
	AstFile *files[FUZZ_MAX_FILES];
	char *texts[FUZZ_MAX_FILES];
	for (int i = 0; i < nfiles; i++) {
		char name[32];
		snprintf(name, sizeof name, "fuzz%d.plast", i);
		texts[i] = malloc(len[i] ? len[i] : 1);
		if (!texts[i])
			abort();
		memcpy(texts[i], piece[i], len[i]);
		const char *file = diag_add_source(d, name, texts[i], len[i]);
		if (lex_check_text(d, file, texts[i], len[i]) == 0) {
			files[i] = parse_text(arena, d, file, texts[i], len[i]);
		} else {
			files[i] = ast_alloc(arena, sizeof *files[i]);
			files[i]->path = file;
		}
		ast_print_file(files[i], sink);
	}
	sema_check(arena, d, files, nfiles, nset, sets);

	ast_arena_free(arena);
	diag_ctx_free(d);
	for (int i = 0; i < nfiles; i++)
		free(texts[i]);
	for (int i = 0; i < nset; i++)
		free(sets[i]);
	return 0;
}
