/* bench/mpi_allreduce.c -- the cost of summing a gradient over MPI ranks, per step of data-parallel
 * training: MPI_Allreduce (MPI_SUM, the implementation's algorithm) against the runtime's deterministic
 * sum pl_dist_sum_f32 (reduce-scatter by all-to-all, fixed-order sum, all-gather; runtime/dist.c).
 *
 *   mpirun -np N mpi_allreduce [FLOATS [REPS]]     (default 274962 floats: cue_reward rnn_hebbian, H=256)
 *
 * Built by bench/mpi_scaling.sh with mpicc against the build tree's libplastrt_mpi.a. Every repetition
 * starts after a barrier; rank 0 prints the median and minimum over the repetitions, in microseconds,
 * and the effective bus bandwidth 2 (N-1)/N * bytes / time (what a ring allreduce moves per rank). */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plastrt.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int reps, long G, int N)
{
	qsort(t, (size_t)reps, sizeof *t, cmp_double);
	double med = t[reps / 2], bytes = 4.0 * (double)G;
	printf("%-22s N=%d floats=%ld: median %9.1f us  min %9.1f us  bus %6.2f GB/s\n", what, N, G, med * 1e6,
		t[0] * 1e6, N > 1 ? 2.0 * (N - 1) / N * bytes / med / 1e9 : 0.0);
}

int main(int argc, char **argv)
{
	long G = argc > 1 ? atol(argv[1]) : 274962;
	int reps = argc > 2 ? atoi(argv[2]) : 100;
	if (G < 1 || G > INT_MAX || reps < 1) { /* MPI_Allreduce takes an int count */
		fprintf(stderr, "usage: mpirun -np N mpi_allreduce [FLOATS [REPS]]\n");
		return 1;
	}
	if (pl_dist_init() < 0)
		return 1;
	int rank = pl_dist_rank(), N = pl_dist_size();
	float *buf = malloc((size_t)G * sizeof *buf), *orig = malloc((size_t)G * sizeof *orig);
	double *t = malloc((size_t)reps * sizeof *t);
	if (!buf || !orig || !t) {
		fprintf(stderr, "mpi_allreduce: out of memory\n");
		return pl_dist_finish(2);
	}
	for (long i = 0; i < G; i++)
		orig[i] = (float)((i % 97) * 1e-3 + rank);
	int64_t len = G;
	float *bufs[1] = {buf};
	for (int pass = 0; pass < 2; pass++) {
		for (int r = -3; r < reps; r++) { /* 3 warm-up repetitions */
			/* the same gradient every time (untimed): repeated in-place sums would grow by a factor
			 * N per repetition towards inf */
			memcpy(buf, orig, (size_t)G * sizeof *buf);
			if (N > 1)
				MPI_Barrier(MPI_COMM_WORLD);
			double t0 = now();
			if (pass == 0 && N > 1)
				MPI_Allreduce(MPI_IN_PLACE, buf, (int)G, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
			else if (pass == 1 && pl_dist_sum_f32(bufs, &len, 1, "bench") < 0)
				pl_dist_abort(1);
			double dt = now() - t0;
			if (r >= 0)
				t[r] = dt;
		}
		/* the slowest rank decides the step */
		if (N > 1)
			MPI_Allreduce(MPI_IN_PLACE, t, reps, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
		if (rank == 0)
			report(pass == 0 ? "MPI_Allreduce" : "pl_dist_sum_f32", t, reps, G, N);
	}
	free(buf);
	free(orig);
	free(t);
	return pl_dist_finish(0);
}
