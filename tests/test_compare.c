/* tests/test_compare.c -- the pieces of compiler/compare.c that need no subprocess: --vary parsing,
 * variant names and grid order, metrics.csv parsing (repeated rows after a resume, a truncated last
 * line), the best-validation step, run states on disk, compare.json round trip and the summary files.
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
#include <sys/stat.h>
#include <unistd.h>

#include "compare.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/plastc-test-compare-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void test_vary_parse(void **state)
{
	(void)state;
	CmpVary v;
	assert_true(cmp_vary_parse("eta0=0,0.1,0.2,0.4", &v));
	assert_string_equal(v.key, "eta0");
	assert_int_equal(v.nvalues, 4);
	assert_string_equal(v.values[0], "0");
	assert_string_equal(v.values[3], "0.4");
	free(v.key);
	for (size_t i = 0; i < v.nvalues; i++)
		free(v.values[i]);
	free(v.values);
	assert_false(cmp_vary_parse("eta0", &v));
	assert_false(cmp_vary_parse("=1,2", &v));
	assert_false(cmp_vary_parse("1x=1,2", &v));
	assert_false(cmp_vary_parse("eta0=1,,2", &v));
	assert_false(cmp_vary_parse("eta0=1,2,", &v));
	assert_false(cmp_vary_parse("eta0=1,1", &v));
}

static void test_safe_name(void **state)
{
	(void)state;
	char *s = cmp_safe_name("a/b c*d-0.1+e_f");
	assert_string_equal(s, "a_b_c_d-0.1+e_f");
	free(s);
	s = cmp_safe_name("..");
	assert_string_equal(s, "_.");
	free(s);
}

static CmpSpec two_by_two(void)
{
	CmpSpec s = { 0 };
	s.nmodels = 2;
	s.models = calloc(2, sizeof *s.models);
	s.models[0] = strdup("models/cue_reward/rnn_hebbian.plast");
	s.models[1] = strdup("lstm_gradient.plast");
	s.task = strdup("cue_reward");
	s.seeds = 2;
	s.steps = 100;
	s.nvaries = 2;
	s.varies = calloc(2, sizeof *s.varies);
	assert_true(cmp_vary_parse("alpha=random,none", &s.varies[0]));
	assert_true(cmp_vary_parse("eta0=0.1,0.2,0.4", &s.varies[1]));
	s.out = strdup(tmpdir);
	return s;
}

static void test_grid_names(void **state)
{
	(void)state;
	CmpSpec s = two_by_two();
	CmpGrid g;
	assert_true(cmp_grid_build(&s, &g));
	assert_int_equal(g.nvariants, 2 * 2 * 3);
	/* Models outermost, the last --vary key fastest. */
	assert_string_equal(g.variants[0].name, "rnn_hebbian.alpha-random.eta0-0.1");
	assert_string_equal(g.variants[1].name, "rnn_hebbian.alpha-random.eta0-0.2");
	assert_string_equal(g.variants[3].name, "rnn_hebbian.alpha-none.eta0-0.1");
	assert_string_equal(g.variants[6].name, "lstm_gradient.alpha-random.eta0-0.1");
	assert_string_equal(g.variants[11].settings[0], "alpha=none");
	assert_string_equal(g.variants[11].settings[1], "eta0=0.4");
	assert_int_equal(g.variants[11].model, 1);
	char *d = cmp_run_dir(&g, 1, 1);
	char want[512];
	snprintf(want, sizeof want, "%s/rnn_hebbian.alpha-random.eta0-0.2/seed-1", tmpdir);
	assert_string_equal(d, want);
	free(d);
	cmp_grid_free(&g);
	cmp_spec_free(&s);
}

static void test_grid_clashes(void **state)
{
	(void)state;
	/* Two models named alike in different folders get their folder in front. */
	CmpSpec s = { 0 };
	s.nmodels = 2;
	s.models = calloc(2, sizeof *s.models);
	s.models[0] = strdup("models/copy/lstm_hebbian.plast");
	s.models[1] = strdup("models/regression/lstm_hebbian.plast");
	s.seeds = 1;
	s.out = strdup(tmpdir);
	CmpGrid g;
	assert_true(cmp_grid_build(&s, &g));
	assert_string_equal(g.variants[0].name, "copy-lstm_hebbian");
	assert_string_equal(g.variants[1].name, "regression-lstm_hebbian");
	cmp_grid_free(&g);
	/* The same model twice is refused. */
	free(s.models[1]);
	s.models[1] = strdup("models/copy/lstm_hebbian.plast");
	assert_false(cmp_grid_build(&s, &g));
	cmp_spec_free(&s);
}

static void test_metrics(void **state)
{
	(void)state;
	char p[512];
	snprintf(p, sizeof p, "%s/metrics.csv", tmpdir);
	/* Columns in another order, a resume that repeats steps 20 and 30 with new values (the last wins),
	 * and a last line cut short. */
	write_file(p, "split,step,seconds,metric,loss\n"
		"train,0,0.1,0.9,0.9\nval,0,0.2,0.8,0.81\n"
		"val,10,1.0,0.5,0.51\nval,20,2.0,0.4,0.41\nval,30,3.0,0.45,0.46\n"
		"val,20,2.5,0.3,0.31\nval,30,3.5,0.35,0.36\nval,40,4.5,0.36,0.37\n"
		"test,40,5.0,0.33,0.34\nval,5");
	CmpMetrics m;
	assert_true(cmp_metrics_load(p, &m));
	assert_int_equal(m.nval, 5);
	long steps[] = { 0, 10, 20, 30, 40 };
	double vals[] = { 0.8, 0.5, 0.3, 0.35, 0.36 };
	for (int i = 0; i < 5; i++) {
		assert_int_equal(m.val_step[i], steps[i]);
		assert_true(fabs(m.val_metric[i] - vals[i]) < 1e-12);
	}
	assert_true(m.has_test);
	assert_true(fabs(m.test_metric - 0.33) < 1e-12);
	assert_true(fabs(m.test_loss - 0.34) < 1e-12);
	assert_true(fabs(m.seconds - 5.0) < 1e-12);
	assert_int_equal(m.last_step, 40);
	assert_int_equal(cmp_metrics_best_val_step(&m, CMP_GOAL_MIN), 20);
	assert_int_equal(cmp_metrics_best_val_step(&m, CMP_GOAL_MAX), 0);
	cmp_metrics_free(&m);

	write_file(p, "step,split,loss,metric,seconds\n0,train,1,1,0\n");
	assert_true(cmp_metrics_load(p, &m));
	assert_false(m.has_test);
	assert_int_equal(m.nval, 0);
	assert_int_equal(cmp_metrics_best_val_step(&m, CMP_GOAL_MIN), -1);
	cmp_metrics_free(&m);

	write_file(p, "no,header,here\n1,2,3\n");
	assert_false(cmp_metrics_load(p, &m));
	cmp_metrics_free(&m);
	unlink(p);
	assert_false(cmp_metrics_load(p, &m));
	cmp_metrics_free(&m);
}

static void test_run_state(void **state)
{
	(void)state;
	char d[512], p[600];
	snprintf(d, sizeof d, "%s/run", tmpdir);
	mkdir(d, 0777);
	assert_int_equal(cmp_run_state(d), CMP_RUN_FRESH);
	snprintf(p, sizeof p, "%s/metrics.csv", d);
	write_file(p, "step,split,loss,metric,seconds\n0,val,1,1,0\n");
	assert_int_equal(cmp_run_state(d), CMP_RUN_FRESH);
	snprintf(p, sizeof p, "%s/checkpoint.safetensors", d);
	write_file(p, "x");
	assert_int_equal(cmp_run_state(d), CMP_RUN_RESUME);
	snprintf(p, sizeof p, "%s/metrics.csv", d);
	write_file(p, "step,split,loss,metric,seconds\n0,val,1,1,0\n10,test,1,1,1\n");
	assert_int_equal(cmp_run_state(d), CMP_RUN_DONE);
	snprintf(p, sizeof p, "%s/done", d);
	write_file(p, "diverged\n");
	assert_int_equal(cmp_run_state(d), CMP_RUN_DIVERGED);
	write_file(p, "ok\n");
	assert_int_equal(cmp_run_state(d), CMP_RUN_DONE);
}

/* A grid written by hand: the summary must count, average and pair exactly these numbers. */
static void test_summary_files(void **state)
{
	(void)state;
	CmpSpec s = { 0 };
	s.nmodels = 1;
	s.models = calloc(1, sizeof *s.models);
	s.models[0] = strdup("m.plast");
	s.task = strdup("regression");
	s.seeds = 4;
	s.steps = 10;
	s.nvaries = 1;
	s.varies = calloc(1, sizeof *s.varies);
	assert_true(cmp_vary_parse("rule=hebbian,gradient", &s.varies[0]));
	s.out = strdup(tmpdir);
	CmpGrid g;
	assert_true(cmp_grid_build(&s, &g));
	/* hebbian: test metrics 1, 2, 3, 4; gradient: 2, 2, 5, 5 except seed 3 diverged. */
	double tm[2][4] = { { 1, 2, 3, 4 }, { 2, 2, 5, 5 } };
	for (size_t v = 0; v < 2; v++)
		for (int sd = 0; sd < 4; sd++) {
			char *dir = cmp_run_dir(&g, v, sd), p[700];
			snprintf(p, sizeof p, "mkdir -p '%s'", dir);
			assert_int_equal(system(p), 0);
			snprintf(p, sizeof p, "%s/metrics.csv", dir);
			char text[300];
			snprintf(text, sizeof text, "step,split,loss,metric,seconds\n0,val,9,9,0\n%d,val,1,1,1\n10,val,2,2,2\n"
				"10,test,%g,%g,%d\n", 2 + sd, tm[v][sd], tm[v][sd], 10 + sd);
			write_file(p, text);
			snprintf(p, sizeof p, "%s/done", dir);
			write_file(p, v == 1 && sd == 3 ? "diverged\n" : "ok\n");
			free(dir);
		}
	assert_true(cmp_spec_save(&s, &g));
	assert_true(cmp_summary_write(&g));
	char p[600];
	snprintf(p, sizeof p, "%s/summary.csv", tmpdir);
	char *csv = slurp(p);
	assert_non_null(csv);
	assert_non_null(strstr(csv, "variant,model,rule,n,diverged,missing,mean,sd,sem,ci95_z_lo,ci95_z_hi,"
		"ci95_t_lo,ci95_t_hi,best_val_step_mean,seconds_mean\n"));
	/* mean 2.5, sd sqrt(5/3), SEM 0.645497, ±1.96 SEM = ±1.26517, ±t·SEM = ±2.05426; best steps 2..5
	 * (mean 3.5), seconds 10..13 (mean 11.5). */
	assert_non_null(strstr(csv, "m.rule-hebbian,m.plast,hebbian,4,0,0,2.5,1.29099,0.645497,1.23483,3.76517,"
		"0.44574,4.55426,3.5,11.5\n"));
	/* gradient: seeds 0..2 only: 2, 2, 5 -> mean 3, sd sqrt(3), SEM 1. */
	assert_non_null(strstr(csv, "m.rule-gradient,m.plast,gradient,3,1,0,3,1.73205,1,1.04,4.96,"));
	snprintf(p, sizeof p, "%s/pairs.csv", tmpdir);
	char *pairs = slurp(p);
	assert_non_null(pairs);
	/* Paired on seeds 0..2: d = (-1, 0, -2): mean -1, SEM sqrt(1/3), t = -sqrt(3), df 2,
	 * p = 1 - 2·(F2(sqrt 3) - 1/2) = 1 - sqrt(3)/sqrt(5) = 0.225403. */
	assert_non_null(strstr(pairs, "a,b,n,mean_diff,sem,ci95_t_lo,ci95_t_hi,t,df,p\n"
		"m.rule-hebbian,m.rule-gradient,3,-1,0.57735,"));
	assert_non_null(strstr(pairs, ",-1.73205,2,0.225403\n"));
	snprintf(p, sizeof p, "%s/summary.md", tmpdir);
	char *md = slurp(p);
	assert_non_null(md);
	assert_non_null(strstr(md, "| m.rule-hebbian | 4 | 0 | 2.5 ± 1.265 | [0.4457, 4.554] |"));
	assert_non_null(strstr(md, "| m.rule-hebbian | m.rule-gradient | 3 | -1 |"));

	/* compare.json round trip, and refusal of a different --steps on the same directory. */
	CmpSpec back;
	assert_true(cmp_spec_load(tmpdir, &back));
	assert_string_equal(back.task, "regression");
	assert_int_equal(back.seeds, 4);
	assert_int_equal(back.steps, 10);
	assert_int_equal(back.nvaries, 1);
	assert_string_equal(back.varies[0].values[1], "gradient");
	cmp_spec_free(&back);
	s.steps = 20;
	assert_false(cmp_spec_save(&s, &g));
	cmp_grid_free(&g);
	cmp_spec_free(&s);
}

/* The trainer's run.json names the best step it selected; compare trusts it over its own reading. */
static void test_best_step_from_run_json(void **state)
{
	(void)state;
	CmpSpec s = { 0 };
	s.nmodels = 1;
	s.models = calloc(1, sizeof *s.models);
	s.models[0] = strdup("bs.plast");
	s.task = strdup("copy");
	s.seeds = 2;
	s.out = strdup(tmpdir);
	CmpGrid g;
	assert_true(cmp_grid_build(&s, &g));
	for (int sd = 0; sd < 2; sd++) {
		char *dir = cmp_run_dir(&g, 0, sd), p[700];
		snprintf(p, sizeof p, "mkdir -p '%s'", dir);
		assert_int_equal(system(p), 0);
		snprintf(p, sizeof p, "%s/metrics.csv", dir);
		write_file(p, "step,split,loss,metric,seconds\n0,val,2,2,0\n5,val,1,1,1\n10,val,1.5,1.5,2\n10,test,1,1,3\n");
		if (sd == 1) {
			snprintf(p, sizeof p, "%s/run.json", dir);
			write_file(p, "{\"format\": \"plastc-run-1\", \"result\": {\"best_step\": 10}}\n");
		}
		free(dir);
	}
	CmpVariantRuns r;
	cmp_variant_runs_load(&g, 0, &r);
	assert_int_equal(r.best_step[0], 5);
	assert_int_equal(r.best_step[1], 10);
	assert_true(cmp_run_usable(&r, 0));
	cmp_variant_runs_free(&r);
	cmp_grid_free(&g);
	cmp_spec_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vary_parse),
		cmocka_unit_test(test_safe_name),
		cmocka_unit_test(test_grid_names),
		cmocka_unit_test(test_grid_clashes),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_run_state),
		cmocka_unit_test(test_summary_files),
		cmocka_unit_test(test_best_step_from_run_json),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
