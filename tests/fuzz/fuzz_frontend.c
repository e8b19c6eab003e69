/* tests/fuzz/fuzz_frontend.c -- libFuzzer target: arbitrary bytes through the whole front end.
 *
 * Each input is one .plast file held in memory: the prescan (lex_check_text), the scanner and parser,
 * the AST printer and the semantic checks run on it, with diagnostics (carets and all) written to
 * /dev/null. Nothing reads files: imports are resolved by the front end's in-memory entry point, which
 * is given no search directory, so an `import` can only fail with a diagnostic. The input buffer is
 * passed as is (not NUL-terminated, exactly `size` bytes), so AddressSanitizer catches any read past
 * its end. Built and run by tests/fuzz/run-fuzz.sh, not by automake.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ast.h"
#include "diag.h"
#include "parse.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	sink = fopen("/dev/null", "w");
	if (!sink)
		sink = stderr;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	DiagCtx *d = diag_ctx_new(sink);
	const char *file = diag_add_source(d, "fuzz.plast", text, size);
	AstArena *a = ast_arena_new();
	if (lex_check_text(d, file, text, size) == 0) {
		AstFile *f = parse_text(a, d, file, text, size);
		ast_print_file(f, sink);
	}
	ast_arena_free(a);
	diag_ctx_free(d);
	return 0;
}
