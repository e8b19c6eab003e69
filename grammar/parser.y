/* grammar/parser.y -- the pure parser of .plast files (docs/language.md), building the AST (compiler/ast.h).
 *
 * Errors: Bison's report (yyreport_syntax_error, "unexpected X, expected Y") is not printed at once but
 * kept pending in the ParseCtx; an error production that knows the construct adds a hint and prints it,
 * otherwise it is printed as it is when the statement-level `error` production recovers. Recovery is per
 * statement (a newline or ';'), so one run reports several errors. Some common mistakes are ordinary
 * productions that print their own message (a layer without '->', a rule with a parameter list).
 *
 * Depth: bracket nesting is capped by the scanner; expression depth (which also grows without brackets,
 * as in a[0:1][0:1]...) is capped here, in the actions, at AST_MAX_DEPTH.
 *
 * Memory: nodes and strings live in the arena; the only heap values on the parser stack are AstList
 * builders, released by the %destructor when error recovery discards them.
 */
%define api.pure full
%define api.location.type {SrcSpan}
%define parse.error custom
/* Canonical LR with default reductions only in consistent states: errors are detected in the state where
 * they occur, so the expected-token lists are exact (no merged lookaheads) and error recovery resumes
 * inside the enclosing block instead of at the top level (a default reduction of `items` would first
 * close the block). Consistent states still reduce by default, so `file: %empty` is reduced before the
 * first token and `file error end` can catch an error there. The grammar is small; so are the tables. */
%define lr.type canonical-lr
%define lr.default-reduction consistent
%locations
%expect 0
%param {yyscan_t scanner}
%parse-param {ParseCtx *ctx}

%code requires {
#include "ast.h"
#include "parse.h"
typedef void *yyscan_t;
}

%code provides {
int yylex(YYSTYPE *lval, SrcSpan *lloc, yyscan_t scanner);
}

%code {
#include <stdio.h>
#include <string.h>

char *yyget_text(yyscan_t scanner);
ParseCtx *yyget_extra(yyscan_t scanner);
int lex_raw(YYSTYPE *lval, SrcSpan *lloc, yyscan_t scanner);
static const char *parse_stmt_hint(int tok, bool top);

/* Spans: from the first symbol's start to the last one's end; an empty rule sits at the previous end. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                  \
	do {                                                             \
		if (N) {                                                     \
			(Cur).file = YYRHSLOC(Rhs, 1).file;                      \
			(Cur).line = YYRHSLOC(Rhs, 1).line;                      \
			(Cur).col = YYRHSLOC(Rhs, 1).col;                        \
			(Cur).end_line = YYRHSLOC(Rhs, N).end_line;              \
			(Cur).end_col = YYRHSLOC(Rhs, N).end_col;                \
		} else {                                                     \
			(Cur).file = YYRHSLOC(Rhs, 0).file;                      \
			(Cur).line = (Cur).end_line = YYRHSLOC(Rhs, 0).end_line; \
			(Cur).col = (Cur).end_col = YYRHSLOC(Rhs, 0).end_col;    \
		}                                                            \
	} while (0)

static void yyerror(SrcSpan *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg);

/* Caps the depth of an expression; past the cap the node becomes an (already reported) error node. */
static AstExpr *depth_check(ParseCtx *ctx, AstExpr *e)
{
	if (e->depth <= AST_MAX_DEPTH)
		return e;
	if (!ctx->depth_reported) {
		diag_emit(ctx->diag, DIAG_ERROR, e->span, NULL, "split it with constants or simplify it",
			"expression nested deeper than %d levels", AST_MAX_DEPTH);
		ctx->depth_reported = true;
	}
	return ast_error(ctx->arena, e->span);
}

static bool is_err(const AstExpr *e)
{
	return e && e->kind == AST_ERROR;
}

static AstDecl *decl_new(ParseCtx *ctx, AstDeclKind k, SrcSpan at)
{
	AstDecl *d = ast_alloc(ctx->arena, sizeof *d);
	d->kind = k;
	d->span = at;
	return d;
}

static AstItem *item_new(ParseCtx *ctx, AstItemKind k, SrcSpan at)
{
	AstItem *it = ast_alloc(ctx->arena, sizeof *it);
	it->kind = k;
	it->span = at;
	return it;
}

static AstSetting *setting_new(ParseCtx *ctx, const char *key, SrcSpan key_at, AstExpr *v, SrcSpan at)
{
	AstSetting *s = ast_alloc(ctx->arena, sizeof *s);
	s->key = key;
	s->key_span = key_at;
	s->value = v;
	s->span = at;
	return s;
}

static AstList *list1(void *x)
{
	AstList *l = ast_list_new();
	ast_list_push(l, x);
	return l;
}
}

%union {
	double num;
	const char *str;
	AstExpr *expr;
	AstList *list;
	AstItem *item;
	AstDecl *decl;
	AstSetting *setting;
	AstIdent *ident;
	int kind;
	bool flag;
}

%destructor { ast_list_free($$); } <list>

%token IMPORT "import" CONST "const" MODEL "model" INPUT "input" OUTPUT "output" EXTRA "extra"
%token MODULATOR "modulator" PLASTIC "plastic" LINEAR "linear" RNN "rnn" LSTM "lstm" CONV4 "conv4" PARAM "param"
%token INTERNAL_LOSS "internal_loss" PLASTICITY "plasticity" RULE "rule" WEIGHT "weight" BIAS "bias"
%token META_LOSS "meta_loss"
%token ARROW "->"
%token NL "end of line"
%token <str> IDENT "name"
%token <str> STRING "string"
%token <num> NUMBER "number"

%left '+' '-'
%left '*' '/'
%precedence NEG

%type <expr> expr postfix primary opt_expr
%type <list> expr_list args items item_seq settings setting_seq src_list
%type <str> name key opt_act
%type <decl> decl rule_decl
%type <item> item layer
%type <setting> setting
%type <ident> src
%type <kind> layer_kind
%type <flag> opt_plastic

%%

file:
	  %empty
	| file end
	| file decl end           { ast_list_push(ctx->decls, $2); }
	| file error end          { parse_flush_error(ctx, parse_stmt_hint(ctx->pend_stmt, true)); yyerrok; }
	;

end: NL | ';' ;

/* Names: `rule`, `weight`, `bias` and `internal_loss` are keywords but also ordinary names where no
 * keyword can stand (`const rule = hebbian`, `rule = rule`, `fixed = weight`, grad(internal_loss, w)). */
name:
	  IDENT
	| RULE                    { $$ = "rule"; }
	| WEIGHT                  { $$ = "weight"; }
	| BIAS                    { $$ = "bias"; }
	| INTERNAL_LOSS           { $$ = "internal_loss"; }
	;

decl:
	  IMPORT STRING {
		$$ = decl_new(ctx, DECL_IMPORT, @$);
		$$->name = $2;
		$$->name_span = @2;
	}
	| CONST name '=' expr {
		$$ = decl_new(ctx, DECL_CONST, @$);
		$$->name = $2;
		$$->name_span = @2;
		$$->value = $4;
		$$->value_span = @4;
	}
	| rule_decl
	| MODEL name '{' items '}' {
		$$ = decl_new(ctx, DECL_MODEL, @$);
		$$->name = $2;
		$$->name_span = @2;
		$$->items = (AstItem **)ast_list_freeze(ctx->arena, $4, &$$->nitems);
	}
	;

rule_decl:
	  RULE name '=' expr {
		$$ = decl_new(ctx, DECL_RULE, @$);
		$$->name = $2;
		$$->name_span = @2;
		$$->value = $4;
		$$->value_span = @4;
	}
	| RULE name '{' settings '}' {
		/* rule NAME { weight = EXPR  bias = EXPR }: sema checks the keys */
		$$ = decl_new(ctx, DECL_RULE, @$);
		$$->name = $2;
		$$->name_span = @2;
		int n;
		AstSetting **s = (AstSetting **)ast_list_freeze(ctx->arena, $4, &n);
		for (int i = 0; i < n; i++) {
			if (strcmp(s[i]->key, "weight") == 0 && !$$->value) {
				$$->value = s[i]->value;
				$$->value_span = s[i]->span;
			} else if (strcmp(s[i]->key, "bias") == 0 && !$$->bias) {
				$$->bias = s[i]->value;
				$$->bias_span = s[i]->span;
			} else {
				diag_emit(ctx->diag, DIAG_ERROR, s[i]->key_span, NULL,
					"a rule block holds `weight = EXPR` and optionally `bias = EXPR`, once each",
					"unexpected '%s' in rule block", s[i]->key);
			}
		}
		if (!$$->value && n > 0)
			diag_emit(ctx->diag, DIAG_ERROR, @$, NULL, "add `weight = EXPR`",
				"rule '%s' has no weight update", $2);
		if (!$$->value)
			$$->value = ast_error(ctx->arena, @$);
	}
	| RULE name '(' expr_list ')' '=' expr {
		diag_emit(ctx->diag, DIAG_ERROR, @3, "pre, post, w, W, b, Wb and the model's outputs are always in scope in a rule",
			"write `rule NAME = EXPR`", "a rule takes no parameter list");
		ast_list_free($4);
		$$ = decl_new(ctx, DECL_RULE, @$);
		$$->name = $2;
		$$->name_span = @2;
		$$->value = $7;
		$$->value_span = @7;
	}
	;

/* ---- block bodies: statements separated by newlines or ';', the last one may stand before '}' ---- */
items:
	  item_seq
	| item_seq item           { $$ = $1; if ($2) ast_list_push($$, $2); }
	;

item_seq:
	  %empty                  { $$ = ast_list_new(); }
	| item_seq end            { $$ = $1; }
	| item_seq item end       { $$ = $1; if ($2) ast_list_push($$, $2); }
	| item_seq error end      { $$ = $1; parse_flush_error(ctx, parse_stmt_hint(ctx->pend_stmt, false)); yyerrok; }
	;

settings:
	  setting_seq
	| setting_seq setting     { $$ = $1; ast_list_push($$, $2); }
	;

setting_seq:
	  %empty                  { $$ = ast_list_new(); }
	| setting_seq end         { $$ = $1; }
	| setting_seq setting end { $$ = $1; ast_list_push($$, $2); }
	| setting_seq error end   {
		$$ = $1;
		parse_flush_error(ctx, "settings are written `key = value`, one per line or separated by ';'");
		yyerrok;
	}
	;

key: name ;

setting:
	  key '=' expr            { $$ = setting_new(ctx, $1, @1, $3, @$); }
	;

/* ---- model items ---- */
item:
	  INPUT name '[' expr ']'  {
		$$ = item_new(ctx, ITEM_INPUT, @$);
		$$->name = $2; $$->name_span = @2;
		$$->dims = ast_alloc(ctx->arena, sizeof *$$->dims);
		$$->dims[0] = $4; $$->ndims = 1;
	}
	| OUTPUT name '[' expr ']' {
		$$ = item_new(ctx, ITEM_OUTPUT, @$);
		$$->name = $2; $$->name_span = @2;
		$$->dims = ast_alloc(ctx->arena, sizeof *$$->dims);
		$$->dims[0] = $4; $$->ndims = 1;
	}
	| EXTRA name '[' expr ']' {
		$$ = item_new(ctx, ITEM_EXTRA, @$);
		$$->name = $2; $$->name_span = @2;
		$$->dims = ast_alloc(ctx->arena, sizeof *$$->dims);
		$$->dims[0] = $4; $$->ndims = 1;
	}
	| INPUT name {
		diag_emit(ctx->diag, DIAG_ERROR, @2, NULL, "write its size: input x[16]", "input '%s' needs a size", $2);
		$$ = NULL;
	}
	| OUTPUT name {
		diag_emit(ctx->diag, DIAG_ERROR, @2, NULL, "write its size: output y[1]", "output '%s' needs a size", $2);
		$$ = NULL;
	}
	| EXTRA name {
		diag_emit(ctx->diag, DIAG_ERROR, @2, NULL, "write its size: extra yx[4]", "extra '%s' needs a size", $2);
		$$ = NULL;
	}
	| MODULATOR name {
		$$ = item_new(ctx, ITEM_MODULATOR, @$);
		$$->name = $2; $$->name_span = @2;
	}
	| layer
	| PARAM name '[' expr_list ']' '=' expr {
		$$ = item_new(ctx, ITEM_PARAM, @$);
		$$->name = $2; $$->name_span = @2;
		$$->dims = (AstExpr **)ast_list_freeze(ctx->arena, $4, &$$->ndims);
		$$->value = $7;
	}
	| PARAM name '[' expr_list ']' {
		diag_emit(ctx->diag, DIAG_ERROR, @5, NULL, "e.g. param w_out[6] = 1, or = normal(0, 0.1)",
			"param '%s' needs an initialisation", $2);
		ast_list_free($4);
		$$ = NULL;
	}
	| INTERNAL_LOSS '=' expr {
		$$ = item_new(ctx, ITEM_INTERNAL_LOSS, @$);
		$$->value = $3;
	}
	| META_LOSS '=' expr {
		$$ = item_new(ctx, ITEM_META_LOSS, @$);
		$$->value = $3;
	}
	| PLASTICITY '{' settings '}' {
		$$ = item_new(ctx, ITEM_PLASTICITY, @$);
		$$->attrs = (AstSetting **)ast_list_freeze(ctx->arena, $3, &$$->nattrs);
	}
	;

opt_plastic: %empty { $$ = false; } | PLASTIC { $$ = true; } ;

layer_kind: LINEAR { $$ = LAYER_LINEAR; } | RNN { $$ = LAYER_RNN; } | LSTM { $$ = LAYER_LSTM; }
	| CONV4 { $$ = LAYER_CONV4; } ;

opt_act: %empty { $$ = NULL; } | IDENT ;

layer:
	  opt_plastic layer_kind name '(' src_list ARROW expr_list ')' opt_act {
		$$ = item_new(ctx, ITEM_LAYER, @$);
		$$->plastic = $1;
		$$->layer = (AstLayerKind)$2;
		$$->name = $3; $$->name_span = @3;
		$$->srcs = (AstIdent **)ast_list_freeze(ctx->arena, $5, &$$->nsrcs);
		$$->outs = (AstExpr **)ast_list_freeze(ctx->arena, $7, &$$->nouts);
		$$->act = $9;
		$$->act_span = @9;
	}
	| opt_plastic layer_kind name '(' src_list ARROW expr_list ')' opt_act '{' settings '}' {
		$$ = item_new(ctx, ITEM_LAYER, @$);
		$$->plastic = $1;
		$$->layer = (AstLayerKind)$2;
		$$->name = $3; $$->name_span = @3;
		$$->srcs = (AstIdent **)ast_list_freeze(ctx->arena, $5, &$$->nsrcs);
		$$->outs = (AstExpr **)ast_list_freeze(ctx->arena, $7, &$$->nouts);
		$$->act = $9;
		$$->act_span = @9;
		$$->attrs = (AstSetting **)ast_list_freeze(ctx->arena, $11, &$$->nattrs);
	}
	| opt_plastic layer_kind name '(' src_list ')' {
		diag_emit(ctx->diag, DIAG_ERROR, @6, NULL, "write the layer as: linear NAME (SRC -> SIZE) [ACT]",
			"expected '->' in layer declaration");
		ast_list_free($5);
		$$ = NULL;
	}
	;

src_list:
	  src                     { $$ = list1($1); }
	| src_list ',' src        { $$ = $1; ast_list_push($$, $3); }
	;

src:
	  name {
		$$ = ast_alloc(ctx->arena, sizeof *$$);
		$$->name = $1;
		$$->span = @1;
	}
	| name '[' opt_expr ':' opt_expr ']' {
		/* a view of part of a source: x[0:784] */
		$$ = ast_alloc(ctx->arena, sizeof *$$);
		$$->name = $1;
		$$->span = @$;
		$$->sliced = true;
		$$->lo = $3;
		$$->hi = $5;
	}
	;

/* ---- expressions ---- */
expr:
	  expr '+' expr           { $$ = is_err($1) ? $1 : is_err($3) ? $3 : depth_check(ctx, ast_binop(ctx->arena, '+', $1, $3, @$)); }
	| expr '-' expr           { $$ = is_err($1) ? $1 : is_err($3) ? $3 : depth_check(ctx, ast_binop(ctx->arena, '-', $1, $3, @$)); }
	| expr '*' expr           { $$ = is_err($1) ? $1 : is_err($3) ? $3 : depth_check(ctx, ast_binop(ctx->arena, '*', $1, $3, @$)); }
	| expr '/' expr           { $$ = is_err($1) ? $1 : is_err($3) ? $3 : depth_check(ctx, ast_binop(ctx->arena, '/', $1, $3, @$)); }
	| '-' expr %prec NEG      { $$ = is_err($2) ? $2 : depth_check(ctx, ast_neg(ctx->arena, $2, @$)); }
	| postfix
	;

postfix:
	  primary
	| postfix '[' opt_expr ':' opt_expr ']' {
		$$ = is_err($1) ? $1 : depth_check(ctx, ast_slice(ctx->arena, $1, $3, $5, @$));
	}
	| postfix '[' expr ']' {
		diag_emit(ctx->diag, DIAG_ERROR, @3, NULL, "write a slice of the last axis: e[lo:hi]",
			"indexing a single element is not supported");
		$$ = ast_error(ctx->arena, @$);
	}
	;

opt_expr: %empty { $$ = NULL; } | expr ;

primary:
	  NUMBER                  { $$ = ast_num(ctx->arena, $1, @$); }
	| name                    { $$ = ast_name(ctx->arena, $1, @$); }
	| name '(' args ')'       { $$ = depth_check(ctx, ast_call(ctx->arena, $1, @1, $3, @$)); }
	| '(' expr ')'            { $$ = $2; $$->span = @$; }
	| '(' error ')'           { parse_flush_error(ctx, NULL); yyerrok; $$ = ast_error(ctx->arena, @$); }
	;

args: %empty { $$ = NULL; } | expr_list ;

expr_list:
	  expr                    { $$ = list1($1); }
	| expr_list ',' expr      { $$ = $1; ast_list_push($$, $3); }
	;

%%

/* Bison's own messages ("memory exhausted") and anything not reported by yyreport_syntax_error. */
static void yyerror(SrcSpan *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg)
{
	(void)scanner;
	parse_flush_error(ctx, NULL);
	if (strcmp(msg, "memory exhausted") == 0)
		diag_emit(ctx->diag, DIAG_ERROR, *loc, NULL, "split the expression with constants or simplify it",
			"expression nested too deeply");
	else
		diag_emit(ctx->diag, DIAG_ERROR, *loc, NULL, NULL, "%s", msg);
}

/* A token as the user wrote it: "'->'" for punctuation and keywords, "name 'hiden'" for values. */
static void describe_token(yysymbol_kind_t k, yyscan_t scanner, char *buf, size_t n)
{
	const char *s = yysymbol_name(k);
	switch (k) {
	case YYSYMBOL_IDENT:
	case YYSYMBOL_NUMBER:
		snprintf(buf, n, "%s '%.40s'", s, yyget_text(scanner));
		return;
	case YYSYMBOL_STRING:
	case YYSYMBOL_NL:
	case YYSYMBOL_YYEOF:
		snprintf(buf, n, "%s", s);
		return;
	default:
		break;
	}
	/* character literals come quoted ('('), keywords and "->" bare: quote them alike */
	if (s[0] == '\'')
		snprintf(buf, n, "%s", s);
	else
		snprintf(buf, n, "'%s'", s);
}

static int yyreport_syntax_error(const yypcontext_t *pctx, yyscan_t scanner, ParseCtx *ctx)
{
	parse_flush_error(ctx, NULL);
	if (ctx->stop)
		return 0; /* the scanner already reported why the input ends here */
	enum { MAXEXP = 12 };
	yysymbol_kind_t all[MAXEXP], expected[MAXEXP];
	int nall = yypcontext_expected_tokens(pctx, all, MAXEXP), nexp = 0;
	/* keywords that are also names are not worth listing beside "name" */
	bool name_ok = false;
	for (int i = 0; i < nall; i++)
		name_ok = name_ok || all[i] == YYSYMBOL_IDENT;
	for (int i = 0; i < nall; i++)
		if (!(name_ok && (all[i] == YYSYMBOL_RULE || all[i] == YYSYMBOL_WEIGHT || all[i] == YYSYMBOL_BIAS ||
			all[i] == YYSYMBOL_INTERNAL_LOSS)))
			expected[nexp++] = all[i];
	if (nall == 0 || nall >= MAXEXP)
		nexp = 0;
	yysymbol_kind_t got = yypcontext_token(pctx);
	char what[96], msg[sizeof ctx->pend_msg];
	describe_token(got, scanner, what, sizeof what);
	size_t len = (size_t)snprintf(msg, sizeof msg, "unexpected %s", what);
	if (nexp > 0 && nexp <= 6) {
		for (int i = 0; i < nexp && len < sizeof msg; i++) {
			char e[64];
			describe_token(expected[i], scanner, e, sizeof e);
			/* IDENT's description includes the current text; for expectations use the bare kind */
			if (expected[i] == YYSYMBOL_IDENT || expected[i] == YYSYMBOL_NUMBER)
				snprintf(e, sizeof e, "%s", yysymbol_name(expected[i]));
			len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s", i == 0 ? ", expected " :
				i == nexp - 1 ? " or " : ", ", e);
		}
	}
	ctx->pending = true;
	ctx->pend_stmt = ctx->stmt_tok;
	ctx->pend_at = *yypcontext_location(pctx);
	snprintf(ctx->pend_msg, sizeof ctx->pend_msg, "%s", msg);
	return 0;
}

/* The hint of a statement-level syntax error, chosen by the statement's first token. */
static const char *parse_stmt_hint(int tok, bool top)
{
	switch (tok) {
	case LINEAR:
	case RNN:
	case LSTM:
	case CONV4:
	case PLASTIC:
		return top ? "layers are declared inside model NAME { ... }" :
			"write the layer as: [plastic] linear NAME (SRC, ... -> SIZE or OUTPUTS) [ACT] [{ KEY = VALUE; ... }]";
	case INPUT:
	case OUTPUT:
	case EXTRA:
		return top ? "inputs and outputs are declared inside model NAME { ... }" :
			"declare it as: input NAME[SIZE] (output and extra likewise)";
	case MODULATOR:
		return "declare it as: modulator NAME";
	case PARAM:
		return "declare it as: param NAME[DIM, ...] = INIT";
	case CONST:
		return "a constant is declared as: const NAME = VALUE (a number or a rule name)";
	case IMPORT:
		return "write the path in quotes: import \"lib/duan.plast\"";
	case RULE:
		return "a rule is declared as: rule NAME = EXPR, or rule NAME { weight = EXPR; bias = EXPR }";
	case MODEL:
		return "a model is declared as: model NAME { ITEMS }";
	case INTERNAL_LOSS:
		return "write it as: internal_loss = EXPR";
	case META_LOSS:
		return "write it as: meta_loss = mse | cross_entropy | sse";
	case PLASTICITY:
		return "write it as: plasticity { KEY = VALUE ... }";
	default:
		return NULL;
	}
}

/* The scanner, seen through the statement tracker: remembers the first token of each statement for
 * parse_stmt_hint. */
int yylex(YYSTYPE *lval, SrcSpan *lloc, yyscan_t scanner)
{
	ParseCtx *ctx = yyget_extra(scanner);
	int tok = lex_raw(lval, lloc, scanner);
	if (tok == NL || tok == ';' || tok == '{' || tok == '}') {
		ctx->at_stmt_start = true;
	} else if (ctx->at_stmt_start) {
		ctx->stmt_tok = tok;
		ctx->at_stmt_start = false;
	}
	return tok;
}

void parse_flush_error(ParseCtx *ctx, const char *hint)
{
	if (!ctx->pending)
		return;
	ctx->pending = false;
	diag_emit(ctx->diag, DIAG_ERROR, ctx->pend_at, NULL, hint, "%s", ctx->pend_msg);
	if (diag_error_count(ctx->diag) > 20)
		ctx->stop = true;
}
