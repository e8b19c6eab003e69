/* compiler/cmd_build.c -- plastc emit-c, build, train, eval (and emit-llvm's entry): generated C, the
 * per-model binary, and the model cache.
 *
 * build: the Program's C (emit_c.c) is compiled by the system C compiler ($CC, else cc) and linked with
 * the runtime (libplastrt.a), OpenBLAS, jansson, zlib and libm into a standalone binary whose main is
 * pl_main. The runtime is found, in order: $PLASTC_RUNTIME_DIR (a directory holding plastrt.h and
 * libplastrt.a, or include/ and lib/ below it); the build tree when this plastc runs from it
 * (PLASTC_ABS_BUILDDIR); the installed include and lib directories.
 *
 * train / eval: the binary is built into a cache, $XDG_CACHE_HOME/plastc (else ~/.cache/plastc, or
 * --cache DIR), in an entry named by a 64-bit key over everything that determines the binary: the
 * compiler version, the backend, the model hash (sources and --set values), the generated C text, the
 * compile command and the runtime library's size and mtime. A hit costs one front-end run and no
 * compile. A miss compiles to a temporary name in the entry and rename()s it into place, so concurrent
 * runs never see a half-written binary. Then this process execs `BIN train|eval ARGS...`.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "emit_c.h"
#include "frontend.h"

/* The LLVM backend (branch llvm) plugs in when it is built; without it --backend llvm is a user error. */
#if defined(HAVE_LLVM) && defined(__has_include)
#if __has_include("cmd_llvm.h") && __has_include("emit_llvm.h")
#include "autodiff.h"
#include "cmd_llvm.h"
#include "emit_llvm.h"
#include "lower.h"
#include "opt.h"
#define CMD_HAVE_LLVM 1
#endif
#endif

extern char **environ;

#ifndef PLASTC_BLAS_CFLAGS
#define PLASTC_BLAS_CFLAGS ""
#endif
#ifndef PLASTC_BLAS_LIBS
#define PLASTC_BLAS_LIBS "-lopenblas"
#endif
#ifndef PLASTC_JANSSON_LIBS
#define PLASTC_JANSSON_LIBS "-ljansson"
#endif
#ifndef PLASTC_SAN_CFLAGS
#define PLASTC_SAN_CFLAGS ""
#endif
#ifndef PLASTC_INCLUDEDIR
#define PLASTC_INCLUDEDIR "/usr/local/include"
#endif
#ifndef PLASTC_LIBDIR
#define PLASTC_LIBDIR "/usr/local/lib"
#endif
/* Built --with-mpi: binaries link the MPI runtime (runtime/mpi.mk) and MPI's libraries, so
 * `mpirun -np N BIN train ...` (or `mpirun -np N plastc train ...`, which execs BIN) trains data-parallel. */
#ifdef PLASTC_WITH_MPI
#define RT_LIB "libplastrt_mpi.a"
#else
#define RT_LIB "libplastrt.a"
#define PLASTC_MPI_LIBS ""
#endif

/* The flags every model is compiled with: gcc -O3 vectorises the generated loops for the host, and
 * -fopenmp-simd honours the `omp simd reduction` pragmas without linking OpenMP. */
static const char *const model_cflags[] = {"-std=c11", "-O3", "-march=native", "-fopenmp-simd",
	"-fno-math-errno", NULL};

/* ---- small utilities ---- */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		exit(2);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = xmalloc(n);
	memcpy(d, s, n);
	return d;
}

/* A growing NULL-terminated argument vector that owns its strings. */
typedef struct Argv {
	char **v;
	int n, cap;
} Argv;

static void argv_push(Argv *a, const char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? 2 * a->cap : 32;
		char **v = realloc(a->v, sizeof *v * (size_t)a->cap);
		if (!v) {
			fprintf(stderr, "plastc: internal error: out of memory\n");
			exit(2);
		}
		a->v = v;
	}
	a->v[a->n++] = xstrdup(s);
	a->v[a->n] = NULL;
}

/* pushes the whitespace-separated words of s */
static void argv_split(Argv *a, const char *s)
{
	while (s && *s) {
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		size_t n = strcspn(s, " \t\n");
		if (n == 0)
			break;
		char *w = xmalloc(n + 1);
		memcpy(w, s, n);
		w[n] = 0;
		argv_push(a, w);
		free(w);
		s += n;
	}
}

static void argv_free(Argv *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof *a);
}

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* 64-bit FNV-1a, continued from h */
static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s ? s : "", strlen(s ? s : "") + 1); /* the NUL separates fields */
}

/* mkdir -p */
static int make_dirs(const char *path)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return -1;
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(buf, 0777) != 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	if (mkdir(buf, 0777) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Writes len bytes to path atomically (a temporary name in the same directory, then rename). */
static int write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	bool ok = fwrite(data, 1, len, f) == len;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Runs argv (no shell); returns its exit status, or -1 if it could not start. */
static int run(char *const *argv, bool verbose)
{
	if (verbose) {
		fprintf(stderr, "plastc:");
		for (int i = 0; argv[i]; i++)
			fprintf(stderr, " %s", argv[i]);
		fputc('\n', stderr);
	}
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
	if (rc != 0) {
		fprintf(stderr, "plastc: error: cannot run %s: %s\n", argv[0], strerror(rc));
		return -1;
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- the runtime and the compile command ---- */

typedef struct Runtime {
	char inc[PATH_MAX]; /* directory of plastrt.h */
	char lib[PATH_MAX]; /* path of libplastrt.a */
} Runtime;

static bool try_runtime(Runtime *rt, const char *inc, const char *lib)
{
	char h[PATH_MAX + 16];
	snprintf(h, sizeof h, "%s/plastrt.h", inc);
	if (!is_file(h) || !is_file(lib))
		return false;
	snprintf(rt->inc, sizeof rt->inc, "%s", inc);
	snprintf(rt->lib, sizeof rt->lib, "%s", lib);
	return true;
}

/* Is this process the plastc of the build tree? (Then its runtime is the build tree's too.) */
static bool running_from_build_tree(void)
{
	char exe[PATH_MAX], dir[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return false;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = 0;
	if (!realpath(PLASTC_ABS_BUILDDIR, dir))
		return false;
	return strcmp(exe, dir) == 0;
}

static int find_runtime(Runtime *rt)
{
	char inc[PATH_MAX], lib[PATH_MAX];
	const char *env = getenv("PLASTC_RUNTIME_DIR");
	if (env && env[0]) {
		snprintf(lib, sizeof lib, "%s/" RT_LIB, env);
		if (try_runtime(rt, env, lib))
			return 0;
		snprintf(inc, sizeof inc, "%s/include", env);
		snprintf(lib, sizeof lib, "%s/lib/" RT_LIB, env);
		if (try_runtime(rt, inc, lib))
			return 0;
		fprintf(stderr, "plastc: error: PLASTC_RUNTIME_DIR=%s: no plastrt.h and " RT_LIB " there (nor in "
				"include/ and lib/)\n", env);
		return -1;
	}
	bool tree_first = running_from_build_tree();
	for (int pass = 0; pass < 2; pass++) {
		if ((pass == 0) == tree_first) {
			snprintf(inc, sizeof inc, "%s/runtime", PLASTC_ABS_SRCDIR);
			snprintf(lib, sizeof lib, "%s/runtime/" RT_LIB, PLASTC_ABS_BUILDDIR);
		} else {
			snprintf(inc, sizeof inc, "%s", PLASTC_INCLUDEDIR);
			snprintf(lib, sizeof lib, "%s/" RT_LIB, PLASTC_LIBDIR);
		}
		if (try_runtime(rt, inc, lib))
			return 0;
	}
	fprintf(stderr, "plastc: error: cannot find the plastc runtime (plastrt.h and " RT_LIB ")\n"
			"hint: install plastc (make install) or set PLASTC_RUNTIME_DIR\n");
	return -1;
}

/* The compiler command up to the inputs: CC, flags, includes, -o out. */
static void compile_cmd(Argv *a, const Runtime *rt, const char *out)
{
	const char *cc = getenv("CC");
	argv_split(a, cc && cc[0] ? cc : "cc");
	for (int i = 0; model_cflags[i]; i++)
		argv_push(a, model_cflags[i]);
	argv_split(a, PLASTC_SAN_CFLAGS);
	argv_split(a, getenv("PLASTC_CFLAGS"));
	char inc[PATH_MAX + 2];
	snprintf(inc, sizeof inc, "-I%s", rt->inc);
	argv_push(a, inc);
	argv_split(a, PLASTC_BLAS_CFLAGS);
	argv_push(a, "-o");
	argv_push(a, out);
}

static void link_libs(Argv *a, const Runtime *rt)
{
	argv_push(a, rt->lib);
#ifdef PLASTC_IMAGE_LIBS
	argv_split(a, PLASTC_IMAGE_LIBS); /* the runtime's image decoders (libpng, libjpeg) */
#endif
	argv_split(a, PLASTC_BLAS_LIBS);
	argv_split(a, PLASTC_JANSSON_LIBS);
	argv_push(a, "-lz");
	argv_push(a, "-lm");
	argv_push(a, "-lpthread");
	argv_split(a, PLASTC_MPI_LIBS);
}

/* ---- loading ---- */

/* The Program of file with the --set values; d must outlive it (node locations point into d). Both
 * backends compile the retimed step (retime.c; PLASTC_NO_RETIME=1 turns it off). */
static Program *load_for(const char *file, int nset, char **sets, DiagCtx *d, const char *backend)
{
	(void)backend;
	unsigned flags = FE_VJP | FE_OPT | FE_RETIME;
	Program *p = frontend_load_program_ex(file, nset, sets, d, flags);
	if (!p && diag_error_count(d) == 0)
		fprintf(stderr, "plastc: internal error: %s: the front end returned no program\n", file);
	return p;
}

static Program *load(const char *file, int nset, char **sets, DiagCtx *d)
{
	return load_for(file, nset, sets, d, "c");
}

#ifdef CMD_HAVE_LLVM
/* frontend_load_program with the time of each stage (for the LLVM backend's --time-passes): the same
 * sequence as frontend_load_program_ex(..., FE_RETIME | FE_VJP | FE_OPT). Retiming counts as lowering, the
 * VJP's retiming as autodiff. (Until the LLVM backend's merged nests took producer-consumer members, its
 * code ran the step without retime.c, which then measured 8-15 % faster there: docs/PERFORMANCE.md.) */
static Program *load_timed(const char *file, int nset, char **sets, DiagCtx *d, LlvmFrontTimes *ft)
{
	double t0 = emitll_now();
	Frontend *fe = frontend_parse(file, d);
	if (!fe)
		return NULL;
	Program *p = NULL;
	SemaModel *m = diag_error_count(d) == 0 ? frontend_check(fe, nset, sets, d) : NULL;
	double t1 = emitll_now();
	if (m) {
		p = lower_model(m, file, d);
		if (p)
			frontend_hash(fe, p->settings, p->hash);
	} else if (diag_error_count(d) == 0) {
		SrcSpan none = {0};
		diag_emit(d, DIAG_ERROR, none, NULL, "this command needs a file with a `model NAME { ... }`",
			"%s: no model in this file", file);
	}
	int nret = p ? frontend_retime(p) : 0;
	double t2 = emitll_now();
	if (p && ad_step_vjp(p, stderr) != 0)
		ir_fatal("autodiff failed on model '%s'", p->name);
	if (p)
		frontend_retime_vjp(p, nret);
	double t3 = emitll_now();
	if (p) {
		opt_run(p->fwd, NULL);
		if (p->fwd_eval)
			opt_run(p->fwd_eval, NULL);
		if (p->vjp)
			opt_run(p->vjp, NULL);
	}
	double t4 = emitll_now();
	frontend_free(fe);
	ft->parse = t1 - t0;
	ft->lower = t2 - t1;
	ft->autodiff = t3 - t2;
	ft->opt = t4 - t3;
	if (!p && diag_error_count(d) == 0)
		fprintf(stderr, "plastc: internal error: %s: the front end returned no program\n", file);
	return p;
}
#endif

/* Options shared by the commands of this file. Unknown arguments are kept in rest (train/eval pass
 * them on to the binary; the others reject them). */
typedef struct Opts {
	const char *file, *out, *backend, *cache;
	char **sets;
	int nset;
	bool rebuild, verbose, dbl, main, no_line, no_fuse, no_loop_fuse, keep_c;
	Argv rest;
} Opts;

static bool is_plast(const char *a)
{
	size_t n = strlen(a);
	return n > 6 && strcmp(a + n - 6, ".plast") == 0;
}

/* Returns 0, or 1 after a usage error. With pass_rest, unknown arguments go to o->rest (train, eval,
 * emit-llvm hand them on); without, they are errors. */
static int parse_opts(const char *cmd, int argc, char **argv, Opts *o, bool pass_rest)
{
	memset(o, 0, sizeof *o);
	o->backend = "c";
	for (int i = 1; i < argc;) {
		const char *v;
		int r = cmd_opt_set(argc, argv, &i, &o->sets, &o->nset);
		if (r < 0)
			return 1;
		if (r)
			continue;
		if ((r = cmd_opt(argc, argv, &i, "--backend", &o->backend)) != 0) {
			if (r < 0)
				return 1;
			if (strcmp(o->backend, "c") != 0 && strcmp(o->backend, "llvm") != 0)
				return cmd_usage_error(cmd, "unknown backend '%s' (c or llvm)", o->backend);
			continue;
		}
		if ((r = cmd_opt(argc, argv, &i, "--cache", &o->cache)) != 0) {
			if (r < 0)
				return 1;
			continue;
		}
		if (!pass_rest && (r = cmd_opt(argc, argv, &i, "-o", &v)) != 0) {
			if (r < 0)
				return 1;
			o->out = v;
			continue;
		}
		const char *a = argv[i];
		if (strcmp(a, "--rebuild") == 0) {
			o->rebuild = true;
		} else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
			o->verbose = true;
		} else if (!pass_rest && strcmp(a, "--double") == 0) {
			o->dbl = true;
		} else if (!pass_rest && strcmp(a, "--main") == 0) {
			o->main = true;
		} else if (!pass_rest && strcmp(a, "--no-line") == 0) {
			o->no_line = true;
		} else if (!pass_rest && strcmp(a, "--no-fuse") == 0) {
			o->no_fuse = true;
		} else if (!pass_rest && strcmp(a, "--no-loop-fuse") == 0) {
			o->no_loop_fuse = true;
		} else if (!pass_rest && strcmp(a, "--keep-c") == 0) {
			o->keep_c = true;
		} else if (!o->file && a[0] != '-' && (!pass_rest || i == 1 || is_plast(a))) {
			/* train/eval pass flags with values on: there FILE is the first argument or a .plast */
			o->file = a;
		} else if (pass_rest) {
			argv_push(&o->rest, a);
		} else {
			return cmd_usage_error(cmd, "unknown option '%s'", a);
		}
		i++;
	}
	if (!o->file)
		return cmd_usage_error(cmd, "no FILE given");
	return 0;
}

static void opts_free(Opts *o)
{
	free(o->sets);
	argv_free(&o->rest);
}

/* ---- emit-c ---- */

int cmd_emit_c(int argc, char **argv)
{
	Opts o;
	int rc = parse_opts("emit-c", argc, argv, &o, false);
	if (rc) {
		opts_free(&o);
		return rc;
	}
	DiagCtx *d = diag_ctx_new(stderr);
	Program *p = load(o.file, o.nset, o.sets, d);
	if (!p) {
		rc = diag_error_count(d) ? 1 : 2;
	} else {
		EmitcOptions eo = {.main = o.main, .use_double = o.dbl, .no_line = o.no_line, .no_fuse = o.no_fuse,
			.no_loop_fuse = o.no_loop_fuse};
		rc = emitc_write(p, &eo, o.out ? o.out : "-", stderr);
	}
	program_free(p);
	diag_ctx_free(d);
	opts_free(&o);
	return rc;
}

/* ---- building a binary ---- */

/* Emits p's C (with main) into c_path and compiles it to bin. Returns 0, 1 (user-visible failure such
 * as an unwritable path), 2 (internal: the generated code did not compile). */
static int build_c(const Program *p, const Runtime *rt, const char *c_path, const char *c_name, const char *bin,
	bool verbose)
{
	EmitcOptions eo = {.main = true, .c_name = c_name};
	int rc = emitc_write(p, &eo, c_path, stderr);
	if (rc)
		return rc;
	Argv a = {0};
	compile_cmd(&a, rt, bin);
	argv_push(&a, c_path);
	link_libs(&a, rt);
	int st = run(a.v, verbose);
	argv_free(&a);
	if (st != 0) {
		fprintf(stderr, "plastc: internal error: the C compiler failed on the generated code (%s)\n"
				"hint: run with --verbose to see the command\n", c_path);
		return 2;
	}
	return 0;
}

#ifdef CMD_HAVE_LLVM
/* The LLVM backend's object file linked the same way. */
static int build_llvm(const Program *p, const Runtime *rt, const char *obj, const char *bin, bool verbose,
	bool no_loop_fuse)
{
	int rc = emitll_object(p, obj, EMITLL_MAIN | (no_loop_fuse ? EMITLL_NO_LOOP_FUSE : 0u), NULL, stderr);
	if (rc)
		return rc;
	Argv a = {0};
	compile_cmd(&a, rt, bin);
	argv_push(&a, obj);
	link_libs(&a, rt);
	int st = run(a.v, verbose);
	argv_free(&a);
	if (st != 0) {
		fprintf(stderr, "plastc: internal error: linking the LLVM object %s failed\n", obj);
		return 2;
	}
	return 0;
}
#endif

#ifndef CMD_HAVE_LLVM
static int no_llvm(const char *cmd)
{
	fprintf(stderr, "plastc: error: %s: this plastc was built without the LLVM backend\n"
			"hint: use --backend c\n", cmd);
	return 1;
}
#endif

/* A private temporary directory for intermediate files (removed by rm_tmpdir). */
static int make_tmpdir(char *dir, size_t n)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, n, "%s/plastc-XXXXXX", t && t[0] ? t : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "plastc: error: cannot create a temporary directory in %s: %s\n",
			t && t[0] ? t : "/tmp", strerror(errno));
		return -1;
	}
	return 0;
}

static void rm_tmpdir(const char *dir, const char *const *files)
{
	char path[PATH_MAX + 64];
	for (int i = 0; files[i]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

int cmd_build(int argc, char **argv)
{
	Opts o;
	int rc = parse_opts("build", argc, argv, &o, false);
	if (rc == 0 && !o.out)
		rc = cmd_usage_error("build", "no output given (-o BIN)");
	if (rc) {
		opts_free(&o);
		return rc;
	}
#ifndef CMD_HAVE_LLVM
	if (strcmp(o.backend, "llvm") == 0) {
		opts_free(&o);
		return no_llvm("build");
	}
#endif
	Runtime rt;
	if (find_runtime(&rt) != 0) {
		opts_free(&o);
		return 1;
	}
	DiagCtx *d = diag_ctx_new(stderr);
	Program *p = load_for(o.file, o.nset, o.sets, d, o.backend);
	char tmp[PATH_MAX], src[PATH_MAX + 32], bin[PATH_MAX + 32];
	if (!p) {
		rc = diag_error_count(d) ? 1 : 2;
	} else if (make_tmpdir(tmp, sizeof tmp) != 0) {
		rc = 1;
	} else {
		/* link to a temporary name next to the target, then rename: BIN is never half-written */
		snprintf(bin, sizeof bin, "%s.tmp.%ld", o.out, (long)getpid());
		if (strcmp(o.backend, "c") == 0) {
			if (o.keep_c)
				snprintf(src, sizeof src, "%s.c", o.out);
			else
				snprintf(src, sizeof src, "%s/model.c", tmp);
			rc = build_c(p, &rt, src, NULL, bin, o.verbose);
		} else {
#ifdef CMD_HAVE_LLVM
			snprintf(src, sizeof src, "%s/model.o", tmp);
			rc = build_llvm(p, &rt, src, bin, o.verbose, o.no_loop_fuse);
#endif
		}
		if (rc == 0 && rename(bin, o.out) != 0) {
			fprintf(stderr, "plastc: error: %s: %s\n", o.out, strerror(errno));
			rc = 1;
		}
		if (rc != 0)
			unlink(bin);
		const char *files[] = {"model.c", "model.o", NULL};
		rm_tmpdir(tmp, files);
	}
	program_free(p);
	diag_ctx_free(d);
	opts_free(&o);
	return rc;
}

/* ---- the model cache ---- */

static int cache_root(const Opts *o, char *buf, size_t n)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	if (o->cache)
		snprintf(buf, n, "%s", o->cache);
	else if (xdg && xdg[0] == '/')
		snprintf(buf, n, "%s/plastc", xdg);
	else if (home && home[0])
		snprintf(buf, n, "%s/.cache/plastc", home);
	else {
		fprintf(stderr, "plastc: error: no cache directory (set XDG_CACHE_HOME or HOME, or use --cache DIR)\n");
		return -1;
	}
	return 0;
}

/* Builds p into the cache unless an identical build is there; bin receives the binary's path.
 * Returns 0, 1 or 2. */
static int cached_binary(const Program *p, const Opts *o, char *bin, size_t nbin)
{
	Runtime rt;
	char root[PATH_MAX], entry[PATH_MAX + 64], pre[128];
	if (find_runtime(&rt) != 0 || cache_root(o, root, sizeof root) != 0)
		return 1;
	emitc_symbol_prefix(p, pre, sizeof pre);

	/* the generated C, as it will be written (its #line directives name "model.c", the entry's file) */
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	if (!m) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		return 2;
	}
	EmitcOptions eo = {.main = true, .c_name = "model.c"};
	int rc = strcmp(o->backend, "c") == 0 ? emitc_program(p, &eo, m, stderr) : 0;
	fclose(m);
	if (rc) {
		free(text);
		return rc;
	}

	uint64_t h = 0xcbf29ce484222325ull;
	h = fnv_str(h, PACKAGE_VERSION);
	h = fnv_str(h, o->backend);
	h = fnv_str(h, p->hash);
	h = fnv(h, text, len);
	if (strcmp(o->backend, "llvm") == 0) {
		/* the LLVM object is not in the key's text: its loop-merging switch is (emitll_module) */
		const char *nlf = getenv("PLASTC_NO_LOOP_FUSE");
		h = fnv_str(h, o->no_loop_fuse || (nlf && nlf[0] && strcmp(nlf, "0") != 0) ? "no-loop-fuse" : "");
	}
	Argv a = {0};
	compile_cmd(&a, &rt, "BIN");
	link_libs(&a, &rt);
	for (int i = 0; i < a.n; i++)
		h = fnv_str(h, a.v[i]);
	argv_free(&a);
	struct stat st;
	if (stat(rt.lib, &st) == 0) {
		int64_t id[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec};
		h = fnv(h, id, sizeof id);
	}
	if (snprintf(entry, sizeof entry, "%s/%s-%016llx", root, pre, (unsigned long long)h) >= (int)sizeof entry ||
		snprintf(bin, nbin, "%s/%s", entry, pre) >= (int)nbin) {
		fprintf(stderr, "plastc: error: %s: cache path too long\n", root);
		free(text);
		return 1;
	}

	if (!o->rebuild && access(bin, X_OK) == 0) {
		fprintf(stderr, "plastc: using cached model binary %s\n", bin);
		free(text);
		return 0;
	}
	if (make_dirs(entry) != 0) {
		fprintf(stderr, "plastc: error: cannot create the cache directory %s: %s\n", entry, strerror(errno));
		free(text);
		return 1;
	}
	char tmpbin[PATH_MAX + 200], src[PATH_MAX + 80];
	if (snprintf(tmpbin, sizeof tmpbin, "%s/.%s.tmp.%ld", entry, pre, (long)getpid()) >= (int)sizeof tmpbin) {
		fprintf(stderr, "plastc: error: %s: cache path too long\n", root);
		free(text);
		return 1;
	}
	if (strcmp(o->backend, "c") == 0) {
		snprintf(src, sizeof src, "%s/model.c", entry);
		if (write_atomic(src, text, len) != 0) {
			fprintf(stderr, "plastc: error: cannot write %s: %s\n", src, strerror(errno));
			free(text);
			return 1;
		}
		Argv c = {0};
		compile_cmd(&c, &rt, tmpbin);
		argv_push(&c, src);
		link_libs(&c, &rt);
		int s = run(c.v, o->verbose);
		argv_free(&c);
		if (s != 0) {
			fprintf(stderr, "plastc: internal error: the C compiler failed on the generated code (%s)\n", src);
			unlink(tmpbin);
			free(text);
			return 2;
		}
	} else {
#ifdef CMD_HAVE_LLVM
		if (snprintf(src, sizeof src, "%s/.model.o.tmp.%ld", entry, (long)getpid()) >= (int)sizeof src) {
			free(text);
			return 1;
		}
		rc = build_llvm(p, &rt, src, tmpbin, o->verbose, o->no_loop_fuse);
		unlink(src);
		if (rc) {
			unlink(tmpbin);
			free(text);
			return rc;
		}
#endif
	}
	free(text);
	if (rename(tmpbin, bin) != 0) {
		fprintf(stderr, "plastc: error: cannot place %s: %s\n", bin, strerror(errno));
		unlink(tmpbin);
		return 1;
	}
	fprintf(stderr, "plastc: built model binary %s\n", bin);
	return 0;
}

int cmd_model_binary(const Program *p, const char *backend, const char *cache, bool rebuild, bool verbose,
	char *bin, size_t nbin)
{
	Opts o;
	memset(&o, 0, sizeof o);
	o.backend = backend;
	o.cache = cache;
	o.rebuild = rebuild;
	o.verbose = verbose;
	return cached_binary(p, &o, bin, nbin);
}

/* train and eval: the cached binary runs `sub ARGS...` in place of this process. */
static int run_model(const char *sub, int argc, char **argv)
{
	Opts o;
	int rc = parse_opts(sub, argc, argv, &o, true);
	if (rc) {
		opts_free(&o);
		return rc;
	}
	if (strcmp(o.backend, "llvm") == 0) {
#ifdef CMD_HAVE_LLVM
		/* the JIT runs the runtime in this process (cmd_llvm.c); no binary; the object code is cached
		 * (jit.h) in the same cache directory as the C backend's binaries */
		char root[PATH_MAX];
		if (cache_root(&o, root, sizeof root) != 0) {
			opts_free(&o);
			return 1;
		}
		if (make_dirs(root) != 0) {
			fprintf(stderr, "plastc: error: cannot create the cache directory %s: %s\n", root, strerror(errno));
			opts_free(&o);
			return 1;
		}
		JitCache jc = {.dir = root, .rebuild = o.rebuild};
		DiagCtx *d = diag_ctx_new(stderr);
		LlvmFrontTimes ft;
		Program *p = load_timed(o.file, o.nset, o.sets, d, &ft);
		rc = p ? cmd_llvm_run(p, &ft, &jc, sub, o.rest.n, o.rest.v) : (diag_error_count(d) ? 1 : 2);
		program_free(p);
		diag_ctx_free(d);
		opts_free(&o);
		return rc;
#else
		opts_free(&o);
		return no_llvm(sub);
#endif
	}
	DiagCtx *d = diag_ctx_new(stderr);
	Program *p = load(o.file, o.nset, o.sets, d);
	char bin[PATH_MAX + 200];
	if (!p)
		rc = diag_error_count(d) ? 1 : 2;
	else
		rc = cached_binary(p, &o, bin, sizeof bin);
	program_free(p);
	diag_ctx_free(d);
	if (rc) {
		opts_free(&o);
		return rc;
	}
	Argv a = {0};
	bool verbose = o.verbose;
	argv_push(&a, bin);
	argv_push(&a, sub);
	for (int i = 0; i < o.rest.n; i++)
		argv_push(&a, o.rest.v[i]);
	opts_free(&o);
	if (verbose) {
		fprintf(stderr, "plastc: exec");
		for (int i = 0; i < a.n; i++)
			fprintf(stderr, " %s", a.v[i]);
		fputc('\n', stderr);
	}
	fflush(NULL);
	execv(bin, a.v);
	fprintf(stderr, "plastc: error: cannot run %s: %s\n", bin, strerror(errno));
	argv_free(&a);
	return 1;
}

int cmd_train(int argc, char **argv)
{
	return run_model("train", argc, argv);
}

int cmd_eval(int argc, char **argv)
{
	return run_model("eval", argc, argv);
}

int cmd_bench(int argc, char **argv)
{
	return run_model("bench", argc, argv);
}

/* emit-llvm: the driver part (FILE and --set); the rest is the LLVM backend's (cmd_llvm.c). */
int cmd_emit_llvm(int argc, char **argv)
{
#ifdef CMD_HAVE_LLVM
	Opts o;
	int rc = parse_opts("emit-llvm", argc, argv, &o, true);
	if (rc) {
		opts_free(&o);
		return rc;
	}
	DiagCtx *d = diag_ctx_new(stderr);
	LlvmFrontTimes ft;
	Program *p = load_timed(o.file, o.nset, o.sets, d, &ft);
	rc = p ? cmd_llvm_emit(p, &ft, o.rest.n, o.rest.v) : (diag_error_count(d) ? 1 : 2);
	program_free(p);
	diag_ctx_free(d);
	opts_free(&o);
	return rc;
#else
	(void)argc;
	(void)argv;
	return no_llvm("emit-llvm");
#endif
}
