/* compiler/sema.c -- names, constants, shapes and model structure (sema.h).
 *
 * Order of work: (1) define every global name (constants, rules, the model and its items) in one hash
 * table, reporting redefinitions with a note at the first one; (2) apply --set; (3) evaluate constants;
 * (4) the model: sizes, outputs and their producers, layer sources and their order, attributes and
 * plasticity settings, the parameter and state tables; (5) expressions: internal loss, rates, decays
 * and every rule instantiated for every plastic tensor, with shapes; (6) the non-differentiable check on
 * the internal loss when a rule differentiates it.
 *
 * Every recursion here is bounded: expressions by AST_MAX_DEPTH (parser), constant chains by
 * CONST_MAX_CHAIN, layer reachability is iterative.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sema.h"

#include "ir_nn.h"

enum { CONST_MAX_CHAIN = AST_MAX_DEPTH, MAX_ERRORS_FOR_HINTS = 20 };

struct SemaProgram {
	AstArena *arena;
	DiagCtx *diag;
	SemaSym *tab; /* open addressing, cap a power of two */
	size_t cap, count;
	SemaConst *consts;
	int nconsts;
	const AstDecl **rules;
	int nrules;
	const AstDecl *model;
	SemaModel *m;
	int chain; /* depth of constant evaluation */
};

typedef SemaProgram P;

/* ---------------------------------------------------------------- utilities */

static bool errs_ok(const P *p)
{
	return diag_error_count(p->diag) < MAX_ERRORS_FOR_HINTS;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static SemaSym *tab_slot(const P *p, const char *name)
{
	size_t i = (size_t)hash_str(name) & (p->cap - 1);
	while (p->tab[i].kind != SYM_NONE && strcmp(p->tab[i].name, name) != 0)
		i = (i + 1) & (p->cap - 1);
	return &p->tab[i];
}

static SemaSym lookup(const P *p, const char *name)
{
	SemaSym *s = tab_slot(p, name);
	return *s;
}

/* Defines name; on a clash reports the redefinition with a note at the first definition. */
static bool define(P *p, const char *name, SrcSpan at, SemaSymKind kind, int index)
{
	SemaSym *s = tab_slot(p, name);
	if (s->kind != SYM_NONE) {
		diag_emit(p->diag, DIAG_ERROR, at, NULL, "every name is defined once per program, imports included",
			"redefinition of '%s'", name);
		diag_emit(p->diag, DIAG_NOTE, s->span, NULL, NULL, "'%s' was first defined here", name);
		return false;
	}
	s->kind = kind;
	s->name = name;
	s->span = at;
	s->index = index;
	p->count++;
	return true;
}

void sema_shape_str(IrShape s, char *buf, size_t n)
{
	size_t len = (size_t)snprintf(buf, n, "[");
	for (int i = 0; i < s.rank && len < n; i++)
		len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? "," : "", (long long)s.d[i]);
	if (len < n)
		snprintf(buf + len, n - len, "]");
}

static IrShape shp(bool batch, int rank, int64_t d0, int64_t d1)
{
	IrShape s;
	memset(&s, 0, sizeof s);
	s.batch = batch;
	s.rank = rank;
	s.d[0] = d0;
	s.d[1] = d1;
	return s;
}

static bool shp_eq_dims(IrShape a, IrShape b)
{
	if (a.rank != b.rank)
		return false;
	for (int i = 0; i < a.rank; i++)
		if (a.d[i] != b.d[i])
			return false;
	return true;
}

/* numpy broadcasting of the per-trial dims, right-aligned; the batch flag is or-ed. */
static bool shp_broadcast(IrShape a, IrShape b, IrShape *out)
{
	IrShape r;
	memset(&r, 0, sizeof r);
	r.batch = a.batch || b.batch;
	r.rank = a.rank > b.rank ? a.rank : b.rank;
	for (int i = 0; i < r.rank; i++) {
		int ia = a.rank - 1 - i, ib = b.rank - 1 - i;
		int64_t da = ia >= 0 ? a.d[ia] : 1, db = ib >= 0 ? b.d[ib] : 1;
		if (da != db && da != 1 && db != 1)
			return false;
		r.d[r.rank - 1 - i] = da == 1 ? db : da;
	}
	*out = r;
	return true;
}

static int64_t shp_numel(IrShape s)
{
	int64_t n = 1;
	for (int i = 0; i < s.rank; i++) {
		if (s.d[i] > 0 && n > INT64_MAX / s.d[i])
			return INT64_MAX;
		n *= s.d[i];
	}
	return n;
}

static int levenshtein(const char *a, const char *b)
{
	int la = (int)strlen(a), lb = (int)strlen(b);
	int row[65];
	for (int j = 0; j <= lb; j++)
		row[j] = j;
	for (int i = 1; i <= la; i++) {
		int prev = row[0];
		row[0] = i;
		for (int j = 1; j <= lb; j++) {
			int cur = row[j];
			int best = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

const char *sema_nearest(const char *name, const char *const *cands, int n)
{
	int len = (int)strlen(name);
	if (len > 64)
		return NULL;
	int limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
	const char *best = NULL;
	int bestd = limit + 1;
	for (int i = 0; i < n; i++) {
		int lc = (int)strlen(cands[i]);
		if (lc > 64 || abs(lc - len) > limit || strcmp(cands[i], name) == 0)
			continue;
		int d = levenshtein(name, cands[i]);
		if (d < bestd) {
			bestd = d;
			best = cands[i];
		}
	}
	return best;
}

/* A "did you mean" hint over the global names of the given kinds (mask of 1 << SemaSymKind) and extra
 * names; returns NULL or a hint in the arena. */
static const char *hint_for(P *p, const char *name, unsigned kinds, const char *const *extra, int nextra)
{
	if (!errs_ok(p))
		return NULL;
	const char **c = malloc((p->count + (size_t)nextra + 1) * sizeof *c);
	if (!c)
		return NULL;
	int n = 0;
	for (int i = 0; i < nextra; i++)
		c[n++] = extra[i];
	for (size_t i = 0; i < p->cap; i++)
		if (p->tab[i].kind != SYM_NONE && (kinds & (1u << p->tab[i].kind)))
			c[n++] = p->tab[i].name;
	const char *best = sema_nearest(name, c, n);
	free(c);
	if (!best)
		return NULL;
	char buf[160];
	snprintf(buf, sizeof buf, "did you mean '%s'?", best);
	return ast_strdup(p->arena, buf);
}

/* Shortest %g text that reads back as exactly v. */
static void fmt_num(double v, char *buf, size_t n)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* ---------------------------------------------------------------- built-ins */

static const struct {
	const char *name;
	SemaFn fn;
	int min, max;
} builtins[] = {
	{"relu", FN_RELU, 1, 1},       {"tanh", FN_TANH, 1, 1},     {"sigmoid", FN_SIGMOID, 1, 1},
	{"exp", FN_EXP, 1, 1},         {"log", FN_LOG, 1, 1},       {"sqrt", FN_SQRT, 1, 1},
	{"square", FN_SQUARE, 1, 1},   {"abs", FN_ABS, 1, 1},       {"sign", FN_SIGN, 1, 1},
	{"step", FN_STEP, 1, 1},       {"min", FN_MIN, 2, 2},       {"max", FN_MAX, 2, 2},
	{"sum", FN_SUM, 1, 1},         {"mean", FN_MEAN, 1, 1},     {"norm", FN_NORM, 1, 1},
	{"batch_mean", FN_BATCH_MEAN, 1, 1}, {"concat", FN_CONCAT, 1, INT_MAX},
	{"outer", FN_OUTER, 2, 2},     {"grad", FN_GRAD, 2, 2},
};
enum { NBUILTINS = sizeof builtins / sizeof builtins[0] };

SemaFn sema_fn(const char *name)
{
	for (int i = 0; i < NBUILTINS; i++)
		if (strcmp(builtins[i].name, name) == 0)
			return builtins[i].fn;
	return FN_NONE;
}

static int builtin_index(const char *name)
{
	for (int i = 0; i < NBUILTINS; i++)
		if (strcmp(builtins[i].name, name) == 0)
			return i;
	return -1;
}

static const char *builtin_hint(P *p, const char *name)
{
	if (!errs_ok(p))
		return NULL;
	const char *c[NBUILTINS];
	for (int i = 0; i < NBUILTINS; i++)
		c[i] = builtins[i].name;
	const char *best = sema_nearest(name, c, NBUILTINS);
	char buf[160];
	if (best)
		snprintf(buf, sizeof buf, "did you mean '%s'?", best);
	else
		snprintf(buf, sizeof buf, "the functions are relu tanh sigmoid exp log sqrt square abs sign step min max "
			"sum mean norm batch_mean concat outer grad");
	return ast_strdup(p->arena, buf);
}

const char *sema_act_name(SemaAct a)
{
	switch (a) {
	case ACT_IDENTITY: return "identity";
	case ACT_RELU: return "relu";
	case ACT_TANH: return "tanh";
	case ACT_SIGMOID: return "sigmoid";
	}
	return "?";
}

static const char *const rule_locals[] = {"pre", "post", "w", "W", "b", "Wb"};

bool sema_is_rule_local(const char *name)
{
	for (size_t i = 0; i < sizeof rule_locals / sizeof *rule_locals; i++)
		if (strcmp(rule_locals[i], name) == 0)
			return true;
	return false;
}

/* ---------------------------------------------------------------- constants */

/* A constant's value: a number, a rule, or the name of an α initialisation (`const alpha_mode = random`,
 * so that `alpha = alpha_mode` can be switched by --set/--vary like a rule). */
typedef struct CVal {
	bool is_rule;
	double num;
	const AstDecl *rule;
	const char *alpha;
	const char *init; /* a weight initialisation named by a constant: identity or default (see hh_init) */
} CVal;

static const char *const alpha_modes[] = {"random", "uniform", "negative", "none"};
static const char *const init_names[] = {"identity", "default"};

static const char *init_name(const char *name)
{
	for (size_t i = 0; i < sizeof init_names / sizeof *init_names; i++)
		if (strcmp(init_names[i], name) == 0)
			return init_names[i];
	return NULL;
}

/* The static spelling of an α initialisation named `name`, or NULL. */
static const char *alpha_mode_name(const char *name)
{
	for (size_t i = 0; i < sizeof alpha_modes / sizeof *alpha_modes; i++)
		if (strcmp(alpha_modes[i], name) == 0)
			return alpha_modes[i];
	return NULL;
}

static bool ceval(P *p, const AstExpr *e, CVal *out);

static bool eval_const(P *p, int i, SrcSpan use, CVal *out)
{
	SemaConst *c = &p->consts[i];
	if (c->state == 1) {
		diag_emit(p->diag, DIAG_ERROR, use, NULL, NULL, "constant '%s' is defined in terms of itself", c->name);
		diag_emit(p->diag, DIAG_NOTE, c->decl->name_span, NULL, NULL, "'%s' is defined here", c->name);
		return false;
	}
	if (c->state == 0) {
		if (p->chain >= CONST_MAX_CHAIN) {
			diag_emit(p->diag, DIAG_ERROR, use, NULL, NULL, "constants refer to each other more than %d levels deep",
				CONST_MAX_CHAIN);
			return false;
		}
		c->state = 1;
		p->chain++;
		CVal v = {0};
		c->ok = ceval(p, c->value, &v);
		p->chain--;
		c->state = 2;
		c->is_rule = v.is_rule;
		c->num = v.num;
		c->rule = v.rule;
		c->alpha = v.alpha;
		c->init = v.init;
	}
	if (!c->ok)
		return false;
	out->is_rule = c->is_rule;
	out->num = c->num;
	out->rule = c->rule;
	out->alpha = c->alpha;
	out->init = c->init;
	return true;
}

static bool cnum(P *p, const AstExpr *e, double *v)
{
	CVal c;
	if (!ceval(p, e, &c))
		return false;
	if (c.is_rule) {
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "rule '%s' used where a number is needed", c.rule->name);
		return false;
	}
	if (c.alpha || c.init) {
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "the %s initialisation '%s' used where a number is needed",
			c.alpha ? "alpha" : "weight", c.alpha ? c.alpha : c.init);
		return false;
	}
	*v = c.num;
	return true;
}

/* Constant expressions: numbers, constants, rule names, α initialisations, + - * / ( ), min, max, sqrt. */
static bool ceval(P *p, const AstExpr *e, CVal *out)
{
	memset(out, 0, sizeof *out);
	switch (e->kind) {
	case AST_ERROR:
		return false;
	case AST_NUM:
		out->num = e->num;
		return true;
	case AST_NAME: {
		SemaSym s = lookup(p, e->name);
		if (s.kind == SYM_CONST)
			return eval_const(p, s.index, e->span, out);
		if (s.kind == SYM_RULE) {
			out->is_rule = true;
			out->rule = p->rules[s.index];
			return true;
		}
		if (s.kind == SYM_NONE && alpha_mode_name(e->name)) {
			out->alpha = alpha_mode_name(e->name);
			return true;
		}
		if (s.kind == SYM_NONE && init_name(e->name)) {
			out->init = init_name(e->name);
			return true;
		}
		if (s.kind == SYM_NONE)
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL,
				hint_for(p, e->name, 1u << SYM_CONST | 1u << SYM_RULE, NULL, 0), "unknown name '%s'", e->name);
		else
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, "only numbers and constants may appear here",
				"'%s' is not a constant", e->name);
		return false;
	}
	case AST_NEG: {
		double v;
		if (!cnum(p, e->args[0], &v))
			return false;
		out->num = -v;
		return true;
	}
	case AST_BINOP: {
		double a, b;
		bool oka = cnum(p, e->args[0], &a);
		bool okb = cnum(p, e->args[1], &b);
		if (!oka || !okb)
			return false;
		switch (e->op) {
		case '+': out->num = a + b; break;
		case '-': out->num = a - b; break;
		case '*': out->num = a * b; break;
		default:
			if (b == 0) {
				diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "division by zero in a constant expression");
				return false;
			}
			out->num = a / b;
			break;
		}
		if (!isfinite(out->num)) {
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "constant expression overflows");
			return false;
		}
		return true;
	}
	case AST_CALL: {
		bool is_minmax = strcmp(e->name, "min") == 0 || strcmp(e->name, "max") == 0;
		bool is_sqrt = strcmp(e->name, "sqrt") == 0;
		if (!is_minmax && !is_sqrt) {
			diag_emit(p->diag, DIAG_ERROR, e->name_span, NULL,
				"constant expressions use numbers, constants, + - * / ( ), min, max and sqrt",
				"'%s' cannot be used in a constant expression", e->name);
			return false;
		}
		int want = is_sqrt ? 1 : 2;
		if (e->nargs != want) {
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "'%s' takes %d argument%s, got %d", e->name, want,
				want == 1 ? "" : "s", e->nargs);
			return false;
		}
		double a, b = 0;
		if (!cnum(p, e->args[0], &a) || (want == 2 && !cnum(p, e->args[1], &b)))
			return false;
		if (is_sqrt) {
			if (a < 0) {
				diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "sqrt of a negative number (%g)", a);
				return false;
			}
			out->num = sqrt(a);
		} else {
			out->num = (e->name[1] == 'i') == (a < b) ? a : b;
		}
		return true;
	}
	case AST_SLICE:
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "a slice is not a constant");
		return false;
	}
	return false;
}

/* A size: a positive integer below 2^31. */
static int64_t eval_size(P *p, const AstExpr *e, const char *what)
{
	double v;
	if (!cnum(p, e, &v))
		return -1;
	if (v != floor(v)) {
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "%s must be an integer, not %g", what, v);
		return -1;
	}
	if (v <= 0) {
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "%s must be positive, not %g", what, v);
		return -1;
	}
	if (v > (double)SEMA_MAX_DIM) {
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "%s %.0f is too large (the limit is %lld)", what, v,
			(long long)SEMA_MAX_DIM);
		return -1;
	}
	return (int64_t)v;
}

/* ---------------------------------------------------------------- --set */

static bool is_ident(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

static void apply_set(P *p, const char *set)
{
	SrcSpan none = {0};
	const char *eq = strchr(set, '=');
	if (!eq || !is_ident(set, (size_t)(eq - set))) {
		diag_emit(p->diag, DIAG_ERROR, none, NULL, "write --set NAME=VALUE, e.g. --set hidden=128",
			"--set '%s': expected NAME=VALUE", set);
		return;
	}
	char *name = ast_strndup(p->arena, set, (size_t)(eq - set));
	const char *val = eq + 1;
	SemaSym s = lookup(p, name);
	if (s.kind != SYM_CONST) {
		const char *hint = hint_for(p, name, 1u << SYM_CONST, NULL, 0);
		diag_emit(p->diag, DIAG_ERROR, none, NULL, hint ? hint : "--set changes the value of a `const`",
			"--set %s: unknown constant '%s'", set, name);
		return;
	}
	SemaConst *c = &p->consts[s.index];
	SrcSpan at = c->decl->value_span;
	char *end;
	double v = strtod(val, &end);
	if (*val && *end == '\0' && isfinite(v) && !isspace((unsigned char)*val)) {
		c->value = ast_num(p->arena, v, at);
	} else if (is_ident(val, strlen(val))) {
		c->value = ast_name(p->arena, ast_strdup(p->arena, val), at);
	} else {
		diag_emit(p->diag, DIAG_ERROR, none, NULL, "a constant is a number, a rule name or an alpha initialisation",
			"--set %s: '%s' is neither a number nor a name", set, val);
	}
}

/* ---------------------------------------------------------------- expressions and shapes */

typedef struct Ty {
	bool ok;
	IrShape s;
	bool dep; /* depends on a layer's output (so on the plastic tensors) */
} Ty;

typedef struct ExprCtx {
	const char *what;   /* "internal_loss", "rate", "rule 'x'" */
	bool in_loss;       /* batch_mean allowed */
	bool in_rule;
	bool bias_clause;
	IrShape pre, post, w, W; /* rule locals; in a bias clause w/W are b/Wb */
	const char *tensor; /* "enc.w" */
	bool uses_grad;
	bool nodiff_check;  /* report step/sign on a path to the layers (internal loss under a gradient rule) */
	const char *grad_rule;
} ExprCtx;

static Ty ty_err(void)
{
	Ty t;
	memset(&t, 0, sizeof t);
	return t;
}

static Ty ty_of(IrShape s, bool dep)
{
	Ty t;
	t.ok = true;
	t.s = s;
	t.dep = dep;
	return t;
}

static Ty check(P *p, ExprCtx *x, const AstExpr *e);

static Ty check_name(P *p, ExprCtx *x, const AstExpr *e)
{
	const SemaModel *m = p->m;
	const char *n = e->name;
	if (x->in_rule && sema_is_rule_local(n)) {
		bool bias_name = strcmp(n, "b") == 0 || strcmp(n, "Wb") == 0;
		bool weight_name = strcmp(n, "w") == 0 || strcmp(n, "W") == 0 || strcmp(n, "pre") == 0;
		if (x->bias_clause && weight_name) {
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, "a bias clause sees post, b, Wb and the model's outputs",
				"'%s' is not available in a rule's bias clause", n);
			return ty_err();
		}
		if (!x->bias_clause && bias_name) {
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, "write a bias clause: rule NAME { weight = ...; bias = ... }",
				"'%s' is only available in a rule's bias clause", n);
			return ty_err();
		}
		if (strcmp(n, "pre") == 0)
			return ty_of(x->pre, true);
		if (strcmp(n, "post") == 0)
			return ty_of(x->post, true);
		if (strcmp(n, "w") == 0 || strcmp(n, "b") == 0)
			return ty_of(x->w, true);
		return ty_of(x->W, false);
	}
	if (strcmp(n, "internal_loss") == 0) {
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL, "use it as grad(internal_loss, w) in a rule",
			"internal_loss cannot be used as a value");
		return ty_err();
	}
	SemaSym s = lookup(p, n);
	switch (s.kind) {
	case SYM_NONE: {
		const char *hint = hint_for(p, n, 1u << SYM_CONST | 1u << SYM_INPUT | 1u << SYM_OUTPUT | 1u << SYM_LAYER |
			1u << SYM_PARAM, x->in_rule ? rule_locals : NULL, x->in_rule ? 6 : 0);
		if (!hint && !x->in_rule && sema_is_rule_local(n))
			hint = "pre, post, w, W, b and Wb exist only inside rules";
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL, hint, "unknown name '%s'", n);
		return ty_err();
	}
	case SYM_CONST: {
		CVal v;
		if (!eval_const(p, s.index, e->span, &v))
			return ty_err();
		if (v.is_rule || v.alpha) {
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "'%s' names %s, not a value", n,
				v.is_rule ? "a rule" : "an alpha initialisation");
			return ty_err();
		}
		return ty_of(shp(false, 0, 0, 0), false);
	}
	case SYM_RULE:
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL, "select a rule with `rule = NAME` in plasticity { }",
			"rule '%s' used as a value", n);
		return ty_err();
	case SYM_MODEL:
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "model '%s' used as a value", n);
		return ty_err();
	case SYM_INPUT:
		return ty_of(shp(true, 1, m->in_size, 0), false);
	case SYM_OUTPUT:
		return ty_of(shp(true, 1, m->outs[s.index].size, 0), true);
	case SYM_LAYER:
		return ty_of(shp(true, 1, m->layers[s.index].size, 0), true);
	case SYM_PARAM:
		return ty_of(m->fparams[s.index].shape, false);
	}
	return ty_err();
}

static void report_shape2(P *p, SrcSpan at, const char *op, IrShape a, IrShape b)
{
	char sa[64], sb[64];
	sema_shape_str(a, sa, sizeof sa);
	sema_shape_str(b, sb, sizeof sb);
	diag_emit(p->diag, DIAG_ERROR, at, NULL, "elementwise operands broadcast right-aligned: each dim must match or be 1",
		"shapes %s and %s do not broadcast in '%s'", sa, sb, op);
}

static Ty check_grad(P *p, ExprCtx *x, const AstExpr *e)
{
	const AstExpr *L = e->args[0], *t = e->args[1];
	if (!x->in_rule) {
		diag_emit(p->diag, DIAG_ERROR, e->name_span, NULL, "grad(internal_loss, w) is the update of a gradient rule",
			"grad is only available in a rule");
		return ty_err();
	}
	bool ok = true;
	if (L->kind != AST_NAME || strcmp(L->name, "internal_loss") != 0) {
		Ty lt = check(p, x, L);
		if (!lt.ok)
			return ty_err();
		char s[64];
		sema_shape_str(lt.s, s, sizeof s);
		if (lt.s.rank != 0)
			diag_emit(p->diag, DIAG_ERROR, L->span, NULL, "grad differentiates the scalar internal loss: grad(internal_loss, w)",
				"grad of a value that is not a scalar loss (shape %s)", s);
		else
			diag_emit(p->diag, DIAG_ERROR, L->span, NULL, "grad differentiates the scalar internal loss: grad(internal_loss, w)",
				"grad of something that is not the internal loss");
		ok = false;
	} else if (!p->m->internal_loss) {
		diag_emit(p->diag, DIAG_ERROR, L->span, NULL, "add `internal_loss = ...` to the model",
			"%s uses grad(internal_loss, .) but the model has no internal_loss", x->what);
		ok = false;
	}
	const char *want = x->bias_clause ? "b" : "w";
	if (t->kind != AST_NAME || strcmp(t->name, want) != 0) {
		diag_emit(p->diag, DIAG_ERROR, t->span, NULL, NULL,
			"grad is taken with respect to the rule's plastic tensor ('%s' here)", want);
		ok = false;
	}
	if (!ok)
		return ty_err();
	x->uses_grad = true;
	return ty_of(x->w, true);
}

static Ty check_call(P *p, ExprCtx *x, const AstExpr *e)
{
	int bi = builtin_index(e->name);
	if (bi < 0) {
		const char *hint = builtin_hint(p, e->name);
		diag_emit(p->diag, DIAG_ERROR, e->name_span, NULL, hint, "unknown function '%s'", e->name);
		return ty_err();
	}
	if (e->nargs < builtins[bi].min || e->nargs > builtins[bi].max) {
		if (builtins[bi].min == builtins[bi].max)
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "'%s' takes %d argument%s, got %d", e->name,
				builtins[bi].min, builtins[bi].min == 1 ? "" : "s", e->nargs);
		else
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "'%s' takes at least %d argument, got %d", e->name,
				builtins[bi].min, e->nargs);
		return ty_err();
	}
	SemaFn fn = builtins[bi].fn;
	if (fn == FN_GRAD)
		return check_grad(p, x, e);
	if (fn == FN_BATCH_MEAN && !x->in_loss) {
		diag_emit(p->diag, DIAG_ERROR, e->name_span, NULL, "batch_mean mixes the trials of a batch; only the internal loss may",
			"batch_mean is only allowed in internal_loss");
		return ty_err();
	}
	Ty a[2];
	bool ok = true, dep = false;
	Ty *all = NULL;
	if (fn == FN_CONCAT) {
		all = ast_alloc(p->arena, (size_t)e->nargs * sizeof *all);
		for (int i = 0; i < e->nargs; i++) {
			all[i] = check(p, x, e->args[i]);
			ok = ok && all[i].ok;
			dep = dep || all[i].dep;
		}
	} else {
		for (int i = 0; i < e->nargs; i++) {
			a[i] = check(p, x, e->args[i]);
			ok = ok && a[i].ok;
			dep = dep || a[i].dep;
		}
	}
	if (!ok)
		return ty_err();
	switch (fn) {
	case FN_STEP:
	case FN_SIGN:
		if (x->nodiff_check && a[0].dep) {
			diag_emit(p->diag, DIAG_ERROR, e->name_span, NULL,
				"use a differentiable function (e.g. sigmoid) here, or a rule without grad",
				"'%s' has no derivative, but rule '%s' differentiates internal_loss through it", e->name,
				x->grad_rule ? x->grad_rule : "?");
			return ty_err();
		}
		return a[0];
	case FN_RELU: case FN_TANH: case FN_SIGMOID: case FN_EXP: case FN_LOG: case FN_SQRT: case FN_SQUARE:
	case FN_ABS:
		return a[0];
	case FN_MIN:
	case FN_MAX: {
		IrShape r;
		if (!shp_broadcast(a[0].s, a[1].s, &r)) {
			report_shape2(p, e->span, e->name, a[0].s, a[1].s);
			return ty_err();
		}
		return ty_of(r, dep);
	}
	case FN_SUM:
	case FN_MEAN:
	case FN_NORM:
		return ty_of(shp(a[0].s.batch, 0, 0, 0), dep);
	case FN_BATCH_MEAN: {
		IrShape r = a[0].s;
		r.batch = false;
		return ty_of(r, dep);
	}
	case FN_OUTER:
		if (a[0].s.rank != 1 || a[1].s.rank != 1) {
			char sa[64], sb[64];
			sema_shape_str(a[0].s, sa, sizeof sa);
			sema_shape_str(a[1].s, sb, sizeof sb);
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "outer takes two vectors, got %s and %s", sa, sb);
			return ty_err();
		}
		return ty_of(shp(a[0].s.batch || a[1].s.batch, 2, a[0].s.d[0], a[1].s.d[0]), dep);
	case FN_CONCAT: {
		IrShape r = all[0].s;
		for (int i = 0; i < e->nargs; i++) {
			IrShape s = all[i].s;
			char ss[64], sr[64];
			sema_shape_str(s, ss, sizeof ss);
			if (s.rank == 0) {
				diag_emit(p->diag, DIAG_ERROR, e->args[i]->span, NULL, "concat joins vectors on the last axis",
					"argument %d of concat is a scalar", i + 1);
				return ty_err();
			}
			if (i == 0)
				continue;
			bool lead_ok = s.rank == r.rank;
			for (int k = 0; lead_ok && k < s.rank - 1; k++)
				lead_ok = s.d[k] == r.d[k];
			if (!lead_ok) {
				sema_shape_str(all[0].s, sr, sizeof sr);
				diag_emit(p->diag, DIAG_ERROR, e->args[i]->span, NULL, "all but the last dims must agree",
					"concat of %s and %s", sr, ss);
				return ty_err();
			}
			r.d[r.rank - 1] += s.d[s.rank - 1];
			r.batch = r.batch || s.batch;
		}
		return ty_of(r, dep);
	}
	default:
		break;
	}
	return ty_err();
}

static bool slice_bound(P *p, const AstExpr *e, int64_t *v)
{
	double d;
	if (!cnum(p, e, &d))
		return false;
	if (d != floor(d) || d < 0 || d > (double)SEMA_MAX_DIM) {
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "slice bounds are non-negative integers, not %g", d);
		return false;
	}
	*v = (int64_t)d;
	return true;
}

static Ty check(P *p, ExprCtx *x, const AstExpr *e)
{
	switch (e->kind) {
	case AST_ERROR:
		return ty_err();
	case AST_NUM:
		return ty_of(shp(false, 0, 0, 0), false);
	case AST_NAME:
		return check_name(p, x, e);
	case AST_CALL:
		return check_call(p, x, e);
	case AST_NEG:
		return check(p, x, e->args[0]);
	case AST_BINOP: {
		Ty a = check(p, x, e->args[0]);
		Ty b = check(p, x, e->args[1]);
		if (!a.ok || !b.ok)
			return ty_err();
		IrShape r;
		char op[2] = {e->op, 0};
		if (!shp_broadcast(a.s, b.s, &r)) {
			report_shape2(p, e->span, op, a.s, b.s);
			return ty_err();
		}
		return ty_of(r, a.dep || b.dep);
	}
	case AST_SLICE: {
		Ty a = check(p, x, e->args[0]);
		if (!a.ok)
			return ty_err();
		if (a.s.rank == 0) {
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "cannot slice a scalar");
			return ty_err();
		}
		int64_t last = a.s.d[a.s.rank - 1], lo = 0, hi = last;
		if ((e->lo && !slice_bound(p, e->lo, &lo)) || (e->hi && !slice_bound(p, e->hi, &hi)))
			return ty_err();
		if (lo >= hi || hi > last) {
			char s[64];
			sema_shape_str(a.s, s, sizeof s);
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "slice [%lld:%lld] is out of range for shape %s",
				(long long)lo, (long long)hi, s);
			return ty_err();
		}
		a.s.d[a.s.rank - 1] = hi - lo;
		return a;
	}
	}
	return ty_err();
}

/* Function names and arities only: rules no model instantiates (libraries). */
static void check_calls(P *p, const AstExpr *e)
{
	if (!e)
		return;
	if (e->kind == AST_CALL) {
		int bi = builtin_index(e->name);
		if (bi < 0)
			diag_emit(p->diag, DIAG_ERROR, e->name_span, NULL, builtin_hint(p, e->name), "unknown function '%s'",
				e->name);
		else if (e->nargs < builtins[bi].min || e->nargs > builtins[bi].max)
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "'%s' takes %d argument%s, got %d", e->name,
				builtins[bi].min, builtins[bi].min == 1 ? "" : "s", e->nargs);
	}
	for (int i = 0; i < e->nargs; i++)
		check_calls(p, e->args[i]);
	check_calls(p, e->lo);
	check_calls(p, e->hi);
}

/* ---------------------------------------------------------------- initialisers */

typedef enum InitKind { IK_FAN_OUT, IK_FAN_IN, IK_NORMAL, IK_UNIFORM, IK_IDENTITY, IK_CONST, IK_DEFAULT } InitKind;

typedef struct InitSpec {
	InitKind kind;
	double a, b;
	SrcSpan at;
} InitSpec;

static bool parse_init(P *p, const AstExpr *e, InitSpec *out)
{
	memset(out, 0, sizeof *out);
	out->at = e->span;
	const char *hint = "init is fan_out(S), fan_in(S), normal(MEAN, STD), uniform(A, B), identity, identity(S), default or a number";
	if (e->kind == AST_NAME && strcmp(e->name, "identity") == 0) {
		out->kind = IK_IDENTITY;
		out->a = 1;
		return true;
	}
	if (e->kind == AST_NAME && strcmp(e->name, "default") == 0) {
		out->kind = IK_DEFAULT; /* the layer's own default: only hh_init accepts it */
		return true;
	}
	if (e->kind == AST_NAME && lookup(p, e->name).kind == SYM_CONST) {
		CVal v;
		if (!ceval(p, e, &v))
			return false;
		if (v.init) { /* a constant naming an initialisation: `const rec_init = default`, --set rec_init=identity */
			out->kind = strcmp(v.init, "identity") == 0 ? IK_IDENTITY : IK_DEFAULT;
			out->a = 1;
			return true;
		}
	}
	if (e->kind == AST_CALL) {
		struct {
			const char *name;
			InitKind k;
			int n;
		} fs[] = {{"fan_out", IK_FAN_OUT, 1}, {"fan_in", IK_FAN_IN, 1}, {"normal", IK_NORMAL, 2},
			{"uniform", IK_UNIFORM, 2}, {"identity", IK_IDENTITY, 1}};
		for (size_t i = 0; i < sizeof fs / sizeof *fs; i++) {
			if (strcmp(e->name, fs[i].name) != 0)
				continue;
			if (e->nargs != fs[i].n) {
				diag_emit(p->diag, DIAG_ERROR, e->span, NULL, hint, "'%s' takes %d argument%s, got %d", e->name,
					fs[i].n, fs[i].n == 1 ? "" : "s", e->nargs);
				return false;
			}
			out->kind = fs[i].k;
			if (!cnum(p, e->args[0], &out->a) || (fs[i].n == 2 && !cnum(p, e->args[1], &out->b)))
				return false;
			if (out->kind == IK_NORMAL && out->b < 0) {
				diag_emit(p->diag, DIAG_ERROR, e->args[1]->span, NULL, NULL, "a standard deviation cannot be negative");
				return false;
			}
			if (out->kind == IK_UNIFORM && out->b < out->a) {
				diag_emit(p->diag, DIAG_ERROR, e->span, NULL, NULL, "uniform(A, B) needs A <= B");
				return false;
			}
			return true;
		}
		diag_emit(p->diag, DIAG_ERROR, e->name_span, NULL, hint, "unknown initialisation '%s'", e->name);
		return false;
	}
	if (e->kind == AST_NAME) {
		SemaSym s = lookup(p, e->name);
		if (s.kind != SYM_CONST) {
			diag_emit(p->diag, DIAG_ERROR, e->span, NULL, hint, "unknown initialisation '%s'", e->name);
			return false;
		}
	}
	out->kind = IK_CONST;
	return cnum(p, e, &out->a);
}

/* Fills t's init from spec for a tensor with fan-in `in` and fan-out `out`. */
static bool resolve_init(P *p, const InitSpec *spec, ProgTensor *t, int64_t in, int64_t out, bool square)
{
	switch (spec->kind) {
	case IK_FAN_OUT:
		t->init = PL_INIT_UNIFORM;
		t->init_a = spec->a / sqrt((double)out);
		break;
	case IK_FAN_IN:
		t->init = PL_INIT_UNIFORM;
		t->init_a = spec->a / sqrt((double)in);
		break;
	case IK_NORMAL:
		t->init = PL_INIT_NORMAL;
		t->init_a = spec->a;
		t->init_b = spec->b;
		break;
	case IK_UNIFORM:
		t->init = PL_INIT_UNIFORM_AB;
		t->init_a = spec->a;
		t->init_b = spec->b;
		break;
	case IK_IDENTITY:
		if (!square) {
			char s[64];
			sema_shape_str(t->shape, s, sizeof s);
			diag_emit(p->diag, DIAG_ERROR, spec->at, NULL, NULL, "identity init needs a square matrix; '%s' is %s",
				t->name, s);
			return false;
		}
		t->init = PL_INIT_IDENTITY;
		t->init_a = spec->a;
		break;
	case IK_CONST:
		t->init = spec->a == 0 ? PL_INIT_ZERO : PL_INIT_CONST;
		t->init_a = spec->a;
		break;
	case IK_DEFAULT:
		diag_emit(p->diag, DIAG_ERROR, spec->at, NULL, "give an initialisation, e.g. fan_out(1)",
			"'default' names a layer's own initialisation; '%s' has none", t->name);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- model structure */

typedef struct Plast {
	const AstSetting *rule, *rate, *decay, *alpha, *max_norm;
} Plast;

static const char *const layer_keys[] = {"init", "bias_init", "hh_init", "bias", "fixed", "rule", "rate", "decay",
	"alpha"};
static const char *const plast_keys[] = {"rule", "rate", "decay", "max_norm", "alpha"};

static const AstSetting **find_key(Plast *pl, const char *key)
{
	if (strcmp(key, "rule") == 0)
		return &pl->rule;
	if (strcmp(key, "rate") == 0)
		return &pl->rate;
	if (strcmp(key, "decay") == 0)
		return &pl->decay;
	if (strcmp(key, "alpha") == 0)
		return &pl->alpha;
	if (strcmp(key, "max_norm") == 0)
		return &pl->max_norm;
	return NULL;
}

static void unknown_key(P *p, const AstSetting *s, const char *where, const char *const *keys, int n)
{
	const char *best = sema_nearest(s->key, keys, n);
	char hint[256];
	if (best) {
		snprintf(hint, sizeof hint, "did you mean '%s'?", best);
	} else {
		size_t len = (size_t)snprintf(hint, sizeof hint, "the keys are");
		for (int i = 0; i < n; i++)
			len += (size_t)snprintf(hint + len, sizeof hint - len, " %s", keys[i]);
	}
	diag_emit(p->diag, DIAG_ERROR, s->key_span, NULL, hint, "unknown key '%s' in %s", s->key, where);
}

static const char *setting_name(const AstSetting *s)
{
	return s && s->value && s->value->kind == AST_NAME ? s->value->name : NULL;
}

static void dup_key(P *p, const AstSetting *s, const AstSetting *first)
{
	diag_emit(p->diag, DIAG_ERROR, s->key_span, NULL, NULL, "'%s' is set twice", s->key);
	diag_emit(p->diag, DIAG_NOTE, first->key_span, NULL, NULL, "first set here");
}

/* Whether layer `from` reaches layer `to` through its sources (iterative DFS over src edges). */
static bool layer_reaches(P *p, int from, int to)
{
	SemaModel *m = p->m;
	int *stack = malloc((size_t)m->nlayers * sizeof *stack);
	char *seen = calloc((size_t)m->nlayers, 1);
	bool found = false;
	if (!stack || !seen) {
		free(stack);
		free(seen);
		return false;
	}
	int sp = 0;
	stack[sp++] = from;
	seen[from] = 1;
	while (sp > 0 && !found) {
		int l = stack[--sp];
		for (int i = 0; i < m->layers[l].nsrcs; i++) {
			const SemaSrc *s = &m->layers[l].srcs[i];
			int dep = s->kind == SRC_LAYER ? s->index : s->kind == SRC_OUTPUT ? m->outs[s->index].layer : -1;
			if (dep < 0)
				continue;
			if (dep == to) {
				found = true;
				break;
			}
			if (!seen[dep]) {
				seen[dep] = 1;
				stack[sp++] = dep;
			}
		}
	}
	free(stack);
	free(seen);
	return found;
}

static ProgTensor *add_tensor(P *p, ProgTensor *tab, int *n, const char *name, IrShape s, SrcSpan at)
{
	ProgTensor *t = &tab[(*n)++];
	memset(t, 0, sizeof *t);
	t->name = ast_strdup(p->arena, name);
	t->shape = s;
	t->trainable = true;
	t->loc = at;
	return t;
}

static void check_model(P *p, const AstDecl *md, int nset, char **sets);

/* ---------------------------------------------------------------- entry */

static void collect(P *p, AstFile **files, int nfiles)
{
	size_t names = 16;
	for (int f = 0; f < nfiles; f++)
		for (int i = 0; i < files[f]->ndecls; i++) {
			names++;
			if (files[f]->decls[i]->kind == DECL_MODEL)
				names += (size_t)files[f]->decls[i]->nitems;
		}
	p->cap = 16;
	while (p->cap < 2 * names)
		p->cap *= 2;
	p->tab = ast_alloc(p->arena, p->cap * sizeof *p->tab);
	p->consts = ast_alloc(p->arena, names * sizeof *p->consts);
	p->rules = ast_alloc(p->arena, names * sizeof *p->rules);
	for (int f = 0; f < nfiles; f++) {
		for (int i = 0; i < files[f]->ndecls; i++) {
			const AstDecl *d = files[f]->decls[i];
			switch (d->kind) {
			case DECL_IMPORT:
				break;
			case DECL_CONST:
				if (define(p, d->name, d->name_span, SYM_CONST, p->nconsts)) {
					SemaConst *c = &p->consts[p->nconsts++];
					c->decl = d;
					c->name = d->name;
					c->value = d->value;
				}
				break;
			case DECL_RULE:
				if (sema_fn(d->name) != FN_NONE || sema_is_rule_local(d->name))
					diag_emit(p->diag, DIAG_ERROR, d->name_span, NULL, NULL,
						"'%s' is a built-in name and cannot name a rule", d->name);
				else if (define(p, d->name, d->name_span, SYM_RULE, p->nrules))
					p->rules[p->nrules++] = d;
				break;
			case DECL_MODEL:
				if (p->model) {
					diag_emit(p->diag, DIAG_ERROR, d->name_span, NULL,
						"keep one model per program; move shared rules and constants to a library file",
						"a second model '%s'", d->name);
					diag_emit(p->diag, DIAG_NOTE, p->model->name_span, NULL, NULL, "the first model is '%s'",
						p->model->name);
				} else {
					p->model = d;
					define(p, d->name, d->name_span, SYM_MODEL, 0);
				}
				break;
			}
		}
	}
}

SemaModel *sema_check(AstArena *arena, DiagCtx *diag, AstFile **files, int nfiles, int nset, char **sets)
{
	P *p = ast_alloc(arena, sizeof *p);
	p->arena = arena;
	p->diag = diag;
	int errors0 = diag_error_count(diag);
	collect(p, files, nfiles);
	/* names of the model are defined inside check_model; --set needs only constants */
	if (!p->model) {
		for (int i = 0; i < nset; i++)
			apply_set(p, sets[i]);
	}
	if (p->model) {
		check_model(p, p->model, nset, sets);
	} else {
		for (int i = 0; i < p->nconsts; i++) {
			CVal v;
			eval_const(p, i, p->consts[i].decl->name_span, &v);
		}
		for (int i = 0; i < p->nrules; i++) {
			check_calls(p, p->rules[i]->value);
			check_calls(p, p->rules[i]->bias);
		}
	}
	if (diag_error_count(diag) > errors0 || !p->model)
		return NULL;
	return p->m;
}

SemaSym sema_lookup(const SemaModel *m, const char *name)
{
	return lookup(m->prog, name);
}

bool sema_const_value(const SemaModel *m, const char *name, double *v)
{
	SemaSym s = lookup(m->prog, name);
	if (s.kind != SYM_CONST || !m->prog->consts[s.index].ok || m->prog->consts[s.index].is_rule ||
		m->prog->consts[s.index].alpha)
		return false;
	*v = m->prog->consts[s.index].num;
	return true;
}

const AstDecl *sema_rule(const SemaModel *m, const char *name)
{
	SemaSym s = lookup(m->prog, name);
	if (s.kind == SYM_RULE)
		return m->prog->rules[s.index];
	if (s.kind == SYM_CONST && m->prog->consts[s.index].ok && m->prog->consts[s.index].is_rule)
		return m->prog->consts[s.index].rule;
	return NULL;
}

/* ---------------------------------------------------------------- the model */

static SemaAct parse_act(P *p, const AstItem *it)
{
	const char *a = it->act;
	if (!a)
		return it->layer == LAYER_LINEAR || it->layer == LAYER_CONV4 ? ACT_IDENTITY : ACT_RELU;
	if (it->layer == LAYER_LSTM) {
		diag_emit(p->diag, DIAG_ERROR, it->act_span, NULL, "an lstm's nonlinearities are fixed (sigmoid gates, tanh)",
			"lstm takes no activation");
		return ACT_IDENTITY;
	}
	if (it->layer == LAYER_CONV4) {
		diag_emit(p->diag, DIAG_ERROR, it->act_span, NULL, "every block ends with relu and a 2x2 max-pool",
			"conv4 takes no activation");
		return ACT_IDENTITY;
	}
	static const char *const acts[] = {"identity", "relu", "tanh", "sigmoid"};
	for (int i = 0; i < 4; i++)
		if (strcmp(a, acts[i]) == 0)
			return (SemaAct)i;
	const char *best = sema_nearest(a, acts, 4);
	char hint[96];
	if (best)
		snprintf(hint, sizeof hint, "did you mean '%s'?", best);
	else
		snprintf(hint, sizeof hint, "the activations are relu, tanh, sigmoid and identity");
	diag_emit(p->diag, DIAG_ERROR, it->act_span, NULL, hint, "unknown activation '%s'", a);
	return ACT_IDENTITY;
}

static bool value_ok_for_rate(P *p, ExprCtx *x, const AstExpr *e, const char *what)
{
	Ty t = check(p, x, e);
	if (!t.ok)
		return false;
	if (shp_numel(t.s) != 1) {
		char s[64];
		sema_shape_str(t.s, s, sizeof s);
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL, "use a modulator or a constant, e.g. 0.2 * sigmoid(m)",
			"%s must be a per-trial scalar, but it has shape %s", what, s);
		return false;
	}
	return true;
}

typedef struct RuleMark {
	const AstExpr *e;
	bool bad;
} RuleMark;

/* Checks one rule clause instantiated for tensor t of layer L. */
static void check_rule_clause(P *p, const SemaLayer *L, const SemaTensor *t, const AstDecl *rule, bool bias,
	RuleMark *marks, int *nmarks)
{
	const AstExpr *e = bias ? rule->bias : rule->value;
	for (int i = 0; i < *nmarks; i++)
		if (marks[i].e == e && marks[i].bad)
			return;
	SemaModel *m = p->m;
	ExprCtx x;
	memset(&x, 0, sizeof x);
	char what[160];
	snprintf(what, sizeof what, "rule '%s'", rule->name);
	x.what = what;
	x.in_rule = true;
	x.bias_clause = bias;
	x.post = shp(true, 1, L->post_size, 0);
	if (bias) {
		x.w = shp(true, 1, t->out, 0);
		x.W = shp(false, 1, t->out, 0);
	} else {
		int64_t pre = t->pre_is_h ? L->size : L->in;
		x.pre = shp(true, 1, pre, 0);
		x.w = shp(true, 2, t->in, t->out);
		x.W = shp(false, 2, t->in, t->out);
	}
	char tname[256];
	snprintf(tname, sizeof tname, "%s.%s", L->name, t->suffix);
	x.tensor = tname;
	int before = diag_error_count(p->diag);
	Ty r = check(p, &x, e);
	/* exact shape, or a scalar broadcast over the tensor (e.g. `bias = 0` keeps a plastic bias at 0) */
	if (r.ok && r.s.rank != 0 && !shp_eq_dims(r.s, x.w)) {
		char sr[64], sw[64];
		sema_shape_str(r.s, sr, sizeof sr);
		sema_shape_str(x.w, sw, sizeof sw);
		diag_emit(p->diag, DIAG_ERROR, e->span, NULL,
			bias ? "a bias rule gives one value per output unit (or one scalar for all)" :
				"a weight rule gives one value per weight, [in,out] (or one scalar for all)",
			"rule '%s' gives shape %s for '%s', which is %s", rule->name, sr, tname, sw);
		diag_emit(p->diag, DIAG_NOTE, L->item->name_span, NULL, NULL, "the rule is applied to layer '%s' here",
			L->name);
	}
	if (x.uses_grad)
		m->needs_grad = true;
	marks[*nmarks].e = e;
	marks[*nmarks].bad = diag_error_count(p->diag) > before;
	(*nmarks)++;
}

static int const_cmp(const void *a, const void *b)
{
	return strcmp((*(const SemaConst *const *)a)->name, (*(const SemaConst *const *)b)->name);
}

/* The image geometry of a conv4 layer from its source size and attributes `channels` (of the image,
 * default 1) and `blocks` (default 4): the source must be channels x side x side values (CHW). */
static void conv4_shape(P *p, SemaLayer *L)
{
	const AstItem *it = L->item;
	int64_t C = 1, blocks = 4;
	bool ok = true;
	if (L->plastic) {
		diag_emit(p->diag, DIAG_ERROR, it->name_span, NULL, "the image encoder is meta-trained, not plastic",
			"a conv4 layer cannot be plastic");
		ok = false;
	}
	if (it->nsrcs != 1) {
		diag_emit(p->diag, DIAG_ERROR, it->span, NULL, "give it one image, e.g. conv4 enc (x[0:784] -> 64)",
			"a conv4 layer reads exactly one source");
		ok = false;
	}
	for (int k = 0; k < it->nattrs; k++) {
		const AstSetting *s = it->attrs[k];
		if (strcmp(s->key, "channels") == 0)
			C = eval_size(p, s->value, "the image's channel count");
		else if (strcmp(s->key, "blocks") == 0)
			blocks = eval_size(p, s->value, "the number of blocks");
		else {
			static const char *const keys[] = {"channels", "blocks"};
			unknown_key(p, s, "conv4 attributes", keys, 2);
			ok = false;
		}
	}
	L->size = -1;
	if (!ok || C <= 0 || blocks <= 0 || L->in <= 0 || L->channels <= 0)
		return;
	int64_t side = (int64_t)llround(sqrt((double)(L->in / C)));
	if (L->in % C != 0 || side * side * C != L->in) {
		diag_emit(p->diag, DIAG_ERROR, it->srcs[0]->span, NULL,
			"the source must hold channels x side x side values in CHW order (set `channels` in { })",
			"conv4 source of %lld values is not a square image with %lld channel%s", (long long)L->in, (long long)C,
			C == 1 ? "" : "s");
		return;
	}
	int64_t out = blocks > 30 ? 0 : ir_nn_conv4_side(side, (int)blocks);
	if (out <= 0) {
		diag_emit(p->diag, DIAG_ERROR, it->srcs[0]->span, NULL, "use fewer blocks or a larger image",
			"a %lldx%lld image vanishes after %lld conv4 blocks", (long long)side, (long long)side,
			(long long)blocks);
		return;
	}
	L->img_c = C;
	L->img_side = side;
	L->blocks = (int)blocks;
	L->out_side = out;
	L->size = L->post_size = L->channels * out * out;
}

static void check_model(P *p, const AstDecl *md, int nset, char **sets)
{
	SemaModel *m = ast_alloc(p->arena, sizeof *m);
	p->m = m;
	m->prog = p;
	m->decl = md;
	m->name = md->name;
	m->pred = -1;
	m->meta_loss = PL_LOSS_MSE;
	int ni = md->nitems;
	m->outs = ast_alloc(p->arena, (size_t)(ni + 1) * sizeof *m->outs);
	m->layers = ast_alloc(p->arena, (size_t)(ni + 1) * sizeof *m->layers);
	m->fparams = ast_alloc(p->arena, (size_t)(ni + 1) * sizeof *m->fparams);
	const AstItem *input = NULL, *loss_item = NULL, *meta_item = NULL, *plast_item = NULL;

	/* (1) names */
	for (int i = 0; i < ni; i++) {
		const AstItem *it = md->items[i];
		switch (it->kind) {
		case ITEM_INPUT:
			if (input) {
				diag_emit(p->diag, DIAG_ERROR, it->name_span, NULL, "concatenate the task's inputs into one",
					"a model has exactly one input");
				diag_emit(p->diag, DIAG_NOTE, input->name_span, NULL, NULL, "the input is '%s'", input->name);
			} else {
				input = it;
				define(p, it->name, it->name_span, SYM_INPUT, 0);
			}
			break;
		case ITEM_OUTPUT:
		case ITEM_EXTRA:
		case ITEM_MODULATOR:
			if (it->kind == ITEM_OUTPUT && m->pred >= 0) {
				diag_emit(p->diag, DIAG_ERROR, it->name_span, NULL, "use `extra` for outputs that only shape the internal loss",
					"a model has exactly one output");
				diag_emit(p->diag, DIAG_NOTE, m->outs[m->pred].item->name_span, NULL, NULL, "the output is '%s'",
					m->outs[m->pred].name);
				break;
			}
			if (define(p, it->name, it->name_span, SYM_OUTPUT, m->nouts)) {
				SemaOutput *o = &m->outs[m->nouts];
				o->item = it;
				o->name = it->name;
				o->kind = it->kind;
				o->layer = -1;
				if (it->kind == ITEM_OUTPUT)
					m->pred = m->nouts;
				m->nouts++;
			}
			break;
		case ITEM_LAYER:
			if (define(p, it->name, it->name_span, SYM_LAYER, m->nlayers)) {
				SemaLayer *L = &m->layers[m->nlayers++];
				L->item = it;
				L->name = it->name;
				L->kind = it->layer;
				L->plastic = it->plastic;
				L->h_state = L->c_state = -1;
			}
			break;
		case ITEM_PARAM:
			if (define(p, it->name, it->name_span, SYM_PARAM, m->nfparams))
				m->fparams[m->nfparams++].item = it;
			break;
		case ITEM_INTERNAL_LOSS:
		case ITEM_META_LOSS:
		case ITEM_PLASTICITY: {
			const AstItem **slot = it->kind == ITEM_INTERNAL_LOSS ? &loss_item :
				it->kind == ITEM_META_LOSS ? &meta_item : &plast_item;
			if (*slot) {
				diag_emit(p->diag, DIAG_ERROR, it->span, NULL, NULL, "%s is given twice", ast_item_kind_name(it->kind));
				diag_emit(p->diag, DIAG_NOTE, (*slot)->span, NULL, NULL, "first given here");
			} else {
				*slot = it;
			}
			break;
		}
		}
	}
	for (int i = 0; i < nset; i++)
		apply_set(p, sets[i]);
	for (int i = 0; i < p->nconsts; i++) {
		CVal v;
		eval_const(p, i, p->consts[i].decl->name_span, &v);
	}
	if (!input)
		diag_emit(p->diag, DIAG_ERROR, md->name_span, NULL, "declare it: input x[16]", "model '%s' has no input",
			md->name);
	if (m->pred < 0)
		diag_emit(p->diag, DIAG_ERROR, md->name_span, NULL, "declare it: output y[1]", "model '%s' has no output",
			md->name);
	if (input) {
		m->input_name = input->name;
		m->in_size = eval_size(p, input->dims[0], "an input size");
	}
	int64_t port = 0;
	for (int i = 0; i < m->nouts; i++) {
		SemaOutput *o = &m->outs[i];
		o->size = o->kind == ITEM_MODULATOR ? 1 : eval_size(p, o->item->dims[0], "an output size");
		o->port_offset = port;
		if (o->size > 0)
			port += o->size;
	}
	m->out_size = port;
	if (m->pred >= 0)
		m->pred_size = m->outs[m->pred].size;

	/* (2) meta_loss */
	if (meta_item) {
		const char *n = meta_item->value->kind == AST_NAME ? meta_item->value->name : NULL;
		if (n && strcmp(n, "mse") == 0)
			m->meta_loss = PL_LOSS_MSE;
		else if (n && strcmp(n, "cross_entropy") == 0)
			m->meta_loss = PL_LOSS_CE;
		else if (n && strcmp(n, "sse") == 0)
			m->meta_loss = PL_LOSS_SSE;
		else
			diag_emit(p->diag, DIAG_ERROR, meta_item->value->span, NULL, "meta_loss is mse, cross_entropy or sse",
				"unknown meta_loss");
	}

	/* (3) plasticity block */
	Plast model_pl;
	memset(&model_pl, 0, sizeof model_pl);
	if (plast_item) {
		for (int i = 0; i < plast_item->nattrs; i++) {
			const AstSetting *s = plast_item->attrs[i];
			const AstSetting **slot = find_key(&model_pl, s->key);
			if (!slot) {
				unknown_key(p, s, "plasticity { }", plast_keys, 5);
				continue;
			}
			if (*slot)
				dup_key(p, s, *slot);
			else
				*slot = s;
		}
	}
	if (model_pl.max_norm) {
		const char *n = setting_name(model_pl.max_norm);
		if (!(n && strcmp(n, "none") == 0)) {
			double v;
			if (cnum(p, model_pl.max_norm->value, &v)) {
				if (v <= 0)
					diag_emit(p->diag, DIAG_ERROR, model_pl.max_norm->value->span, NULL, "use `none` to disable it",
						"max_norm must be positive, not %g", v);
				m->has_max_norm = true;
				m->max_norm = v;
			}
		}
	}

	/* (4) layers: sizes and outputs */
	for (int li = 0; li < m->nlayers; li++) {
		SemaLayer *L = &m->layers[li];
		const AstItem *it = L->item;
		L->act = parse_act(p, it);
		bool names_outputs = it->nouts > 0;
		for (int k = 0; k < it->nouts; k++) {
			const AstExpr *o = it->outs[k];
			names_outputs = names_outputs && o->kind == AST_NAME && lookup(p, o->name).kind == SYM_OUTPUT;
		}
		if (names_outputs && it->layer != LAYER_LINEAR) {
			diag_emit(p->diag, DIAG_ERROR, it->outs[0]->span, NULL, "give the size, and add a linear layer for the outputs",
				"only linear layers produce outputs; an %s's '->' gives its size", ast_layer_kind_name(it->layer));
			L->size = -1;
		} else if (names_outputs) {
			L->outs = ast_alloc(p->arena, (size_t)it->nouts * sizeof *L->outs);
			int64_t off = 0;
			for (int k = 0; k < it->nouts; k++) {
				SemaSym s = lookup(p, it->outs[k]->name);
				SemaOutput *o = &m->outs[s.index];
				if (o->layer >= 0) {
					diag_emit(p->diag, DIAG_ERROR, it->outs[k]->span, NULL, NULL,
						"output '%s' is produced twice", o->name);
					diag_emit(p->diag, DIAG_NOTE, m->layers[o->layer].item->name_span, NULL, NULL,
						"it is already produced by layer '%s'", m->layers[o->layer].name);
					continue;
				}
				o->layer = li;
				o->offset = off;
				off += o->size > 0 ? o->size : 0;
				L->outs[L->nouts++] = s.index;
			}
			L->size = off > 0 ? off : -1;
		} else if (it->nouts != 1) {
			for (int k = 0; k < it->nouts; k++) {
				const AstExpr *o = it->outs[k];
				if (!(o->kind == AST_NAME && lookup(p, o->name).kind == SYM_OUTPUT)) {
					diag_emit(p->diag, DIAG_ERROR, o->span, NULL,
						"a linear layer's '->' lists outputs (declared with output, extra or modulator), or gives one size",
						"'%s' is not an output", o->kind == AST_NAME ? o->name : "this");
					break;
				}
			}
			L->size = -1;
		} else if (it->layer == LAYER_CONV4) {
			/* '->' gives the channels; the size (channels x side x side) follows from the source */
			L->channels = eval_size(p, it->outs[0], "a channel count");
			L->size = -1;
		} else {
			L->size = eval_size(p, it->outs[0], "a layer size");
		}
		L->post_size = L->kind == LAYER_LSTM && L->size > 0 ? 4 * L->size : L->size;
	}
	for (int i = 0; i < m->nouts; i++)
		if (m->outs[i].layer < 0)
			diag_emit(p->diag, DIAG_ERROR, m->outs[i].item->name_span, NULL,
				"list it after '->' in a linear layer, e.g. linear head (cell -> y)",
				"%s '%s' is not produced by any layer", ast_item_kind_name(m->outs[i].kind), m->outs[i].name);

	/* (5) layer sources */
	for (int li = 0; li < m->nlayers; li++) {
		SemaLayer *L = &m->layers[li];
		const AstItem *it = L->item;
		L->srcs = ast_alloc(p->arena, (size_t)(it->nsrcs + 1) * sizeof *L->srcs);
		bool ok = true;
		for (int k = 0; k < it->nsrcs; k++) {
			const AstIdent *id = it->srcs[k];
			SemaSym s = lookup(p, id->name);
			SemaSrc *src = &L->srcs[L->nsrcs];
			src->span = id->span;
			if (s.kind == SYM_INPUT) {
				src->kind = SRC_INPUT;
				src->size = m->in_size;
			} else if (s.kind == SYM_LAYER) {
				src->kind = SRC_LAYER;
				src->index = s.index;
				src->size = m->layers[s.index].size;
			} else if (s.kind == SYM_OUTPUT) {
				src->kind = SRC_OUTPUT;
				src->index = s.index;
				src->size = m->outs[s.index].size;
			} else if (s.kind == SYM_NONE) {
				diag_emit(p->diag, DIAG_ERROR, id->span, NULL,
					hint_for(p, id->name, 1u << SYM_INPUT | 1u << SYM_LAYER | 1u << SYM_OUTPUT, NULL, 0),
					"unknown name '%s'", id->name);
				ok = false;
				continue;
			} else {
				diag_emit(p->diag, DIAG_ERROR, id->span, NULL, "a layer reads the input, layers and outputs",
					"'%s' is not an input or a layer", id->name);
				ok = false;
				continue;
			}
			if (src->size > 0 && id->sliced) {
				/* a view x[lo:hi] of the source */
				int64_t lo = 0, hi = src->size;
				if ((id->lo && !slice_bound(p, id->lo, &lo)) || (id->hi && !slice_bound(p, id->hi, &hi))) {
					ok = false;
				} else if (lo >= hi || hi > src->size) {
					diag_emit(p->diag, DIAG_ERROR, id->span, NULL, NULL,
						"slice [%lld:%lld] of '%s' is out of range (it has %lld values)", (long long)lo,
						(long long)hi, id->name, (long long)src->size);
					ok = false;
				} else {
					src->sliced = true;
					src->offset = lo;
					src->size = hi - lo;
				}
			}
			if (src->size <= 0)
				ok = false;
			L->nsrcs++;
		}
		int64_t in = 0;
		for (int k = 0; k < L->nsrcs; k++)
			in += L->srcs[k].size > 0 ? L->srcs[k].size : 0;
		L->in = ok && in > 0 ? in : -1;
		if (L->kind == LAYER_CONV4)
			conv4_shape(p, L);
	}
	/* order and cycles, after every layer knows its sources */
	for (int li = 0; li < m->nlayers; li++) {
		SemaLayer *L = &m->layers[li];
		for (int k = 0; k < L->nsrcs; k++) {
			const SemaSrc *s = &L->srcs[k];
			int dep = s->kind == SRC_LAYER ? s->index : s->kind == SRC_OUTPUT ? m->outs[s->index].layer : -1;
			if (dep < li)
				continue;
			const char *dn = m->layers[dep].name;
			if (dep == li)
				diag_emit(p->diag, DIAG_ERROR, s->span, NULL,
					"recurrence lives inside rnn and lstm layers (their state h, c)",
					"layer '%s' reads its own output (a cycle)", L->name);
			else if (errs_ok(p) && layer_reaches(p, dep, li))
				diag_emit(p->diag, DIAG_ERROR, s->span, NULL,
					"recurrence lives inside rnn and lstm layers (their state h, c)",
					"cycle between layers '%s' and '%s'", L->name, dn);
			else
				diag_emit(p->diag, DIAG_ERROR, s->span, NULL, NULL,
					"layer '%s' reads '%s', which is declared below it", L->name, s->kind == SRC_LAYER ? dn :
					m->outs[s->index].name);
			L->in = -1;
		}
	}

	/* (6) free params' shapes */
	for (int i = 0; i < m->nfparams; i++) {
		SemaFreeParam *fp = &m->fparams[i];
		const AstItem *it = fp->item;
		if (it->ndims > IR_MAX_RANK || it->ndims < 1) {
			diag_emit(p->diag, DIAG_ERROR, it->name_span, NULL, NULL, "a param has 1 to %d dims, not %d",
				IR_MAX_RANK, it->ndims);
			fp->shape.rank = -1;
			continue;
		}
		fp->shape.rank = it->ndims;
		for (int k = 0; k < it->ndims; k++) {
			fp->shape.d[k] = eval_size(p, it->dims[k], "a param dim");
			if (fp->shape.d[k] <= 0)
				fp->shape.rank = -1;
		}
	}

	/* (7) attributes, plasticity per layer, the tables */
	int maxt = 8 * m->nlayers;
	for (int li = 0; li < m->nlayers; li++)
		maxt += 5 * m->layers[li].blocks; /* conv4 */
	int maxp = maxt + m->nfparams + 1, maxs = maxt + 1;
	m->params = ast_alloc(p->arena, (size_t)maxp * sizeof *m->params);
	m->state = ast_alloc(p->arena, (size_t)maxs * sizeof *m->state);
	bool tables_ok = m->in_size > 0;
	for (int li = 0; li < m->nlayers; li++) {
		SemaLayer *L = &m->layers[li];
		const AstItem *it = L->item;
		if (L->kind == LAYER_CONV4) {
			if (L->size <= 0) {
				tables_ok = false;
				continue;
			}
			/* per block: the 3x3 kernel, U(+-1/sqrt(C*9)) as PyTorch's Conv2d; batch norm's gamma 1, beta 0 */
			L->conv_param = m->nparams;
			int64_t cin = L->img_c;
			for (int b = 1; b <= L->blocks; b++) {
				char name[512];
				int64_t d[3] = {L->channels, cin, 9};
				snprintf(name, sizeof name, "%s.conv%d.w", L->name, b);
				ProgTensor *pt = add_tensor(p, m->params, &m->nparams, name, ir_shape(false, 3, d), it->name_span);
				pt->init = PL_INIT_UNIFORM;
				pt->init_a = 1.0 / sqrt((double)(cin * 9));
				int64_t g[3] = {L->channels, 1, 1};
				snprintf(name, sizeof name, "%s.bn%d.gamma", L->name, b);
				pt = add_tensor(p, m->params, &m->nparams, name, ir_shape(false, 3, g), it->name_span);
				pt->init = PL_INIT_CONST;
				pt->init_a = 1;
				snprintf(name, sizeof name, "%s.bn%d.beta", L->name, b);
				pt = add_tensor(p, m->params, &m->nparams, name, ir_shape(false, 3, g), it->name_span);
				pt->init = PL_INIT_ZERO;
				/* batch norm's running statistics (PyTorch's buffers running_mean 0, running_var 1): not
				 * trained; the training forward returns each call's batch values, the runtime folds them in
				 * (momentum 0.1), and the evaluation forward normalises with them */
				snprintf(name, sizeof name, "%s.bn%d.running_mean", L->name, b);
				pt = add_tensor(p, m->params, &m->nparams, name, ir_shape(false, 3, g), it->name_span);
				pt->init = PL_INIT_ZERO;
				pt->trainable = false;
				pt->running = true;
				snprintf(name, sizeof name, "%s.bn%d.running_var", L->name, b);
				pt = add_tensor(p, m->params, &m->nparams, name, ir_shape(false, 3, g), it->name_span);
				pt->init = PL_INIT_CONST;
				pt->init_a = 1;
				pt->trainable = false;
				pt->running = true;
				cin = L->channels;
			}
			continue;
		}
		Plast pl = model_pl;
		Plast mine;
		memset(&mine, 0, sizeof mine);
		const AstSetting *init = NULL, *binit = NULL, *hhinit = NULL, *bias = NULL, *fixed = NULL;
		for (int k = 0; k < it->nattrs; k++) {
			const AstSetting *s = it->attrs[k];
			const AstSetting **slot = NULL;
			if (strcmp(s->key, "init") == 0)
				slot = &init;
			else if (strcmp(s->key, "bias_init") == 0)
				slot = &binit;
			else if (strcmp(s->key, "hh_init") == 0)
				slot = &hhinit;
			else if (strcmp(s->key, "bias") == 0)
				slot = &bias;
			else if (strcmp(s->key, "fixed") == 0)
				slot = &fixed;
			else if (strcmp(s->key, "max_norm") == 0) {
				diag_emit(p->diag, DIAG_ERROR, s->key_span, NULL, "set it in the model's plasticity { } block",
					"max_norm applies to all plastic tensors together, not to one layer");
				continue;
			} else
				slot = find_key(&mine, s->key);
			if (!slot) {
				unknown_key(p, s, "layer attributes", layer_keys, (int)(sizeof layer_keys / sizeof *layer_keys));
				continue;
			}
			if (*slot) {
				dup_key(p, s, *slot);
				continue;
			}
			*slot = s;
			if (slot == &mine.rule || slot == &mine.rate || slot == &mine.decay || slot == &mine.alpha) {
				if (!L->plastic)
					diag_emit(p->diag, DIAG_ERROR, s->key_span, NULL, "declare it `plastic linear ...`",
						"'%s' is set but layer '%s' is not plastic", s->key, L->name);
				*find_key(&pl, s->key) = s;
			}
		}
		L->has_bias = true;
		if (bias) {
			const char *n = setting_name(bias);
			if (n && strcmp(n, "false") == 0)
				L->has_bias = false;
			else if (!(n && strcmp(n, "true") == 0))
				diag_emit(p->diag, DIAG_ERROR, bias->value->span, NULL, NULL, "bias is true or false");
		}
		bool fix_w = false, fix_b = false;
		if (fixed) {
			const char *n = setting_name(fixed);
			if (n && strcmp(n, "weight") == 0)
				fix_w = true;
			else if (n && strcmp(n, "bias") == 0)
				fix_b = true;
			else if (n && strcmp(n, "all") == 0)
				fix_w = fix_b = true;
			else if (!(n && strcmp(n, "none") == 0))
				diag_emit(p->diag, DIAG_ERROR, fixed->value->span, NULL, NULL, "fixed is weight, bias, all or none");
		}
		InitSpec wi, bi;
		bool init_ok = true;
		if (init)
			init_ok = parse_init(p, init->value, &wi);
		if (!init || (init_ok && wi.kind == IK_DEFAULT)) {
			memset(&wi, 0, sizeof wi);
			wi.kind = IK_FAN_OUT;
			wi.a = L->kind == LAYER_LSTM ? 2 : 1;
			wi.at = it->name_span;
		}
		bool bset = binit && parse_init(p, binit->value, &bi);
		if (binit && !bset)
			init_ok = false;
		if (bset && bi.kind == IK_DEFAULT)
			bset = false;
		if (!bset) {
			bi = wi;
			if (bi.kind == IK_IDENTITY) {
				bi.kind = IK_CONST;
				bi.a = 0;
			}
		}
		if (binit && bi.kind == IK_IDENTITY) {
			diag_emit(p->diag, DIAG_ERROR, binit->value->span, NULL, NULL, "a bias cannot be initialised to identity");
			init_ok = false;
		}
		/* hh_init: the recurrent weight w_hh of an rnn/lstm layer (e.g. identity for an IRNN, Le et al. 2015);
		 * b_hh follows it as biases follow init (0 for identity) unless bias_init is set */
		InitSpec hi = wi, hbi = bi;
		if (hhinit) {
			if (L->kind == LAYER_LINEAR) {
				diag_emit(p->diag, DIAG_ERROR, hhinit->key_span, NULL, "use `init` for a linear layer",
					"hh_init applies to the recurrent weight of an rnn or lstm layer; '%s' is linear", L->name);
				init_ok = false;
			} else if (parse_init(p, hhinit->value, &hi)) {
				if (hi.kind == IK_DEFAULT)
					hi = wi;
				else if (!bset) {
					hbi = hi;
					if (hbi.kind == IK_IDENTITY) {
						hbi.kind = IK_CONST;
						hbi.a = 0;
					}
				}
			} else
				init_ok = false;
		}
		/* plasticity */
		bool bias_plastic = false;
		int alpha_kind = 0; /* 0 random, 1 uniform, 2 negative, 3 none, 4 normal */
		double alpha_a = 0, alpha_b = 0;
		if (L->plastic) {
			if (!pl.rule) {
				diag_emit(p->diag, DIAG_ERROR, it->name_span, NULL,
					"set `rule = NAME` in the model's plasticity { } or in the layer's { }",
					"plastic layer '%s' has no rule", L->name);
			} else {
				CVal v;
				if (ceval(p, pl.rule->value, &v)) {
					if (v.alpha)
						diag_emit(p->diag, DIAG_ERROR, pl.rule->value->span, NULL, NULL,
							"'rule' must name a rule, not the alpha initialisation '%s'", v.alpha);
					else if (!v.is_rule)
						diag_emit(p->diag, DIAG_ERROR, pl.rule->value->span, NULL, NULL,
							"'rule' must name a rule, not the number %g", v.num);
					else
						L->rule = v.rule;
				}
			}
			if (!pl.rate)
				diag_emit(p->diag, DIAG_ERROR, it->name_span, NULL, "set `rate = ...` in plasticity { }",
					"plastic layer '%s' has no rate", L->name);
			else
				L->rate = pl.rate->value;
			L->decay = pl.decay ? pl.decay->value : NULL;
			if (pl.alpha) {
				const AstExpr *a = pl.alpha->value;
				const char *n = setting_name(pl.alpha);
				/* a constant naming an α initialisation (`alpha = alpha_mode`) stands for that name */
				if (n && !alpha_mode_name(n) && lookup(p, n).kind == SYM_CONST) {
					CVal v;
					if (!ceval(p, a, &v))
						n = "none";
					else if (v.alpha)
						n = v.alpha;
				}
				if (n && strcmp(n, "random") == 0)
					alpha_kind = 0;
				else if (n && strcmp(n, "uniform") == 0)
					alpha_kind = 1;
				else if (n && strcmp(n, "negative") == 0)
					alpha_kind = 2;
				else if (n && strcmp(n, "none") == 0)
					alpha_kind = 3;
				else if (a->kind == AST_CALL && strcmp(a->name, "normal") == 0 && a->nargs == 2) {
					alpha_kind = 4;
					if (!cnum(p, a->args[0], &alpha_a) || !cnum(p, a->args[1], &alpha_b))
						alpha_kind = 3;
				} else
					diag_emit(p->diag, DIAG_ERROR, a->span, NULL, NULL,
						"alpha is random, uniform, negative, none or normal(MEAN, STD)");
			}
			bias_plastic = L->rule && L->rule->bias && L->has_bias;
		}
		if (L->in <= 0 || L->size <= 0) {
			tables_ok = false;
			continue;
		}
		/* tensors */
		int64_t I = L->in, H = L->size, G = L->post_size;
		if (L->kind == LAYER_LINEAR) {
			L->t[L->nt++] = (SemaTensor){"w", false, false, I, H, -1, -1, -1};
			if (L->has_bias)
				L->t[L->nt++] = (SemaTensor){"b", true, false, I, H, -1, -1, -1};
		} else {
			L->t[L->nt++] = (SemaTensor){"w_hh", false, true, H, G, -1, -1, -1};
			if (L->has_bias)
				L->t[L->nt++] = (SemaTensor){"b_hh", true, false, H, G, -1, -1, -1};
			L->t[L->nt++] = (SemaTensor){"w_ih", false, false, I, G, -1, -1, -1};
			if (L->has_bias)
				L->t[L->nt++] = (SemaTensor){"b_ih", true, false, I, G, -1, -1, -1};
		}
		char name[512];
		for (int k = 0; k < L->nt; k++) {
			SemaTensor *t = &L->t[k];
			snprintf(name, sizeof name, "%s.%s", L->name, t->suffix);
			IrShape s = t->is_bias ? shp(false, 1, t->out, 0) : shp(false, 2, t->in, t->out);
			t->param = m->nparams;
			ProgTensor *pt = add_tensor(p, m->params, &m->nparams, name, s, it->name_span);
			pt->trainable = !(t->is_bias ? fix_b : fix_w);
			bool hh = strcmp(t->suffix, "w_hh") == 0 || strcmp(t->suffix, "b_hh") == 0;
			const InitSpec *is = t->is_bias ? (hh ? &hbi : &bi) : (hh ? &hi : &wi);
			if (init_ok && !resolve_init(p, is, pt, t->in, t->out, t->in == t->out))
				init_ok = false;
		}
		if (L->plastic) {
			for (int k = 0; k < L->nt; k++) {
				SemaTensor *t = &L->t[k];
				if (t->is_bias && !bias_plastic)
					continue;
				if (alpha_kind == 3)
					continue;
				snprintf(name, sizeof name, "%s.alpha_%s", L->name, t->suffix);
				IrShape s = t->is_bias ? shp(false, 1, t->out, 0) : shp(false, 2, t->in, t->out);
				t->alpha = m->nparams;
				ProgTensor *pt = add_tensor(p, m->params, &m->nparams, name, s, pl.alpha ? pl.alpha->span : it->name_span);
				switch (alpha_kind) {
				case 0: pt->init = PL_INIT_UNIFORM; pt->init_a = 1; break;
				case 1: pt->init = PL_INIT_CONST; pt->init_a = 1; break;
				case 2: pt->init = PL_INIT_CONST; pt->init_a = -1; break;
				default: pt->init = PL_INIT_NORMAL; pt->init_a = alpha_a; pt->init_b = alpha_b; break;
				}
			}
		}
	}
	for (int i = 0; i < m->nfparams; i++) {
		SemaFreeParam *fp = &m->fparams[i];
		if (fp->shape.rank < 1) {
			tables_ok = false;
			continue;
		}
		fp->param = m->nparams;
		ProgTensor *pt = add_tensor(p, m->params, &m->nparams, fp->item->name, fp->shape, fp->item->name_span);
		InitSpec spec;
		if (parse_init(p, fp->item->value, &spec)) {
			int64_t in = fp->shape.d[0], out = fp->shape.d[fp->shape.rank - 1];
			resolve_init(p, &spec, pt, in, out, fp->shape.rank == 2 && in == out);
		}
	}
	/* state: plastic tensors in layer order, then h (and c) of each recurrent layer */
	for (int li = 0; li < m->nlayers; li++) {
		SemaLayer *L = &m->layers[li];
		if (!L->plastic)
			continue;
		bool bias_plastic = L->rule && L->rule->bias;
		for (int k = 0; k < L->nt; k++) {
			SemaTensor *t = &L->t[k];
			if (t->is_bias && !bias_plastic)
				continue;
			char name[512];
			snprintf(name, sizeof name, "%s.%s~", L->name, t->suffix);
			IrShape s = t->is_bias ? shp(true, 1, t->out, 0) : shp(true, 2, t->in, t->out);
			t->state = m->nstate;
			ProgTensor *st = add_tensor(p, m->state, &m->nstate, name, s, L->item->name_span);
			st->init = PL_INIT_ZERO;
			st->trainable = false;
		}
	}
	for (int li = 0; li < m->nlayers; li++) {
		SemaLayer *L = &m->layers[li];
		if (L->kind == LAYER_LINEAR || L->kind == LAYER_CONV4 || L->size <= 0)
			continue;
		char name[512];
		snprintf(name, sizeof name, "%s.h", L->name);
		L->h_state = m->nstate;
		add_tensor(p, m->state, &m->nstate, name, shp(true, 1, L->size, 0), L->item->name_span)->trainable = false;
		if (L->kind == LAYER_LSTM) {
			snprintf(name, sizeof name, "%s.c", L->name);
			L->c_state = m->nstate;
			add_tensor(p, m->state, &m->nstate, name, shp(true, 1, L->size, 0), L->item->name_span)->trainable = false;
		}
	}
	/* the parameter budget */
	int64_t total = 0;
	for (int i = 0; i < m->nparams; i++) {
		int64_t n = shp_numel(m->params[i].shape);
		total = total > INT64_MAX - n ? INT64_MAX : total + n;
	}
	m->total_params = total;
	if (total > SEMA_MAX_PARAMS) {
		diag_emit(p->diag, DIAG_ERROR, md->name_span, NULL, "reduce the sizes (for example --set hidden=...)",
			"model '%s' has %lld parameters; the limit is %lld", md->name, (long long)total,
			(long long)SEMA_MAX_PARAMS);
		tables_ok = false;
	}

	/* (8) expressions: internal loss, rates, rules */
	m->internal_loss = loss_item ? loss_item->value : NULL;
	bool loss_ok = false;
	if (loss_item && tables_ok) {
		ExprCtx x;
		memset(&x, 0, sizeof x);
		x.what = "internal_loss";
		x.in_loss = true;
		Ty t = check(p, &x, loss_item->value);
		loss_ok = t.ok;
		if (t.ok && t.s.rank != 0) {
			char s[64];
			sema_shape_str(t.s, s, sizeof s);
			diag_emit(p->diag, DIAG_ERROR, loss_item->value->span, NULL,
				"reduce it, e.g. batch_mean(mean(square(...)))", "internal_loss must be a scalar, but it has shape %s", s);
		}
	}
	if (!tables_ok)
		goto rules_only;
	const AstExpr **checked = ast_alloc(p->arena, (size_t)(2 * m->nlayers + 2) * sizeof *checked);
	int nchecked = 0;
	RuleMark *marks = ast_alloc(p->arena, (size_t)(8 * m->nlayers + 1) * sizeof *marks);
	int nmarks = 0;
	const AstDecl *grad_rule = NULL;
	for (int li = -1; li < m->nlayers; li++) {
		/* li = -1: the plasticity block's own rate and decay, even if no layer uses them */
		SemaLayer *L = li >= 0 ? &m->layers[li] : NULL;
		if (L && !L->plastic)
			continue;
		const AstExpr *rd[2] = {L ? L->rate : model_pl.rate ? model_pl.rate->value : NULL,
			L ? L->decay : model_pl.decay ? model_pl.decay->value : NULL};
		for (int k = 0; k < 2; k++) {
			if (!rd[k])
				continue;
			bool seen = false;
			for (int j = 0; j < nchecked; j++)
				seen = seen || checked[j] == rd[k];
			if (seen)
				continue;
			checked[nchecked++] = rd[k];
			ExprCtx x;
			memset(&x, 0, sizeof x);
			x.what = k ? "decay" : "rate";
			value_ok_for_rate(p, &x, rd[k], x.what);
		}
		if (!L || !L->rule)
			continue;
		for (int k = 0; k < L->nt; k++) {
			const SemaTensor *t = &L->t[k];
			if (t->state < 0)
				continue;
			bool before = m->needs_grad;
			check_rule_clause(p, L, t, L->rule, t->is_bias, marks, &nmarks);
			if (m->needs_grad && !before)
				grad_rule = L->rule;
		}
	}
	/* non-differentiable ops on the internal loss's path to the plastic tensors */
	if (m->needs_grad && loss_ok) {
		ExprCtx x;
		memset(&x, 0, sizeof x);
		x.what = "internal_loss";
		x.in_loss = true;
		x.nodiff_check = true;
		x.grad_rule = grad_rule ? grad_rule->name : NULL;
		/* the first check passed, so the only errors of this one are the nodiff ones */
		check(p, &x, m->internal_loss);
	}
rules_only:
	/* rules no layer uses: function names and arities */
	for (int i = 0; i < p->nrules; i++) {
		bool used = false;
		for (int li = 0; li < m->nlayers; li++)
			used = used || m->layers[li].rule == p->rules[i];
		if (!used) {
			check_calls(p, p->rules[i]->value);
			check_calls(p, p->rules[i]->bias);
		}
	}
	/* settings text: every constant's final value, sorted by name (stable for the model hash) */
	size_t cap = 64, len = 0;
	const SemaConst **order = ast_alloc(p->arena, (size_t)(p->nconsts + 1) * sizeof *order);
	for (int i = 0; i < p->nconsts; i++) {
		cap += strlen(p->consts[i].name) + 40 + (p->consts[i].is_rule ? strlen(p->consts[i].rule->name) : 0);
		/* an α name is at most 8 characters: covered by the 40 */
		order[i] = &p->consts[i];
	}
	qsort(order, (size_t)p->nconsts, sizeof *order, const_cmp);
	char *set = ast_alloc(p->arena, cap);
	for (int i = 0; i < p->nconsts; i++) {
		const SemaConst *c = order[i];
		if (!c->ok)
			continue;
		char v[64] = "";
		if (!c->is_rule)
			fmt_num(c->num, v, sizeof v);
		len += (size_t)snprintf(set + len, cap - len, "%s%s=%s", len ? " " : "", c->name,
			c->is_rule ? c->rule->name : c->alpha ? c->alpha : c->init ? c->init : v);
	}
	m->settings = set;
}
