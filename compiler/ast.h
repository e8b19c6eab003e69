/* compiler/ast.h -- the syntax tree of a .plast program (one or more files joined by imports).
 *
 * Every node carries the SrcSpan of the text it came from, so sema and lowering can point at it.
 * Ownership: every node, array and string of a program lives in one AstArena and is released at once by
 * ast_arena_free; nothing in the tree is freed on its own. The only heap objects the parser holds outside
 * the arena are AstList builders (growable arrays), which ast_list_freeze copies into the arena and frees.
 */
#ifndef PLASTC_AST_H
#define PLASTC_AST_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"

/* Nesting deeper than this (brackets in the lexer, expression depth in the parser) is an error: it bounds
 * the recursion of every later pass. */
#define AST_MAX_DEPTH 256

typedef struct AstArena AstArena;

AstArena *ast_arena_new(void);
void ast_arena_free(AstArena *a);
void *ast_alloc(AstArena *a, size_t size);       /* zeroed, aligned; aborts (exit 2) when out of memory */
char *ast_strndup(AstArena *a, const char *s, size_t n);
char *ast_strdup(AstArena *a, const char *s);

/* ---- expressions ---- */
typedef enum AstExprKind {
	AST_NUM,   /* num */
	AST_NAME,  /* name */
	AST_CALL,  /* name(args...) */
	AST_BINOP, /* args[0] op args[1], op one of + - * / */
	AST_NEG,   /* -args[0] */
	AST_SLICE, /* args[0][lo:hi]; lo/hi NULL when omitted */
	AST_ERROR, /* a syntax error already reported; later passes stay silent about it */
} AstExprKind;

typedef struct AstExpr AstExpr;
struct AstExpr {
	AstExprKind kind;
	SrcSpan span;
	int depth;          /* 1 + depth of the deepest operand */
	double num;
	const char *name;   /* NAME, CALL */
	SrcSpan name_span;  /* CALL: the function name only */
	char op;            /* BINOP */
	AstExpr **args;     /* CALL arguments, operands */
	int nargs;
	AstExpr *lo, *hi;   /* SLICE bounds */
};

/* A growable array of pointers used while parsing (heap, not arena: see the ownership note above). */
typedef struct AstList {
	void **items;
	int n, cap;
} AstList;

AstList *ast_list_new(void);
void ast_list_push(AstList *l, void *item);
void ast_list_free(AstList *l);
/* Copies the items into the arena, frees l (which may be NULL: an empty list) and returns the array. */
void **ast_list_freeze(AstArena *a, AstList *l, int *n);

AstExpr *ast_num(AstArena *a, double v, SrcSpan at);
AstExpr *ast_name(AstArena *a, const char *name, SrcSpan at);
AstExpr *ast_call(AstArena *a, const char *name, SrcSpan name_at, AstList *args, SrcSpan at);
AstExpr *ast_binop(AstArena *a, char op, AstExpr *l, AstExpr *r, SrcSpan at);
AstExpr *ast_neg(AstArena *a, AstExpr *x, SrcSpan at);
AstExpr *ast_slice(AstArena *a, AstExpr *x, AstExpr *lo, AstExpr *hi, SrcSpan at);
AstExpr *ast_error(AstArena *a, SrcSpan at);

/* ---- settings (`key = value`) in layer attributes, plasticity blocks and rule blocks ---- */
typedef struct AstSetting {
	const char *key;
	SrcSpan key_span, span;
	AstExpr *value;
} AstSetting;

/* ---- model items ---- */
typedef enum AstItemKind {
	ITEM_INPUT,
	ITEM_OUTPUT,
	ITEM_EXTRA,
	ITEM_MODULATOR,
	ITEM_LAYER,
	ITEM_PARAM,
	ITEM_INTERNAL_LOSS,
	ITEM_META_LOSS,
	ITEM_PLASTICITY,
} AstItemKind;

typedef enum AstLayerKind { LAYER_LINEAR, LAYER_RNN, LAYER_LSTM, LAYER_CONV4 } AstLayerKind;

typedef struct AstIdent {
	const char *name;
	SrcSpan span;
	bool sliced;          /* a layer source written NAME[lo:hi] */
	AstExpr *lo, *hi;     /* its bounds (NULL when omitted) */
} AstIdent;

typedef struct AstItem {
	AstItemKind kind;
	SrcSpan span;          /* the whole item */
	const char *name;      /* declared name (NULL for internal_loss, meta_loss, plasticity) */
	SrcSpan name_span;
	AstExpr **dims;        /* input/output/extra: one size; param: its dims */
	int ndims;
	/* layers */
	AstLayerKind layer;
	bool plastic;
	AstIdent **srcs;       /* the inputs, concatenated in order */
	int nsrcs;
	AstExpr **outs;        /* after `->`: one size, or output names */
	int nouts;
	const char *act;       /* NULL when omitted */
	SrcSpan act_span;
	AstSetting **attrs;    /* layer attributes; plasticity settings */
	int nattrs;
	/* param init, internal_loss and meta_loss value */
	AstExpr *value;
} AstItem;

/* ---- top-level declarations ---- */
typedef enum AstDeclKind { DECL_IMPORT, DECL_CONST, DECL_RULE, DECL_MODEL } AstDeclKind;

typedef struct AstDecl {
	AstDeclKind kind;
	SrcSpan span;
	const char *name;     /* const, rule, model name; import: the path as written */
	SrcSpan name_span;
	AstExpr *value;       /* const value; one-line rule: the weight update */
	AstExpr *bias;        /* rule: bias update (NULL if none) */
	SrcSpan value_span, bias_span;
	AstItem **items;      /* model */
	int nitems;
} AstDecl;

typedef struct AstFile {
	const char *path;     /* as registered with the DiagCtx (stable) */
	AstDecl **decls;
	int ndecls;
} AstFile;

/* Short names for printing ("linear", "internal_loss", ...). */
const char *ast_layer_kind_name(AstLayerKind k);
const char *ast_item_kind_name(AstItemKind k);

/* Writes the tree in a stable indented text form (`plastc dump --stage ast`). */
void ast_print_file(const AstFile *f, FILE *out);
void ast_print_expr(const AstExpr *e, FILE *out);

#endif
