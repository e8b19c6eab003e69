/* compiler/plot.c -- learning curves and the test-metric bar chart of a compare grid, via gnuplot.
 *
 * We write plain data files and a readable script rather than piping commands into gnuplot, so a user
 * can restyle a figure by editing DIR/plots/plots.gp and running `gnuplot plots.gp` there.
 */
#include "plot.h"
#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

static void *pmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		exit(2);
	}
	return p;
}

static char *pasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = pmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* The gnuplot program: $PLASTC_GNUPLOT (tests point it at a missing file), else `gnuplot` on PATH.
 * Returns a malloc'ed path, or NULL when there is none. */
static char *find_gnuplot(void)
{
	const char *env = getenv("PLASTC_GNUPLOT");
	if (env && *env)
		return access(env, X_OK) == 0 ? pasprintf("%s", env) : NULL;
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		const char *c = strchr(path, ':');
		size_t n = c ? (size_t)(c - path) : strlen(path);
		char *cand = pasprintf("%.*s/gnuplot", (int)n, n ? path : ".");
		if (access(cand, X_OK) == 0)
			return cand;
		free(cand);
		path += n + (c != NULL);
	}
	return NULL;
}

/* gnuplot string literal: single quotes, a quote doubled. */
static void gp_str(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

/* One variant's curve block: for every validation step reached by any seed, the mean of the seeds that
 * have it, and mean ± SEM (the band collapses onto the mean where only one seed reached the step).
 * Runs that diverged are left out: their NaNs would only blank the curve. Returns the rows written. */
static size_t write_curve(FILE *f, const CmpVariantRuns *r)
{
	size_t total = 0;
	for (int s = 0; s < r->nseeds; s++)
		if (r->state[s] != CMP_RUN_DIVERGED)
			total += r->metrics[s].nval;
	long *steps = pmalloc(total * sizeof *steps);
	size_t n = 0;
	for (int s = 0; s < r->nseeds; s++)
		if (r->state[s] != CMP_RUN_DIVERGED)
			for (size_t i = 0; i < r->metrics[s].nval; i++)
				steps[n++] = r->metrics[s].val_step[i];
	qsort(steps, n, sizeof *steps, cmp_long);
	double *x = pmalloc((size_t)r->nseeds * sizeof *x);
	size_t *pos = pmalloc((size_t)r->nseeds * sizeof *pos); /* merge cursor per seed */
	size_t rows = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && steps[i] == steps[i - 1])
			continue;
		size_t k = 0;
		for (int s = 0; s < r->nseeds; s++) {
			const CmpMetrics *m = &r->metrics[s];
			if (r->state[s] == CMP_RUN_DIVERGED)
				continue;
			while (pos[s] < m->nval && m->val_step[pos[s]] < steps[i])
				pos[s]++;
			if (pos[s] < m->nval && m->val_step[pos[s]] == steps[i] && isfinite(m->val_metric[pos[s]]))
				x[k++] = m->val_metric[pos[s]];
		}
		if (k == 0)
			continue;
		double mean = stats_mean(x, k), sem = k >= 2 ? stats_sem(x, k) : 0;
		fprintf(f, "%ld %.9g %.9g %.9g %zu\n", steps[i], mean, mean - sem, mean + sem, k);
		rows++;
	}
	free(steps);
	free(x);
	free(pos);
	return rows;
}

static int run_gnuplot(const char *gnuplot, const char *dir)
{
	char *logp = pasprintf("%s/gnuplot.log", dir);
	int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		fprintf(stderr, "plastc: error: %s: cannot write: %s\n", logp, strerror(errno));
		free(logp);
		return 1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "plastc: error: cannot run gnuplot: fork: %s\n", strerror(errno));
		close(fd);
		free(logp);
		return 1;
	}
	if (pid == 0) {
		if (chdir(dir) != 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(gnuplot, gnuplot, "plots.gp", (char *)NULL);
		dprintf(2, "cannot run %s: %s\n", gnuplot, strerror(errno));
		_exit(127);
	}
	close(fd);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int rc = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "plastc: error: gnuplot failed on %s/plots.gp; its messages:\n", dir);
		FILE *lf = fopen(logp, "r");
		if (lf) {
			char buf[512];
			while (fgets(buf, sizeof buf, lf))
				fputs(buf, stderr);
			fclose(lf);
		}
		rc = 1;
	}
	free(logp);
	return rc;
}

int plot_grid(const CmpGrid *g)
{
	const CmpSpec *s = g->spec;
	char *gnuplot = find_gnuplot();
	if (!gnuplot) {
		fprintf(stderr, "plastc: error: gnuplot not found%s%s; the plots need it\n"
			"hint: install the Debian package gnuplot-nox (apt-get install gnuplot-nox), then run "
			"plastc plot %s\n", getenv("PLASTC_GNUPLOT") ? " at " : " on PATH",
			getenv("PLASTC_GNUPLOT") ? getenv("PLASTC_GNUPLOT") : "", s->out);
		return 1;
	}
	char *dir = pasprintf("%s/plots", s->out);
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		fprintf(stderr, "plastc: error: %s: cannot create directory: %s\n", dir, strerror(errno));
		free(dir);
		free(gnuplot);
		return 1;
	}
	size_t nv = g->nvariants;
	CmpVariantRuns *runs = pmalloc(nv * sizeof *runs);
	for (size_t v = 0; v < nv; v++)
		cmp_variant_runs_load(g, v, &runs[v]);

	/* Data. A variant with no points gets no block, so block numbers are remembered per variant. */
	char *cp = pasprintf("%s/curves.dat", dir), *tp = pasprintf("%s/test.dat", dir);
	FILE *cf = fopen(cp, "w"), *tf = fopen(tp, "w");
	int *block = pmalloc(nv * sizeof *block);
	int nblocks = 0, nbars = 0;
	double ymax = 0, ymin = 0; /* the bars start at 0, so the range always includes it */
	if (cf && tf) {
		fputs("# plastc compare: validation metric per step, over seeds: step mean mean-SEM mean+SEM n\n", cf);
		fputs("# plastc compare: test metric per variant: index name mean 1.96*SEM n\n", tf);
		for (size_t v = 0; v < nv; v++) {
			/* The block goes to memory first: a variant without points must leave no empty block. */
			char *buf = NULL;
			size_t len = 0;
			FILE *mf = open_memstream(&buf, &len);
			if (!mf) {
				fprintf(stderr, "plastc: internal error: out of memory\n");
				exit(2);
			}
			size_t rows = write_curve(mf, &runs[v]);
			fclose(mf);
			block[v] = -1;
			if (rows > 0) {
				fprintf(cf, "%s# %s\n%s", nblocks ? "\n\n" : "", g->variants[v].name, buf);
				block[v] = nblocks++;
			}
			free(buf);
			double *x = pmalloc((size_t)s->seeds * sizeof *x);
			size_t n = 0;
			for (int sd = 0; sd < s->seeds; sd++)
				if (cmp_run_usable(&runs[v], sd))
					x[n++] = runs[v].metrics[sd].test_metric;
			if (n > 0) {
				StatsSummary st = stats_summary(x, n);
				double half = n >= 2 ? STATS_Z95 * st.sem : 0;
				/* The label carries n: a bar over fewer seeds (diverged or unfinished runs) must say so. */
				fprintf(tf, "%d \"%s (n=%zu)\" %.9g %.9g %zu\n", nbars++, g->variants[v].name, n, st.mean, half,
					n);
				ymax = fmax(ymax, st.mean + half);
				ymin = fmin(ymin, st.mean - half);
			}
			free(x);
		}
	}
	bool ok = cf && tf;
	if (cf)
		ok = fclose(cf) == 0 && ok;
	if (tf)
		ok = fclose(tf) == 0 && ok;
	if (!ok)
		fprintf(stderr, "plastc: error: %s: cannot write the plot data\n", dir);
	int rc = ok ? 0 : 1;
	if (ok && nblocks == 0 && nbars == 0) {
		fprintf(stderr, "plastc: error: %s: no run has validation or test rows yet; nothing to plot\n", s->out);
		rc = 1;
	}

	if (rc == 0) {
		char *gp = pasprintf("%s/plots.gp", dir);
		FILE *f = fopen(gp, "w");
		if (!f) {
			fprintf(stderr, "plastc: error: %s: cannot write: %s\n", gp, strerror(errno));
			rc = 1;
		} else {
			fputs("# plots.gp -- written by plastc plot; edit and rerun with `gnuplot plots.gp` in this folder.\n"
				"set encoding utf8\nset grid\nset key outside right top noenhanced\n"
				"set style fill transparent solid 0.2 noborder\n", f);
			if (nblocks > 0) {
				fprintf(f, "\n# Learning curves: validation metric, mean over seeds, band = ±1 SEM.\n"
					"set title 'task %s: validation metric (mean over seeds, band ±1 SEM)' noenhanced\n"
					"set xlabel 'training step'\nset ylabel 'validation metric (%s is better)'\n%s",
					s->task, s->goal == CMP_GOAL_MIN ? "lower" : "higher",
					s->logy ? "set logscale y\n" : "unset logscale y\n");
				fputs("plot \\\n", f);
				int k = 0;
				for (size_t v = 0; v < nv; v++) {
					if (block[v] < 0)
						continue;
					fprintf(f, "  'curves.dat' index %d using 1:3:4 with filledcurves lc %d notitle, \\\n",
						block[v], k + 1);
					fprintf(f, "  'curves.dat' index %d using 1:2 with lines lc %d lw 2 title ", block[v], k + 1);
					gp_str(f, g->variants[v].name);
					k++;
					fputs(k < nblocks ? ", \\\n" : "\n", f);
				}
				fputs("set terminal pngcairo size 1200,700 font 'sans,11'\nset output 'curves.png'\nreplot\n"
					"set terminal svg size 1200,700 dynamic font 'sans,11'\nset output 'curves.svg'\nreplot\n"
					"unset output\nunset logscale y\n", f);
			}
			if (nbars > 0) {
				fprintf(f, "\n# Test metric: bar = mean over seeds, error bar = ±1.96 SEM (the reference's 95%%).\n"
					"set terminal pngcairo size 1200,700 font 'sans,11'\nset output 'test.png'\n"
					"set title 'task %s: test metric of the best-validation checkpoint (mean ± 1.96 SEM)' noenhanced\n"
					"set xlabel ''\nset ylabel 'test metric (%s is better)'\nunset key\n"
					"set style fill solid 0.6 border -1\nset boxwidth 0.6\n"
					"set xtics rotate by -30 left noenhanced\nset bmargin 12\nset rmargin 24\nset xrange [-0.6:%d-0.4]\nset yrange [%.9g:%.9g]\n"
					"plot 'test.dat' using 1:3:xtic(2) with boxes lc 3, '' using 1:3:4 with yerrorbars lc -1 "
					"pt 7 ps 0.4 lw 1.5\n"
					"set terminal svg size 1200,700 dynamic font 'sans,11'\nset output 'test.svg'\nreplot\n"
					"unset output\n", s->task, s->goal == CMP_GOAL_MIN ? "lower" : "higher", nbars,
					ymin * 1.1, ymax > 0 || ymin < 0 ? ymax * 1.1 : 1);
			}
			if (fclose(f) != 0)
				rc = 1;
		}
		free(gp);
	}
	if (rc == 0)
		rc = run_gnuplot(gnuplot, dir);
	if (rc == 0) {
		if (nblocks)
			printf("plastc: wrote %s/curves.png and %s/curves.svg\n", dir, dir);
		if (nbars)
			printf("plastc: wrote %s/test.png and %s/test.svg\n", dir, dir);
	}
	for (size_t v = 0; v < nv; v++)
		cmp_variant_runs_free(&runs[v]);
	free(runs);
	free(block);
	free(cp);
	free(tp);
	free(dir);
	free(gnuplot);
	return rc;
}
