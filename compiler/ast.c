/* compiler/ast.c -- arena, constructors and printer of the syntax tree (ast.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"

/* The arena is a chain of blocks; big requests get a block of their own. Blocks are never reused:
 * the whole program is freed at once when compilation ends. */
typedef struct ArenaBlock {
	struct ArenaBlock *next;
	size_t used, size;
	max_align_t data[]; /* aligned payload */
} ArenaBlock;

struct AstArena {
	ArenaBlock *head;
};

enum { ARENA_BLOCK = 64 * 1024 };

static void ast_oom(void)
{
	fprintf(stderr, "plastc: internal error: out of memory\n");
	exit(2);
}

AstArena *ast_arena_new(void)
{
	AstArena *a = calloc(1, sizeof *a);
	if (!a)
		ast_oom();
	return a;
}

void ast_arena_free(AstArena *a)
{
	if (!a)
		return;
	for (ArenaBlock *b = a->head, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

void *ast_alloc(AstArena *a, size_t size)
{
	size_t align = sizeof(max_align_t);
	size = (size + align - 1) / align * align;
	if (size == 0)
		size = align;
	ArenaBlock *b = a->head;
	if (!b || b->size - b->used < size) {
		size_t bsize = size > ARENA_BLOCK / 2 ? size : ARENA_BLOCK;
		ArenaBlock *nb = malloc(sizeof *nb + bsize);
		if (!nb)
			ast_oom();
		nb->used = 0;
		nb->size = bsize;
		if (b && size > ARENA_BLOCK / 2) {
			/* keep filling the current block; put the big one behind it */
			nb->next = b->next;
			b->next = nb;
		} else {
			nb->next = b;
			a->head = nb;
		}
		b = nb;
	}
	void *p = (char *)b->data + b->used;
	b->used += size;
	memset(p, 0, size);
	return p;
}

char *ast_strndup(AstArena *a, const char *s, size_t n)
{
	char *p = ast_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *ast_strdup(AstArena *a, const char *s)
{
	return ast_strndup(a, s, strlen(s));
}

/* ---- lists ---- */
AstList *ast_list_new(void)
{
	AstList *l = calloc(1, sizeof *l);
	if (!l)
		ast_oom();
	return l;
}

void ast_list_push(AstList *l, void *item)
{
	if (l->n == l->cap) {
		int cap = l->cap ? 2 * l->cap : 4;
		void **items = realloc(l->items, (size_t)cap * sizeof *items);
		if (!items)
			ast_oom();
		l->items = items;
		l->cap = cap;
	}
	l->items[l->n++] = item;
}

void ast_list_free(AstList *l)
{
	if (!l)
		return;
	free(l->items);
	free(l);
}

void **ast_list_freeze(AstArena *a, AstList *l, int *n)
{
	*n = l ? l->n : 0;
	void **items = NULL;
	if (*n > 0) {
		items = ast_alloc(a, (size_t)*n * sizeof *items);
		memcpy(items, l->items, (size_t)*n * sizeof *items);
	}
	ast_list_free(l);
	return items;
}

/* ---- expressions ---- */
static AstExpr *expr_new(AstArena *a, AstExprKind k, SrcSpan at)
{
	AstExpr *e = ast_alloc(a, sizeof *e);
	e->kind = k;
	e->span = at;
	e->depth = 1;
	return e;
}

AstExpr *ast_num(AstArena *a, double v, SrcSpan at)
{
	AstExpr *e = expr_new(a, AST_NUM, at);
	e->num = v;
	return e;
}

AstExpr *ast_name(AstArena *a, const char *name, SrcSpan at)
{
	AstExpr *e = expr_new(a, AST_NAME, at);
	e->name = name;
	return e;
}

AstExpr *ast_error(AstArena *a, SrcSpan at)
{
	return expr_new(a, AST_ERROR, at);
}

static int depth_of(const AstExpr *e)
{
	return e ? e->depth : 0;
}

AstExpr *ast_call(AstArena *a, const char *name, SrcSpan name_at, AstList *args, SrcSpan at)
{
	AstExpr *e = expr_new(a, AST_CALL, at);
	e->name = name;
	e->name_span = name_at;
	e->args = (AstExpr **)ast_list_freeze(a, args, &e->nargs);
	for (int i = 0; i < e->nargs; i++)
		if (1 + depth_of(e->args[i]) > e->depth)
			e->depth = 1 + depth_of(e->args[i]);
	return e;
}

AstExpr *ast_binop(AstArena *a, char op, AstExpr *l, AstExpr *r, SrcSpan at)
{
	AstExpr *e = expr_new(a, AST_BINOP, at);
	e->op = op;
	e->args = ast_alloc(a, 2 * sizeof *e->args);
	e->args[0] = l;
	e->args[1] = r;
	e->nargs = 2;
	int d = depth_of(l) > depth_of(r) ? depth_of(l) : depth_of(r);
	e->depth = 1 + d;
	return e;
}

AstExpr *ast_neg(AstArena *a, AstExpr *x, SrcSpan at)
{
	AstExpr *e = expr_new(a, AST_NEG, at);
	e->args = ast_alloc(a, sizeof *e->args);
	e->args[0] = x;
	e->nargs = 1;
	e->depth = 1 + depth_of(x);
	return e;
}

AstExpr *ast_slice(AstArena *a, AstExpr *x, AstExpr *lo, AstExpr *hi, SrcSpan at)
{
	AstExpr *e = expr_new(a, AST_SLICE, at);
	e->args = ast_alloc(a, sizeof *e->args);
	e->args[0] = x;
	e->nargs = 1;
	e->lo = lo;
	e->hi = hi;
	int d = depth_of(x);
	if (depth_of(lo) > d)
		d = depth_of(lo);
	if (depth_of(hi) > d)
		d = depth_of(hi);
	e->depth = 1 + d;
	return e;
}

/* ---- names ---- */
const char *ast_layer_kind_name(AstLayerKind k)
{
	switch (k) {
	case LAYER_LINEAR: return "linear";
	case LAYER_RNN: return "rnn";
	case LAYER_LSTM: return "lstm";
	case LAYER_CONV4: return "conv4";
	}
	return "?";
}

const char *ast_item_kind_name(AstItemKind k)
{
	switch (k) {
	case ITEM_INPUT: return "input";
	case ITEM_OUTPUT: return "output";
	case ITEM_EXTRA: return "extra";
	case ITEM_MODULATOR: return "modulator";
	case ITEM_LAYER: return "layer";
	case ITEM_PARAM: return "param";
	case ITEM_INTERNAL_LOSS: return "internal_loss";
	case ITEM_META_LOSS: return "meta_loss";
	case ITEM_PLASTICITY: return "plasticity";
	}
	return "?";
}

/* ---- printer ---- */
/* Expressions print fully parenthesised so that the dump shows how the parser grouped them. */
void ast_print_expr(const AstExpr *e, FILE *out)
{
	if (!e) {
		fputs("<none>", out);
		return;
	}
	switch (e->kind) {
	case AST_NUM: {
		/* the shortest text that reads back as the same double */
		char buf[32];
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(buf, sizeof buf, "%.*g", prec, e->num);
			if (strtod(buf, NULL) == e->num)
				break;
		}
		fputs(buf, out);
		break;
	}
	case AST_NAME:
		fputs(e->name, out);
		break;
	case AST_CALL:
		fprintf(out, "%s(", e->name);
		for (int i = 0; i < e->nargs; i++) {
			if (i)
				fputs(", ", out);
			ast_print_expr(e->args[i], out);
		}
		fputc(')', out);
		break;
	case AST_BINOP:
		fputc('(', out);
		ast_print_expr(e->args[0], out);
		fprintf(out, " %c ", e->op);
		ast_print_expr(e->args[1], out);
		fputc(')', out);
		break;
	case AST_NEG:
		fputs("(-", out);
		ast_print_expr(e->args[0], out);
		fputc(')', out);
		break;
	case AST_SLICE:
		ast_print_expr(e->args[0], out);
		fputc('[', out);
		if (e->lo)
			ast_print_expr(e->lo, out);
		fputc(':', out);
		if (e->hi)
			ast_print_expr(e->hi, out);
		fputc(']', out);
		break;
	case AST_ERROR:
		fputs("<error>", out);
		break;
	}
}

static void print_settings(AstSetting **s, int n, const char *indent, FILE *out)
{
	for (int i = 0; i < n; i++) {
		fprintf(out, "%s%s = ", indent, s[i]->key);
		ast_print_expr(s[i]->value, out);
		fprintf(out, "    @%d:%d\n", s[i]->span.line, s[i]->span.col);
	}
}

static void print_item(const AstItem *it, FILE *out)
{
	switch (it->kind) {
	case ITEM_INPUT:
	case ITEM_OUTPUT:
	case ITEM_EXTRA:
	case ITEM_MODULATOR:
	case ITEM_PARAM:
		fprintf(out, "  %s %s", ast_item_kind_name(it->kind), it->name);
		if (it->ndims) {
			fputc('[', out);
			for (int i = 0; i < it->ndims; i++) {
				if (i)
					fputs(", ", out);
				ast_print_expr(it->dims[i], out);
			}
			fputc(']', out);
		}
		if (it->value) {
			fputs(" = ", out);
			ast_print_expr(it->value, out);
		}
		break;
	case ITEM_LAYER:
		fprintf(out, "  %s%s %s (", it->plastic ? "plastic " : "", ast_layer_kind_name(it->layer), it->name);
		for (int i = 0; i < it->nsrcs; i++) {
			const AstIdent *s = it->srcs[i];
			fprintf(out, "%s%s", i ? ", " : "", s->name);
			if (s->sliced) {
				fputc('[', out);
				if (s->lo)
					ast_print_expr(s->lo, out);
				fputc(':', out);
				if (s->hi)
					ast_print_expr(s->hi, out);
				fputc(']', out);
			}
		}
		fputs(" ->", out);
		for (int i = 0; i < it->nouts; i++) {
			fputs(i ? ", " : " ", out);
			ast_print_expr(it->outs[i], out);
		}
		fputc(')', out);
		if (it->act)
			fprintf(out, " %s", it->act);
		break;
	case ITEM_INTERNAL_LOSS:
	case ITEM_META_LOSS:
		fprintf(out, "  %s = ", ast_item_kind_name(it->kind));
		ast_print_expr(it->value, out);
		break;
	case ITEM_PLASTICITY:
		fputs("  plasticity", out);
		break;
	}
	fprintf(out, "    @%d:%d\n", it->span.line, it->span.col);
	if (it->kind == ITEM_LAYER || it->kind == ITEM_PLASTICITY)
		print_settings(it->attrs, it->nattrs, "    ", out);
}

void ast_print_file(const AstFile *f, FILE *out)
{
	fprintf(out, "file %s\n", f->path);
	for (int i = 0; i < f->ndecls; i++) {
		const AstDecl *d = f->decls[i];
		switch (d->kind) {
		case DECL_IMPORT:
			fprintf(out, "import \"%s\"", d->name);
			break;
		case DECL_CONST:
			fprintf(out, "const %s = ", d->name);
			ast_print_expr(d->value, out);
			break;
		case DECL_RULE:
			fprintf(out, "rule %s: weight = ", d->name);
			ast_print_expr(d->value, out);
			if (d->bias) {
				fputs("; bias = ", out);
				ast_print_expr(d->bias, out);
			}
			break;
		case DECL_MODEL:
			fprintf(out, "model %s", d->name);
			break;
		}
		fprintf(out, "    @%d:%d\n", d->span.line, d->span.col);
		if (d->kind == DECL_MODEL)
			for (int j = 0; j < d->nitems; j++)
				print_item(d->items[j], out);
	}
}
