/* runtime/dist.c -- distributed runs over MPI ranks: who am I, deterministic sums, collectives with a
 * deadline, and the end of a run.
 *
 * Compiled twice: into libplastrt.a without MPI (PL_HAVE_MPI undefined: one rank, sums are the identity,
 * and a process started by mpirun/srun with more than one rank refuses to run, because N independent
 * copies would each train the whole run and overwrite each other's files), and into libplastrt_mpi.a
 * with MPI (./configure --with-mpi).
 *
 * MPI is initialised lazily (pl_dist_init, called by train/eval/grad) and only when a launcher started
 * the process (mpirun sets OMPI_COMM_WORLD_SIZE, srun with PMIx or PMI-2 sets PMIX_RANK or PMI_RANK), so a
 * binary linked with MPI but started by hand never touches MPI, and `plastc train` can exec a model
 * binary under mpirun before any MPI call (MPI is then initialised in the binary, keeping the rank).
 *
 * Deterministic sum (pl_dist_sum_f32): MPI_Allreduce leaves the order of additions, and whether every rank
 * gets the same bits, to the implementation's algorithm choice (which depends on the message size and
 * the number of ranks). Ranks whose parameters drift apart by one ulp per step would silently train
 * different models, so we sum ourselves: the flat gradient of G floats is cut into N contiguous slices;
 * MPI_Ialltoallv sends slice j of every rank to rank j (a reduce-scatter's traffic); rank j adds the N
 * copies of its slice in rank order 0, 1, ..., N-1; MPI_Iallgatherv gives every rank every summed slice.
 * Every slice is summed once, in a fixed order, so all ranks hold identical bits and a run with N ranks
 * is repeatable. Traffic per rank is 2 G (N-1)/N floats, the same as a bandwidth-optimal ring allreduce;
 * the extra cost is one copy into and out of a flat buffer (docs/SCALING.md measures it).
 *
 * Faults: every collective is non-blocking and polled (MPI_Test) against a deadline (--mpi-timeout,
 * default 300 s; 0 waits forever). A rank that does not arrive in time (died without mpirun noticing,
 * stopped, or on a lost node) makes the waiting ranks print which collective timed out and call
 * MPI_Abort, which ends the whole job. An MPI error is reported the same way (errors return to us:
 * MPI_ERRORS_RETURN on our communicator). A backstop alarm ends the process if MPI_Abort or MPI_Finalize
 * itself cannot complete (e.g. the launcher is gone). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "util.h"

#ifdef PL_HAVE_MPI
#include <mpi.h>
#endif

static struct {
	int started;      /* pl_dist_init ran */
	int mpi;          /* MPI is initialised and our communicators exist */
	int rank, size;
	double timeout;   /* seconds per collective; <= 0: no deadline */
	float *flat;      /* scratch of pl_dist_sum_f32, grown as needed */
	size_t flat_cap;
#ifdef PL_HAVE_MPI
	MPI_Comm comm;     /* the run's collectives */
	MPI_Comm comm_end; /* only the agreement at the end, so it cannot match a pending run collective */
#endif
} D = {0, 0, 0, 1, 300.0, NULL, 0};

/* The number of ranks a launcher says this process belongs to (1 when not launched by one). */
static long launcher_size(void)
{
	const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", NULL};
	for (int i = 0; names[i]; i++) {
		const char *v = getenv(names[i]);
		if (v && *v)
			return strtol(v, NULL, 10);
	}
	/* srun with PMIx exports PMIX_RANK but not always a size */
	if (getenv("PMIX_RANK") || getenv("PMI_RANK"))
		return 2;
	return 1;
}

int pl_dist_rank(void)
{
	return D.rank;
}

int pl_dist_size(void)
{
	return D.size;
}

int pl_dist_with_mpi(void)
{
#ifdef PL_HAVE_MPI
	return 1;
#else
	return 0;
#endif
}

void pl_dist_set_timeout(double seconds)
{
	D.timeout = seconds;
}

double pl_dist_timeout(void)
{
	return D.timeout;
}

#ifdef PL_HAVE_MPI
/* SIGALRM backstop: async-signal-safe message and _exit. */
static void alarm_exit(int sig)
{
	static const char msg[] = "plastc runtime: error: MPI did not shut down within the deadline; exiting\n";
	(void)sig;
	ssize_t w = write(2, msg, sizeof msg - 1);
	(void)w;
	_exit(PL_EXIT_DIST);
}

static void arm_backstop(double seconds)
{
	signal(SIGALRM, alarm_exit);
	alarm((unsigned)(seconds < 10 ? 10 : seconds > 3600 ? 3600 : seconds));
}
#endif

void pl_dist_abort(int rc)
{
	fflush(stdout);
	fflush(stderr);
#ifdef PL_HAVE_MPI
	if (D.mpi) {
		arm_backstop(30);
		MPI_Abort(D.comm, rc);
	}
#endif
	exit(rc);
}

#ifdef PL_HAVE_MPI
static void mpi_fail(const char *what, int err)
{
	char s[MPI_MAX_ERROR_STRING];
	int len = 0;
	if (MPI_Error_string(err, s, &len) != MPI_SUCCESS)
		snprintf(s, sizeof s, "MPI error %d", err);
	pl_err("rank %d of %d: %s: %s; aborting the run", D.rank, D.size, what, s);
	pl_dist_abort(PL_EXIT_DIST);
}

/* Waits for r, driving MPI's progress, until it completes or `timeout` seconds pass (<= 0: forever);
 * then aborts the job with exit status fail_rc. */
static void wait_req_for(MPI_Request *r, const char *what, double timeout, int fail_rc)
{
	double t0 = pl_now();
	long spins = 0;
	for (;;) {
		int done = 0, e = MPI_Test(r, &done, MPI_STATUS_IGNORE);
		if (e != MPI_SUCCESS)
			mpi_fail(what, e);
		if (done)
			return;
		if (timeout > 0 && pl_now() - t0 > timeout) {
			pl_err("rank %d of %d: %s did not complete within %g s%s: another rank died, failed, hangs, "
			       "or its node was lost; aborting the run", D.rank, D.size, what, timeout,
				timeout == D.timeout ? " (--mpi-timeout)" : "");
			pl_dist_abort(fail_rc);
		}
		/* spin first (a collective usually completes within microseconds of the last arrival), then
		 * poll every 50 us so a long wait for a slow rank does not take a core from the computation */
		if (++spins > 2000) {
			struct timespec ts = {0, 50000};
			nanosleep(&ts, NULL);
		}
	}
}

static void wait_req(MPI_Request *r, const char *what)
{
	wait_req_for(r, what, D.timeout, PL_EXIT_DIST);
}
#endif


int pl_dist_init(void)
{
	if (D.started)
		return 0;
	const char *t = getenv("PLASTC_MPI_TIMEOUT");
	if (t && *t)
		D.timeout = strtod(t, NULL);
	long n = launcher_size();
#ifndef PL_HAVE_MPI
	if (n > 1) {
		pl_err("started as one of %ld MPI ranks, but this runtime was built without MPI: every rank "
		       "would train the whole run and overwrite the others' files\n"
		       "hint: rebuild plastc with ./configure --with-mpi (then rebuild the model binary)", n);
		return -1;
	}
	D.started = 1;
	return 0;
#else
	D.started = 1;
	if (n <= 1 && !getenv("OMPI_COMM_WORLD_SIZE"))
		return 0;
	int flag = 0, provided = 0;
	MPI_Finalized(&flag);
	if (flag) {
		pl_err("MPI was already shut down in this process (one distributed command per process)");
		return -1;
	}
	MPI_Initialized(&flag);
	if (!flag && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
		pl_err("MPI_Init failed");
		return -1;
	}
	D.mpi = 1;
	/* our own communicator: our collectives cannot match anyone else's, and errors return to us */
	MPI_Comm_dup(MPI_COMM_WORLD, &D.comm);
	MPI_Comm_dup(MPI_COMM_WORLD, &D.comm_end);
	MPI_Comm_set_errhandler(D.comm, MPI_ERRORS_RETURN);
	MPI_Comm_set_errhandler(D.comm_end, MPI_ERRORS_RETURN);
	MPI_Comm_rank(D.comm, &D.rank);
	MPI_Comm_size(D.comm, &D.size);
	return 0;
#endif
}

/* The end of a run: the ranks agree on the exit status. When every rank ends with the same status (success,
 * or the same failure such as a diverged run, seen identically by all), MPI is shut down normally and
 * each returns it. When they differ (one rank failed alone, e.g. rank 0 could not write a file, while the
 * others may be waiting inside a collective) or a rank does not arrive within 30 s (10 s after a failure),
 * the job is aborted:
 * that is the only prompt way to end ranks blocked in a collective. */
int pl_dist_finish(int rc)
{
	pl_free(D.flat);
	D.flat = NULL;
	D.flat_cap = 0;
#ifdef PL_HAVE_MPI
	if (D.mpi) {
		if (D.size > 1) {
			int mine[2] = {rc, -rc}, all[2] = {0, 0};
			MPI_Request req;
			/* ranks that end alike arrive together (the last collective synchronised them); a
			 * failure ends a rank early, so a failed rank waits less for the others */
			double dl = rc != 0 ? 10 : 30;
			if (D.timeout > 0 && D.timeout < dl)
				dl = D.timeout;
			int e = MPI_Iallreduce(mine, all, 2, MPI_INT, MPI_MAX, D.comm_end, &req);
			if (e != MPI_SUCCESS)
				mpi_fail("the agreement on the exit status", e);
			wait_req_for(&req, "the agreement on the exit status", dl, rc != 0 ? rc : PL_EXIT_DIST);
			if (all[0] != -all[1]) {
				pl_err("rank %d of %d: the ranks ended differently (exit status %d here, %d elsewhere); "
				       "aborting the run", D.rank, D.size, rc, all[0] != rc ? all[0] : -all[1]);
				pl_dist_abort(all[0] > 0 ? all[0] : rc);
			}
		}
		arm_backstop(D.timeout > 0 ? D.timeout : 300);
		MPI_Comm_free(&D.comm);
		MPI_Comm_free(&D.comm_end);
		MPI_Finalize();
		alarm(0);
		D.mpi = 0;
	}
#endif
	D.started = 0;
	D.rank = 0;
	D.size = 1;
	return rc;
}

int pl_dist_sum_f32(float *const *bufs, const int64_t *lens, int n, const char *what)
{
	if (D.size == 1)
		return 0;
#ifdef PL_HAVE_MPI
	int64_t G = 0;
	for (int i = 0; i < n; i++)
		G += lens[i];
	int N = D.size;
	if (G > (int64_t)1 << 30) {
		pl_err("%s: %lld floats are too many for one exchange", what, (long long)G);
		return -1;
	}
	/* flat: [G] this rank's values, then [N * Lmax] the copies of our slice, then [G] the result */
	int64_t Lmax = (G + N - 1) / N + 1;
	size_t need = (size_t)(2 * G + (int64_t)N * Lmax);
	if (need > D.flat_cap) {
		pl_free(D.flat);
		D.flat = pl_alloc(need * sizeof(float));
		D.flat_cap = D.flat ? need : 0;
		if (!D.flat) {
			pl_err("out of memory (%s)", what);
			return -1;
		}
	}
	float *mine = D.flat, *copies = D.flat + G, *sum = copies + (size_t)N * Lmax;
	int64_t off = 0;
	for (int i = 0; i < n; i++) {
		memcpy(mine + off, bufs[i], (size_t)lens[i] * sizeof(float));
		off += lens[i];
	}
	int *sc = pl_alloc(6 * (size_t)N * sizeof(int));
	if (!sc) {
		pl_err("out of memory (%s)", what);
		return -1;
	}
	int *sd = sc + N, *rc = sd + N, *rd = rc + N, *gc = rd + N, *gd = gc + N;
	for (int j = 0; j < N; j++) {
		sd[j] = (int)(G * j / N);
		sc[j] = (int)(G * (j + 1) / N) - sd[j];
	}
	int L = sc[D.rank];
	for (int j = 0; j < N; j++) {
		rc[j] = L;
		rd[j] = (int)(j * Lmax);
		gc[j] = sc[j];
		gd[j] = sd[j];
	}
	char label[160];
	MPI_Request req;
	snprintf(label, sizeof label, "%s (reduce-scatter of %lld floats)", what, (long long)G);
	int e = MPI_Ialltoallv(mine, sc, sd, MPI_FLOAT, copies, rc, rd, MPI_FLOAT, D.comm, &req);
	if (e != MPI_SUCCESS)
		mpi_fail(label, e);
	wait_req(&req, label);
	/* our slice, summed in rank order */
	float *out = sum + sd[D.rank];
	memcpy(out, copies, (size_t)L * sizeof(float));
	for (int r = 1; r < N; r++) {
		const float *c = copies + (size_t)r * Lmax;
		for (int q = 0; q < L; q++)
			out[q] += c[q];
	}
	snprintf(label, sizeof label, "%s (all-gather of %lld floats)", what, (long long)G);
	e = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, sum, gc, gd, MPI_FLOAT, D.comm, &req);
	if (e != MPI_SUCCESS)
		mpi_fail(label, e);
	wait_req(&req, label);
	pl_free(sc);
	off = 0;
	for (int i = 0; i < n; i++) {
		memcpy(bufs[i], sum + off, (size_t)lens[i] * sizeof(float));
		off += lens[i];
	}
	return 0;
#else
	(void)bufs;
	(void)lens;
	(void)n;
	(void)what;
	return 0;
#endif
}

int pl_dist_sum_f64(double *v, int n, const char *what)
{
	if (D.size == 1)
		return 0;
#ifdef PL_HAVE_MPI
	double *all = pl_alloc((size_t)n * D.size * sizeof(double));
	if (!all) {
		pl_err("out of memory (%s)", what);
		return -1;
	}
	MPI_Request req;
	int e = MPI_Iallgather(v, n, MPI_DOUBLE, all, n, MPI_DOUBLE, D.comm, &req);
	if (e != MPI_SUCCESS)
		mpi_fail(what, e);
	wait_req(&req, what);
	for (int i = 0; i < n; i++) {
		double s = all[i];
		for (int r = 1; r < D.size; r++)
			s += all[(size_t)r * n + i];
		v[i] = s;
	}
	pl_free(all);
	return 0;
#else
	(void)v;
	(void)n;
	(void)what;
	return 0;
#endif
}

int pl_dist_bcast(void *buf, size_t bytes, const char *what)
{
	if (D.size == 1)
		return 0;
#ifdef PL_HAVE_MPI
	if (bytes > (size_t)1 << 30) {
		pl_err("%s: %zu bytes are too many for one broadcast", what, bytes);
		return -1;
	}
	MPI_Request req;
	int e = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, 0, D.comm, &req);
	if (e != MPI_SUCCESS)
		mpi_fail(what, e);
	wait_req(&req, what);
	return 0;
#else
	(void)buf;
	(void)bytes;
	(void)what;
	return 0;
#endif
}

int pl_dist_same(const void *data, size_t bytes, const char *what)
{
	if (D.size == 1)
		return 0;
	/* FNV-1a of the bytes; every rank compares its hash with rank 0's */
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p = data;
	for (size_t i = 0; i < bytes; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	uint64_t h0 = h;
	if (pl_dist_bcast(&h0, sizeof h0, what) < 0)
		return -1;
	double differs = h0 != h;
	if (pl_dist_sum_f64(&differs, 1, what) < 0)
		return -1;
	if (differs > 0) {
		if (D.rank == 0)
			pl_err("%s differs between ranks (%g of %d ranks differ from rank 0): every rank must read "
			       "the same files (use a filesystem all nodes share)", what, differs, D.size);
		return -1;
	}
	return 0;
}

/* ---- messages of a few integers (the scheduler of `plastc compare` over ranks) ---- */

#define DIST_TAG_INTS 7

int pl_dist_send_ints(int dest, const int *v, int n, const char *what)
{
#ifdef PL_HAVE_MPI
	if (D.mpi) {
		MPI_Request req;
		int e = MPI_Isend(v, n, MPI_INT, dest, DIST_TAG_INTS, D.comm, &req);
		if (e != MPI_SUCCESS)
			mpi_fail(what, e);
		wait_req(&req, what);
		return 0;
	}
#endif
	(void)dest;
	(void)v;
	(void)n;
	pl_err("%s: not a distributed run", what);
	return -1;
}

int pl_dist_recv_ints(int *from, int *v, int n, const char *what)
{
#ifdef PL_HAVE_MPI
	if (D.mpi) {
		int flag = 0;
		MPI_Status st;
		int e = MPI_Iprobe(MPI_ANY_SOURCE, DIST_TAG_INTS, D.comm, &flag, &st);
		if (e != MPI_SUCCESS)
			mpi_fail(what, e);
		if (!flag)
			return 0;
		e = MPI_Recv(v, n, MPI_INT, st.MPI_SOURCE, DIST_TAG_INTS, D.comm, MPI_STATUS_IGNORE);
		if (e != MPI_SUCCESS)
			mpi_fail(what, e);
		*from = st.MPI_SOURCE;
		return 1;
	}
#endif
	(void)from;
	(void)v;
	(void)n;
	(void)what;
	return 0;
}

int pl_dist_bcast_for(void *buf, size_t bytes, const char *what, double timeout)
{
	if (D.size == 1)
		return 0;
#ifdef PL_HAVE_MPI
	MPI_Request req;
	int e = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, 0, D.comm, &req);
	if (e != MPI_SUCCESS)
		mpi_fail(what, e);
	wait_req_for(&req, what, timeout, PL_EXIT_DIST);
#else
	(void)buf;
	(void)bytes;
	(void)what;
	(void)timeout;
#endif
	return 0;
}

int pl_dist_local_size(void)
{
	const char *ls = D.size > 1 ? getenv("OMPI_COMM_WORLD_LOCAL_SIZE") : NULL;
	long n = ls ? strtol(ls, NULL, 10) : 1;
	return n > 1 ? (int)n : 1;
}

void pl_dist_scrub_env(void)
{
	/* Collect first: unsetenv changes environ under our feet. */
	extern char **environ;
	static const char *const prefixes[] = {"OMPI_", "PMIX_", "PMI_", NULL};
	char name[256];
	for (int again = 1; again;) {
		again = 0;
		for (char **e = environ; e && *e; e++) {
			for (int k = 0; prefixes[k]; k++) {
				size_t pl = strlen(prefixes[k]), nl = strcspn(*e, "=");
				if (strncmp(*e, prefixes[k], pl) == 0 && nl < sizeof name) {
					memcpy(name, *e, nl);
					name[nl] = 0;
					unsetenv(name);
					again = 1;
					break;
				}
			}
			if (again)
				break;
		}
	}
}
