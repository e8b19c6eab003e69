/* compiler/diag.c -- located diagnostics with source quotes and carets (diag.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

typedef struct DiagSource {
	char *name;
	char *text;
	size_t len;
} DiagSource;

struct DiagCtx {
	FILE *out;
	DiagSource *src;
	int nsrc, cap;
	int errors, printed, max_errors;
	bool machine;
	bool suppressed; /* the last error was not printed: drop its notes too */
};

static void *diag_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		exit(2);
	}
	return q;
}

DiagCtx *diag_ctx_new(FILE *out)
{
	DiagCtx *d = diag_xrealloc(NULL, sizeof *d);
	memset(d, 0, sizeof *d);
	d->out = out ? out : stderr;
	d->max_errors = 20;
	const char *fmt = getenv("PLASTC_DIAG_FORMAT");
	d->machine = fmt && strcmp(fmt, "machine") == 0;
	return d;
}

void diag_ctx_free(DiagCtx *d)
{
	if (!d)
		return;
	for (int i = 0; i < d->nsrc; i++) {
		free(d->src[i].name);
		free(d->src[i].text);
	}
	free(d->src);
	free(d);
}

const char *diag_add_source(DiagCtx *d, const char *filename, const char *text, size_t len)
{
	if (d->nsrc == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 8;
		d->src = diag_xrealloc(d->src, (size_t)d->cap * sizeof *d->src);
	}
	DiagSource *s = &d->src[d->nsrc++];
	size_t nl = strlen(filename);
	s->name = diag_xrealloc(NULL, nl + 1);
	memcpy(s->name, filename, nl + 1);
	s->text = diag_xrealloc(NULL, len + 1);
	if (len)
		memcpy(s->text, text, len);
	s->text[len] = '\0';
	s->len = len;
	return s->name;
}

int diag_error_count(const DiagCtx *d)
{
	return d->errors;
}

void diag_set_max_errors(DiagCtx *d, int n)
{
	d->max_errors = n;
}

static const DiagSource *find_source(const DiagCtx *d, const char *file)
{
	for (int i = 0; i < d->nsrc; i++)
		if (d->src[i].name == file)
			return &d->src[i];
	return NULL;
}

/* The text of line `line` (1-based) without its newline; NULL if out of range. */
static const char *line_text(const DiagSource *s, int line, size_t *len)
{
	const char *p = s->text, *end = s->text + s->len;
	for (int l = 1; l < line; l++) {
		p = memchr(p, '\n', (size_t)(end - p));
		if (!p)
			return NULL;
		p++;
	}
	const char *e = memchr(p, '\n', (size_t)(end - p));
	*len = (size_t)((e ? e : end) - p);
	return p;
}

enum { QUOTE_MAX = 160 }; /* bytes of a quoted line (long lines are cut around the caret) */

/* Length of the valid UTF-8 character at s (n bytes available), or 0 if the byte starts none. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 :
		(s[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (len == 0 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* Prints the source line and a caret line under [col, end_col]: `^` at the start, `~` after it.
 * Columns are bytes; the caret line advances one cell per character, so UTF-8 text stays aligned.
 * Tabs are copied into the caret line; control bytes and invalid UTF-8 print as '?'. */
static void quote(const DiagCtx *d, SrcSpan at)
{
	const DiagSource *s = find_source(d, at.file);
	if (!s || at.line < 1)
		return;
	size_t len;
	const char *text = line_text(s, at.line, &len);
	if (!text)
		return;
	size_t col = at.col > 0 ? (size_t)at.col - 1 : 0;
	if (col > len)
		col = len;
	size_t endc = (at.end_line == at.line && at.end_col >= at.col) ? (size_t)at.end_col : col + 1;
	size_t from = col > QUOTE_MAX / 2 ? col - QUOTE_MAX / 2 : 0;
	size_t to = from + QUOTE_MAX < len ? from + QUOTE_MAX : len;
	/* start on a character boundary */
	while (from > 0 && from < len && ((unsigned char)text[from] & 0xc0) == 0x80)
		from++;
	char caret[4 * QUOTE_MAX + 8];
	size_t nc = 0;
	fprintf(d->out, "%5d | %s", at.line, from ? "..." : "");
	for (size_t i = from; i < to;) {
		const unsigned char *c = (const unsigned char *)text + i;
		size_t n = utf8_char(c, len - i);
		char mark = i < col ? ' ' : i == col ? '^' : i < endc ? '~' : 0;
		if (n == 0 || (n == 1 && c[0] < 0x20 && c[0] != '\t') || c[0] == 0x7f) {
			fputc('?', d->out);
			n = 1;
		} else {
			fwrite(c, 1, n, d->out);
		}
		if (mark && nc < sizeof caret - 2)
			caret[nc++] = c[0] == '\t' && mark == ' ' ? '\t' : mark;
		i += n;
	}
	if (col >= to && nc < sizeof caret - 2)
		caret[nc++] = '^';
	caret[nc] = '\0';
	fprintf(d->out, "%s\n      | %s%s\n", to < len ? "..." : "", from ? "   " : "", caret);
}

int diag_emit(DiagCtx *d, DiagLevel lvl, SrcSpan at, const char *detail, const char *hint, const char *fmt, ...)
{
	if (lvl == DIAG_ERROR) {
		d->errors++;
		d->suppressed = d->printed >= d->max_errors;
		if (d->suppressed) {
			if (d->printed == d->max_errors && !d->machine) {
				fprintf(d->out, "plastc: too many errors (only the first %d are shown)\n", d->max_errors);
				d->printed++;
			}
			return d->errors;
		}
		d->printed++;
	} else if (d->suppressed) {
		return d->errors;
	}
	const char *level = lvl == DIAG_ERROR ? "error" : lvl == DIAG_WARNING ? "warning" : "note";
	if (at.file)
		fprintf(d->out, "%s:%d:%d: %s: ", at.file, at.line, at.col, level);
	else
		fprintf(d->out, "plastc: %s: ", level);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(d->out, fmt, ap);
	va_end(ap);
	fputc('\n', d->out);
	if (d->machine)
		return d->errors;
	if (at.file)
		quote(d, at);
	if (detail)
		fprintf(d->out, "detail: %s\n", detail);
	if (hint)
		fprintf(d->out, "hint: %s\n", hint);
	return d->errors;
}
