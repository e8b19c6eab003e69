/* tests/test_frontend.c -- scanner, parser, diagnostics, sema tables and the meaning of the lowering.
 *
 * The lowering tests run the lowered step through the reference interpreter and compare the plastic
 * update with the formulas of reference-model.md A.1 computed here by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ast.h"
#include "diag.h"
#include "frontend.h"
#include "interp.h"
#include "lower.h"
#include "parse.h"
#include "sema.h"

/* ---- helpers ---- */

typedef struct Out {
	char *buf;
	size_t len;
	FILE *f;
} Out;

static DiagCtx *diag_mem(Out *o)
{
	o->buf = NULL;
	o->len = 0;
	o->f = open_memstream(&o->buf, &o->len);
	assert_non_null(o->f);
	return diag_ctx_new(o->f);
}

static const char *out_text(Out *o)
{
	fflush(o->f);
	return o->buf ? o->buf : "";
}

static void out_close(Out *o, DiagCtx *d)
{
	diag_ctx_free(d);
	fclose(o->f);
	free(o->buf);
}

/* Parses text as "t.plast"; returns the file (in arena) and leaves the diagnostics in o. */
static AstFile *parse_str(AstArena *a, DiagCtx *d, const char *text)
{
	const char *name = diag_add_source(d, "t.plast", text, strlen(text));
	if (lex_check_text(d, name, text, strlen(text)) != 0)
		return NULL;
	return parse_text(a, d, name, text, strlen(text));
}

static char tmpdir[256];

static void write_file(const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *path_of(const char *name)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	return path;
}

static const char *LIB =
	"const eta0 = 0.2\n"
	"rule hebbian = outer(pre, post)\n"
	"rule gradient { weight = grad(internal_loss, w); bias = grad(internal_loss, b) }\n";

static const char *EXAMPLE =
	"import \"lib.plast\"\n"
	"const hidden = 256                  # override with --set hidden=128\n"
	"const rule   = hebbian\n"
	"model rnn_hebbian {\n"
	"  input     x[16]\n"
	"  output    y[1]\n"
	"  extra     yx[4]\n"
	"  modulator m\n"
	"  plastic linear enc  (x   -> hidden) relu\n"
	"  plastic rnn    cell (enc -> hidden) relu\n"
	"  plastic linear head (cell -> y, yx, m)\n"
	"  param w_out[6] = 1\n"
	"  internal_loss = batch_mean(mean(square(w_out * concat(y, yx, m))))\n"
	"  plasticity {\n"
	"    rule     = rule\n"
	"    rate     = eta0 * sigmoid(m)\n"
	"    decay    = eta0 * sigmoid(m)\n"
	"    max_norm = 1\n"
	"    alpha    = random\n"
	"  }\n"
	"}\n";

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "%s/plastc-fe-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir))
		return -1;
	write_file("lib.plast", LIB);
	write_file("example.plast", EXAMPLE);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- parser ---- */

static void test_parse_example(void **state)
{
	(void)state;
	Out o;
	DiagCtx *d = diag_mem(&o);
	AstArena *a = ast_arena_new();
	AstFile *f = parse_str(a, d, EXAMPLE);
	assert_int_equal(diag_error_count(d), 0);
	assert_int_equal(f->ndecls, 4);
	assert_int_equal(f->decls[0]->kind, DECL_IMPORT);
	assert_string_equal(f->decls[0]->name, "lib.plast");
	assert_int_equal(f->decls[2]->kind, DECL_CONST);
	assert_string_equal(f->decls[2]->name, "rule");
	assert_int_equal(f->decls[2]->value->kind, AST_NAME);
	const AstDecl *m = f->decls[3];
	assert_int_equal(m->kind, DECL_MODEL);
	assert_int_equal(m->nitems, 10);
	const AstItem *head = m->items[6];
	assert_int_equal(head->kind, ITEM_LAYER);
	assert_true(head->plastic);
	assert_int_equal(head->nsrcs, 1);
	assert_string_equal(head->srcs[0]->name, "cell");
	assert_int_equal(head->nouts, 3);
	assert_null(head->act);
	const AstItem *cell = m->items[5];
	assert_int_equal(cell->layer, LAYER_RNN);
	assert_string_equal(cell->act, "relu");
	/* spans: `cell` at line 10, col 18 */
	assert_int_equal(cell->name_span.line, 10);
	assert_int_equal(cell->name_span.col, 18);
	assert_int_equal(cell->name_span.end_col, 21);
	const AstItem *pl = m->items[9];
	assert_int_equal(pl->kind, ITEM_PLASTICITY);
	assert_int_equal(pl->nattrs, 5);
	assert_string_equal(pl->attrs[0]->key, "rule");
	/* precedence: eta0 * sigmoid(m) is a product of a name and a call */
	const AstExpr *rate = pl->attrs[1]->value;
	assert_int_equal(rate->kind, AST_BINOP);
	assert_int_equal(rate->op, '*');
	assert_int_equal(rate->args[1]->kind, AST_CALL);
	ast_arena_free(a);
	out_close(&o, d);
}

static void test_parse_precedence_and_slices(void **state)
{
	(void)state;
	Out o;
	DiagCtx *d = diag_mem(&o);
	AstArena *a = ast_arena_new();
	AstFile *f = parse_str(a, d, "const a = 1 - 2 - 3 * -4 / 5; const b = (\n 1 +\n 2 )\nrule r = x[1:2][:3]\n");
	assert_int_equal(diag_error_count(d), 0);
	assert_int_equal(f->ndecls, 3);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	ast_print_expr(f->decls[0]->value, m);
	fputc('|', m);
	ast_print_expr(f->decls[2]->value, m);
	fclose(m);
	assert_string_equal(buf, "((1 - 2) - ((3 * (-4)) / 5))|x[1:2][:3]");
	free(buf);
	ast_arena_free(a);
	out_close(&o, d);
}

static void test_parse_recovers_per_statement(void **state)
{
	(void)state;
	Out o;
	DiagCtx *d = diag_mem(&o);
	AstArena *a = ast_arena_new();
	AstFile *f = parse_str(a, d,
		"const a = 1 +\n"
		"const ok1 = 2\n"
		"model m {\n"
		"  linear l (x hidden)\n"
		"  input x[4]\n"
		"  output = 3\n"
		"}\n"
		"const ok2 = 3\n");
	assert_int_equal(diag_error_count(d), 3);
	const char *t = out_text(&o);
	assert_non_null(strstr(t, "t.plast:1:14: error: unexpected end of line"));
	assert_non_null(strstr(t, "t.plast:4:15: error: unexpected name 'hidden', expected '->', ')', '[' or ','"));
	assert_non_null(strstr(t, "hint: write the layer as"));
	assert_non_null(strstr(t, "t.plast:6:10: error: unexpected '='"));
	/* the good statements survive: ok1, the model (with its input), ok2 */
	assert_int_equal(f->ndecls, 3);
	assert_int_equal(f->decls[1]->nitems, 1);
	assert_string_equal(f->decls[2]->name, "ok2");
	ast_arena_free(a);
	out_close(&o, d);
}

static void test_parse_limits(void **state)
{
	(void)state;
	Out o;
	DiagCtx *d = diag_mem(&o);
	AstArena *a = ast_arena_new();
	/* 300 open brackets on separate lines: the scanner stops at 257 */
	size_t n = 300;
	char *text = malloc(20 + 2 * n);
	strcpy(text, "const a = ");
	for (size_t i = 0; i < n; i++)
		strcat(text, "(\n");
	parse_str(a, d, text);
	assert_int_equal(diag_error_count(d), 1);
	assert_non_null(strstr(out_text(&o), "t.plast:257:1: error: nesting deeper than 256 levels"));
	free(text);
	/* NUL byte */
	static const char nul[] = "const a = 1\0\n";
	const char *name = diag_add_source(d, "nul.plast", nul, sizeof nul - 1);
	assert_int_equal(lex_check_text(d, name, nul, sizeof nul - 1), -1);
	assert_non_null(strstr(out_text(&o), "nul.plast:1:12: error: NUL byte"));
	ast_arena_free(a);
	out_close(&o, d);
}

/* ---- diagnostics ---- */

static void test_diag_caret_and_hint(void **state)
{
	(void)state;
	Out o;
	DiagCtx *d = diag_mem(&o);
	const char *src = "line one\n  rnn cell (enc -> hiden) relu\n";
	const char *name = diag_add_source(d, "x.plast", src, strlen(src));
	SrcSpan at = {name, 2, 20, 2, 24};
	diag_emit(d, DIAG_ERROR, at, "the detail", "did you mean 'hidden'?", "unknown name '%s'", "hiden");
	assert_string_equal(out_text(&o),
		"x.plast:2:20: error: unknown name 'hiden'\n"
		"    2 |   rnn cell (enc -> hiden) relu\n"
		"      |                    ^~~~~\n"
		"detail: the detail\n"
		"hint: did you mean 'hidden'?\n");
	assert_int_equal(diag_error_count(d), 1);
	out_close(&o, d);
}

static void test_diag_machine_and_cap(void **state)
{
	(void)state;
	setenv("PLASTC_DIAG_FORMAT", "machine", 1);
	Out o;
	DiagCtx *d = diag_mem(&o);
	unsetenv("PLASTC_DIAG_FORMAT");
	const char *src = "a\n";
	const char *name = diag_add_source(d, "m.plast", src, 2);
	SrcSpan at = {name, 1, 1, 1, 1};
	for (int i = 0; i < 25; i++)
		diag_emit(d, DIAG_ERROR, at, "detail", "hint", "error %d", i);
	assert_int_equal(diag_error_count(d), 25);
	const char *t = out_text(&o);
	assert_non_null(strstr(t, "m.plast:1:1: error: error 0\nm.plast:1:1: error: error 1\n"));
	assert_non_null(strstr(t, "error 19\n"));
	assert_null(strstr(t, "error 20"));
	assert_null(strstr(t, "hint"));
	out_close(&o, d);
}

static void test_nearest(void **state)
{
	(void)state;
	const char *c[] = {"hidden", "hebbian", "gradient", "eta0"};
	assert_string_equal(sema_nearest("hiden", c, 4), "hidden");
	assert_string_equal(sema_nearest("gradiant", c, 4), "gradient");
	assert_null(sema_nearest("zzzzzz", c, 4));
}

/* ---- sema ---- */

static void test_sema_tables(void **state)
{
	(void)state;
	Out o;
	DiagCtx *d = diag_mem(&o);
	Frontend *fe = frontend_parse(path_of("example.plast"), d);
	assert_non_null(fe);
	assert_int_equal(fe->nfiles, 2);
	SemaModel *m = frontend_check(fe, 0, NULL, d);
	assert_int_equal(diag_error_count(d), 0);
	assert_non_null(m);
	static const char *names[] = {"enc.w", "enc.b", "enc.alpha_w", "cell.w_hh", "cell.b_hh", "cell.w_ih",
		"cell.b_ih", "cell.alpha_w_hh", "cell.alpha_w_ih", "head.w", "head.b", "head.alpha_w", "w_out"};
	assert_int_equal(m->nparams, 13);
	for (int i = 0; i < 13; i++)
		assert_string_equal(m->params[i].name, names[i]);
	assert_int_equal(m->params[0].shape.rank, 2);
	assert_int_equal(m->params[0].shape.d[0], 16);
	assert_int_equal(m->params[0].shape.d[1], 256);
	assert_false(m->params[0].shape.batch);
	assert_int_equal(m->params[0].init, PL_INIT_UNIFORM);
	assert_true(fabs(m->params[0].init_a - 1.0 / 16) < 1e-15); /* fan_out(1): 1/sqrt(256) */
	assert_true(fabs(m->params[9].init_a - 1 / sqrt(6.0)) < 1e-15);
	assert_int_equal(m->params[2].init, PL_INIT_UNIFORM); /* alpha random: U(-1,1) */
	assert_true(m->params[2].init_a == 1);
	assert_int_equal(m->params[12].init, PL_INIT_CONST);
	/* hebbian: biases are not plastic, so no alpha_b (the reference keeps an unused one) */
	assert_int_equal(m->total_params, 274962 - (256 + 2 * 256 + 6));
	static const char *st[] = {"enc.w~", "cell.w_hh~", "cell.w_ih~", "head.w~", "cell.h"};
	assert_int_equal(m->nstate, 5);
	for (int i = 0; i < 5; i++)
		assert_string_equal(m->state[i].name, st[i]);
	assert_true(m->state[0].shape.batch);
	assert_true(m->has_max_norm && m->max_norm == 1);
	assert_string_equal(m->settings, "eta0=0.2 hidden=256 rule=hebbian");
	frontend_free(fe);
	out_close(&o, d);
}

static void test_sema_set_gradient(void **state)
{
	(void)state;
	Out o;
	DiagCtx *d = diag_mem(&o);
	Frontend *fe = frontend_parse(path_of("example.plast"), d);
	char s1[] = "rule=gradient";
	char *sets[] = {s1};
	SemaModel *m = frontend_check(fe, 1, sets, d);
	assert_non_null(m);
	/* the reference's count for the plastic cue-reward RNN, H = 256 (reference-model.md A.3) */
	assert_int_equal(m->total_params, 274962);
	assert_true(m->needs_grad);
	assert_int_equal(m->nstate, 9);
	assert_string_equal(m->state[1].name, "enc.b~");
	assert_string_equal(m->state[8].name, "cell.h");
	frontend_free(fe);

	/* the plastic LSTM, H = 128: 270,098 in the reference */
	write_file("lstm.plast",
		"import \"lib.plast\"\n"
		"model l {\n input x[16]\n output y[1]\n extra yx[4]\n modulator m\n"
		" plastic linear enc (x -> 128) relu\n plastic lstm cell (enc -> 128)\n plastic linear head (cell -> y, yx, m)\n"
		" param w_out[6] = 1\n internal_loss = batch_mean(mean(square(w_out * concat(y, yx, m))))\n"
		" plasticity { rule = gradient; rate = eta0 * sigmoid(m); decay = eta0 * sigmoid(m); max_norm = 1 }\n}\n");
	fe = frontend_parse(path_of("lstm.plast"), d);
	m = frontend_check(fe, 0, NULL, d);
	assert_non_null(m);
	assert_int_equal(m->total_params, 270098);
	assert_string_equal(m->params[4].name, "cell.w_hh");
	assert_true(fabs(m->params[4].init_a - 1.0 / sqrt(128)) < 1e-15); /* lstm fan_out(2) over 4H */
	assert_string_equal(m->state[m->nstate - 1].name, "cell.c");
	frontend_free(fe);
	assert_int_equal(diag_error_count(d), 0);
	out_close(&o, d);
}

static void test_sema_set_errors(void **state)
{
	(void)state;
	Out o;
	DiagCtx *d = diag_mem(&o);
	Frontend *fe = frontend_parse(path_of("example.plast"), d);
	char s1[] = "hiden=3", s2[] = "hidden=128";
	char *sets[] = {s1, s2};
	assert_null(frontend_check(fe, 2, sets, d));
	assert_int_equal(diag_error_count(d), 1);
	assert_non_null(strstr(out_text(&o), "plastc: error: --set hiden=3: unknown constant 'hiden'"));
	assert_non_null(strstr(out_text(&o), "hint: did you mean 'hidden'?"));
	frontend_free(fe);
	out_close(&o, d);

	d = diag_mem(&o);
	fe = frontend_parse(path_of("example.plast"), d);
	char s3[] = "hidden=128";
	char *ok[] = {s3};
	SemaModel *m = frontend_check(fe, 1, ok, d);
	assert_non_null(m);
	assert_int_equal(m->params[0].shape.d[1], 128);
	frontend_free(fe);
	out_close(&o, d);
}

static void test_sema_library_and_missing_file(void **state)
{
	(void)state;
	Out o;
	DiagCtx *d = diag_mem(&o);
	Frontend *fe = frontend_parse(path_of("lib.plast"), d);
	assert_non_null(fe);
	assert_null(frontend_check(fe, 0, NULL, d));
	assert_int_equal(diag_error_count(d), 0);
	frontend_free(fe);
	assert_null(frontend_parse(path_of("nope.plast"), d));
	assert_int_equal(diag_error_count(d), 1);
	assert_non_null(strstr(out_text(&o), "plastc: error: "));
	out_close(&o, d);
}

/* ---- lowering, checked through the interpreter ---- */

/* Runs p->fwd for B trials with the given params and inputs; returns the outputs (caller frees). */
static double **run_fwd(const Program *p, int B, double **params, double **in)
{
	const IrFunc *f = p->fwd;
	double **out = calloc((size_t)f->nouts, sizeof *out);
	for (int k = 0; k < f->nouts; k++) {
		IrShape s = f->nodes[f->outs[k].node].shape;
		out[k] = calloc((size_t)(ir_shape_numel(s) * (s.batch ? B : 1)), sizeof **out);
	}
	assert_int_equal(interp_run(f, B, B, (const double *const *)params, (const double *const *)in, out, stderr), 0);
	return out;
}

static void free_all(double **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Hebbian linear layer: ŵ' = (1 - decay) ŵ + rate * alpha * (x ⊗ y), y = x (W + ŵ) + b. */
static void test_lower_hebbian(void **state)
{
	(void)state;
	write_file("hebb.plast",
		"model h {\n input x[2]\n output y[1]\n"
		" plastic linear head (x -> y) { rule = hebb; rate = 0.5; decay = 0.1; alpha = uniform }\n}\n"
		"rule hebb = outer(pre, post)\n");
	Out o;
	DiagCtx *d = diag_mem(&o);
	Program *p = frontend_load_program_ex(path_of("hebb.plast"), 0, NULL, d, 0);
	assert_non_null(p);
	assert_int_equal(p->n_params, 3); /* head.w, head.b, head.alpha_w */
	assert_int_equal(p->n_state, 1);
	assert_int_equal(ir_verify(p->fwd, stderr), 0);
	double W[2] = {0.3, -0.2}, b[1] = {0.1}, alpha[2] = {0.7, -1.5};
	double *params[3] = {W, b, alpha};
	enum { B = 2 };
	double x[B * 2] = {1, 2, -0.5, 0.25};
	double wh[B * 2] = {0.01, 0.02, -0.03, 0.04};
	double *in[2] = {x, wh};
	double **out = run_fwd(p, B, params, in);
	for (int t = 0; t < B; t++) {
		double y = b[0];
		for (int i = 0; i < 2; i++)
			y += x[2 * t + i] * (W[i] + wh[2 * t + i]);
		assert_true(fabs(out[0][t] - y) < 1e-12);
		for (int i = 0; i < 2; i++) {
			double want = 0.9 * wh[2 * t + i] + 0.5 * alpha[i] * x[2 * t + i] * y;
			assert_true(fabs(out[2][2 * t + i] - want) < 1e-12);
		}
	}
	free_all(out, p->fwd->nouts);
	program_free(p);
	out_close(&o, d);
}

/* Gradient rule with max-norm: L = batch_mean(sum(square(y))), y = x (W + ŵ) + b + b̂, so per trial
 * Δw = x ⊗ (2y/B), Δb = 2y/B; scale = min(1, max_norm / |Δ|) over both; ŵ' = ŵ + rate·scale·Δ. */
static void test_lower_gradient_max_norm(void **state)
{
	(void)state;
	write_file("grad.plast",
		"rule g { weight = grad(internal_loss, w); bias = grad(internal_loss, b) }\n"
		"model gm {\n input x[2]\n output y[1]\n plastic linear head (x -> y)\n"
		" internal_loss = batch_mean(sum(square(y)))\n"
		" plasticity { rule = g; rate = 0.5; alpha = none; max_norm = 0.1 }\n}\n");
	Out o;
	DiagCtx *d = diag_mem(&o);
	Program *p = frontend_load_program(path_of("grad.plast"), 0, NULL, d);
	assert_non_null(p);
	assert_non_null(p->vjp);
	assert_int_equal(p->n_params, 2);
	assert_int_equal(p->n_state, 2);
	double W[2] = {0.3, -0.2}, b[1] = {0.1};
	double *params[2] = {W, b};
	enum { B = 2 };
	double x[B * 2] = {1, 2, -0.05, 0.025};
	double wh[B * 2] = {0.01, 0.02, -0.03, 0.04}, bh[B] = {0.05, -0.05};
	double *in[3] = {x, wh, bh};
	double **out = run_fwd(p, B, params, in);
	for (int t = 0; t < B; t++) {
		double y = b[0] + bh[t];
		for (int i = 0; i < 2; i++)
			y += x[2 * t + i] * (W[i] + wh[2 * t + i]);
		double g = 2 * y / B;
		double n2 = g * g;
		for (int i = 0; i < 2; i++)
			n2 += (x[2 * t + i] * g) * (x[2 * t + i] * g);
		double scale = fmin(1.0, 0.1 / sqrt(n2));
		if (t == 0)
			assert_true(scale < 0.5); /* the first trial is clipped, the second is not */
		else
			assert_true(scale == 1);
		for (int i = 0; i < 2; i++)
			assert_true(fabs(out[2][2 * t + i] - (wh[2 * t + i] + 0.5 * scale * x[2 * t + i] * g)) < 1e-12);
		assert_true(fabs(out[3][t] - (bh[t] + 0.5 * scale * g)) < 1e-12);
	}
	free_all(out, p->fwd->nouts);
	program_free(p);
	out_close(&o, d);
}

/* An LSTM step: c = σ(f) c_prev + σ(i) tanh(g), h = σ(o) tanh(c), gates in the order i, f, g, o. */
static void test_lower_lstm(void **state)
{
	(void)state;
	write_file("lstm1.plast", "model l {\n input x[1]\n output y[1]\n lstm cell (x -> 1)\n linear head (cell -> y)\n}\n");
	Out o;
	DiagCtx *d = diag_mem(&o);
	Program *p = frontend_load_program_ex(path_of("lstm1.plast"), 0, NULL, d, 0);
	assert_non_null(p);
	assert_int_equal(p->n_params, 6);
	assert_int_equal(p->n_state, 2);
	double whh[4] = {0.1, 0.2, 0.3, 0.4}, bhh[4] = {0.01, 0.02, 0.03, 0.04};
	double wih[4] = {-0.1, 0.5, -0.3, 0.2}, bih[4] = {0.0, -0.02, 0.01, 0.0};
	double hw[1] = {1}, hb[1] = {0};
	double *params[6] = {whh, bhh, wih, bih, hw, hb};
	double x[1] = {0.7}, h0[1] = {0.3}, c0[1] = {-0.4};
	double *in[3] = {x, h0, c0};
	double **out = run_fwd(p, 1, params, in);
	double gt[4];
	for (int k = 0; k < 4; k++)
		gt[k] = h0[0] * whh[k] + bhh[k] + x[0] * wih[k] + bih[k];
	double sg[4];
	for (int k = 0; k < 4; k++)
		sg[k] = 1 / (1 + exp(-gt[k]));
	double c = sg[1] * c0[0] + sg[0] * tanh(gt[2]);
	double h = sg[3] * tanh(c);
	assert_true(fabs(out[0][0] - h) < 1e-12);
	assert_true(fabs(out[2][0] - h) < 1e-12);
	assert_true(fabs(out[3][0] - c) < 1e-12);
	free_all(out, p->fwd->nouts);
	program_free(p);
	out_close(&o, d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_example),
		cmocka_unit_test(test_parse_precedence_and_slices),
		cmocka_unit_test(test_parse_recovers_per_statement),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_diag_caret_and_hint),
		cmocka_unit_test(test_diag_machine_and_cap),
		cmocka_unit_test(test_nearest),
		cmocka_unit_test(test_sema_tables),
		cmocka_unit_test(test_sema_set_gradient),
		cmocka_unit_test(test_sema_set_errors),
		cmocka_unit_test(test_sema_library_and_missing_file),
		cmocka_unit_test(test_lower_hebbian),
		cmocka_unit_test(test_lower_gradient_max_norm),
		cmocka_unit_test(test_lower_lstm),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
