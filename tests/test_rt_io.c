/* tests/test_rt_io.c -- runtime RNG, allocation hook and safetensors: round trips and a malformed corpus
 * in which every file must be rejected with its own message. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "plastrt.h"

static char dir[64];

static const char *tmp_path(const char *name)
{
	static char buf[8][256];
	static int k;
	k = (k + 1) % 8;
	snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
	return buf[k];
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/rt_io_XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- RNG ---- */

static void test_rng_deterministic_and_known(void **state)
{
	(void)state;
	PlRng a, b;
	pl_rng_seed(&a, 42);
	pl_rng_seed(&b, 42);
	for (int i = 0; i < 1000; i++)
		assert_true(pl_rng_u64(&a) == pl_rng_u64(&b));
	/* splitmix64(0) first output is a published constant: the seeding follows the reference algorithm. */
	PlRng z;
	pl_rng_seed(&z, 0);
	assert_true(z.s[0] == 0xe220a8397b1dcdafULL);
	PlRng c, d;
	pl_rng_seed2(&c, 7, 1);
	pl_rng_seed2(&d, 7, 2);
	assert_true(pl_rng_u64(&c) != pl_rng_u64(&d));
}

static void test_rng_distributions(void **state)
{
	(void)state;
	PlRng r;
	pl_rng_seed(&r, 1);
	const int n = 200000;
	double su = 0, su2 = 0, sn = 0, sn2 = 0;
	long counts[5] = {0};
	for (int i = 0; i < n; i++) {
		double u = pl_rng_double(&r);
		assert_true(u >= 0.0 && u < 1.0);
		float f = pl_rng_float(&r);
		assert_true(f >= 0.0f && f < 1.0f);
		su += u;
		su2 += u * u;
		double z = pl_rng_normal(&r);
		sn += z;
		sn2 += z * z;
		counts[pl_rng_below(&r, 5)]++;
	}
	assert_true(fabs(su / n - 0.5) < 0.005);
	assert_true(fabs(su2 / n - su / n * su / n - 1.0 / 12) < 0.002);
	assert_true(fabs(sn / n) < 0.01);
	assert_true(fabs(sn2 / n - 1.0) < 0.02);
	for (int k = 0; k < 5; k++)
		assert_true(fabs(counts[k] / (double)n - 0.2) < 0.005);
}

static void test_rng_save_load(void **state)
{
	(void)state;
	PlRng r, q;
	pl_rng_seed(&r, 99);
	pl_rng_normal(&r); /* leaves a spare normal in the state */
	char text[PL_RNG_STRLEN];
	pl_rng_save(&r, text);
	assert_int_equal(pl_rng_load(&q, text), 0);
	for (int i = 0; i < 10; i++)
		assert_true(pl_rng_normal(&r) == pl_rng_normal(&q));
	assert_int_equal(pl_rng_load(&q, "zz"), -1);
	assert_int_equal(pl_rng_load(&q, "0:0:0:0:0:0"), -1);
}

static void test_alloc_fail_hook(void **state)
{
	(void)state;
	pl_alloc_fail_after(1);
	void *a = pl_alloc(10);
	void *b = pl_alloc(10);
	assert_non_null(a);
	assert_null(b);
	pl_alloc_fail_after(-1);
	assert_true(((uintptr_t)a & 63) == 0);
	pl_free(a);
	/* A reader that runs out of memory reports it and leaks nothing (ASan checks the leak part). */
	PlSt *st = pl_st_new();
	int64_t dims[2] = {2, 3};
	float v[6] = {1, 2, 3, 4, 5, 6};
	assert_int_equal(pl_st_add_f32(st, "w", 2, dims, v), 0);
	char err[512];
	assert_int_equal(pl_st_write(st, tmp_path("oom.safetensors"), err, sizeof err), 0);
	pl_st_free(st);
	for (long k = 0; k < 6; k++) {
		pl_alloc_fail_after(k);
		PlSt *r = pl_st_read(tmp_path("oom.safetensors"), err, sizeof err);
		pl_alloc_fail_after(-1);
		if (r)
			pl_st_free(r);
		else
			assert_non_null(strstr(err, "memory"));
	}
}

/* ---- safetensors round trip ---- */

static void test_st_round_trip(void **state)
{
	(void)state;
	PlSt *st = pl_st_new();
	int64_t d3[3] = {2, 3, 4}, d1[1] = {5}, d0[1] = {0}, dz[2] = {0, 3};
	float a[24];
	double b[5];
	for (int i = 0; i < 24; i++)
		a[i] = (float)i * 0.25f - 1.0f;
	for (int i = 0; i < 5; i++)
		b[i] = 1.0 / (i + 1);
	double scalar = M_PI;
	assert_int_equal(pl_st_add_f32(st, "cell.w_hh", 3, d3, a), 0);
	assert_int_equal(pl_st_add(st, "b64", PL_F64, 1, d1, b), 0);
	assert_int_equal(pl_st_add(st, "loss", PL_F64, 0, d0, &scalar), 0);
	assert_int_equal(pl_st_add_f32(st, "empty", 2, dz, a), 0);
	assert_int_equal(pl_st_add_f32(st, "cell.w_hh", 3, d3, a), -1); /* duplicate */
	assert_int_equal(pl_st_set_meta(st, "step", "12"), 0);
	assert_int_equal(pl_st_set_meta(st, "step", "13"), 0);
	assert_int_equal(pl_st_set_meta(st, "seed", "7"), 0);
	char err[512];
	const char *p = tmp_path("rt.safetensors");
	assert_int_equal(pl_st_write(st, p, err, sizeof err), 0);
	pl_st_free(st);
	assert_int_equal(access(tmp_path("rt.safetensors.tmp"), F_OK), -1);

	PlSt *r = pl_st_read(p, err, sizeof err);
	assert_non_null(r);
	assert_int_equal(r->n, 4);
	assert_string_equal(pl_st_meta(r, "step"), "13");
	assert_string_equal(pl_st_meta(r, "seed"), "7");
	assert_null(pl_st_meta(r, "nope"));
	const PlStTensor *t = pl_st_find(r, "cell.w_hh");
	assert_non_null(t);
	assert_int_equal(t->dtype, PL_F32);
	assert_int_equal(t->rank, 3);
	assert_memory_equal(t->data, a, sizeof a);
	t = pl_st_find(r, "loss");
	assert_int_equal(t->rank, 0);
	assert_true(((double *)t->data)[0] == M_PI);
	/* Conversions: F64 -> float, F32 -> double. */
	float bf[5];
	assert_int_equal(pl_st_get_f32(r, p, "b64", 1, d1, bf, err, sizeof err), 0);
	for (int i = 0; i < 5; i++)
		assert_true(bf[i] == (float)b[i]);
	double ad[24];
	assert_int_equal(pl_st_get_f64(r, p, "cell.w_hh", 3, d3, ad, err, sizeof err), 0);
	for (int i = 0; i < 24; i++)
		assert_true(ad[i] == (double)a[i]);
	pl_st_free(r);

	/* Header length is a multiple of 8 so the data is aligned; python's safetensors reads it too. */
	FILE *f = fopen(p, "rb");
	unsigned char len8[8];
	assert_int_equal(fread(len8, 1, 8, f), 8);
	fclose(f);
	assert_int_equal(len8[0] % 8, 0);
}

/* ---- malformed corpus ---- */

static void write_bytes(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

/* A file with header text `h` and `dlen` data bytes (header length field correct unless hlen_override). */
static const char *make_file(const char *name, const char *h, size_t dlen, long long hlen_override)
{
	size_t hl = strlen(h);
	size_t n = 8 + hl + dlen;
	unsigned char *buf = calloc(1, n);
	uint64_t L = hlen_override >= 0 ? (uint64_t)hlen_override : hl;
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)(L >> (8 * i));
	memcpy(buf + 8, h, hl);
	const char *p = tmp_path(name);
	write_bytes(p, buf, n);
	free(buf);
	return p;
}

static void expect_error(const char *path, const char *needle1, const char *needle2)
{
	char err[1024] = "";
	PlSt *st = pl_st_read(path, err, sizeof err);
	if (st) {
		pl_st_free(st);
		fail_msg("%s was accepted", path);
	}
	if (!strstr(err, path) || !strstr(err, needle1) || (needle2 && !strstr(err, needle2)))
		fail_msg("message for %s: '%s' lacks '%s' / '%s'", path, err, needle1, needle2 ? needle2 : "");
}

static void test_st_malformed(void **state)
{
	(void)state;
	write_bytes(tmp_path("short.st"), "abc", 3);
	expect_error(tmp_path("short.st"), "truncated file", NULL);
	expect_error(make_file("hlen.st", "{}", 4, 1000), "header length 1000 runs past the end", NULL);
	expect_error(make_file("json.st", "{\"a\": ", 0, -1), "bad JSON header", NULL);
	expect_error(make_file("arr.st", "[1, 2]", 0, -1), "bad JSON header: not an object", NULL);
	expect_error(make_file("dup.st",
			     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
			     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
			     4, -1),
		"bad JSON header", "duplicate");
	expect_error(make_file("dtype.st", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1),
		"tensor 'w': unknown dtype 'Q7'", NULL);
	expect_error(make_file("bf16.st", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, -1),
		"tensor 'w': unsupported dtype BF16", NULL);
	expect_error(make_file("range.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, -1),
		"tensor 'w': data_offsets [0, 8] out of range", "4 bytes");
	expect_error(make_file("size.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, -1),
		"tensor 'w'", "hold 8 bytes, but shape [3] of F32 needs 12");
	expect_error(make_file("overlap.st",
			     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
			     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
			     12, -1),
		"tensor 'b'", "overlap tensor 'a'");
	expect_error(make_file("hole.st",
			     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
			     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
			     12, -1),
		"data bytes [4, 8) belong to no tensor", "'b'");
	expect_error(make_file("trail.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12, -1),
		"8 bytes after the last tensor", NULL);
	expect_error(make_file("neg.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, -1),
		"tensor 'a': shape entry 0 is not a non-negative integer", NULL);
	expect_error(make_file("rev.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, -1),
		"tensor 'a': data_offsets [4, 0] are not an increasing pair", NULL);
	expect_error(make_file("noofs.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, -1),
		"tensor 'a': header entry needs", NULL);
	expect_error(make_file("meta.st", "{\"__metadata__\":{\"step\":3}}", 0, -1),
		"__metadata__ entry 'step' is not a string", NULL);
	expect_error(tmp_path("does-not-exist.st"), "cannot open", NULL);

	/* Well-formed file, wrong content for the model. */
	const char *ok = make_file("ok.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, -1);
	char err[512];
	PlSt *st = pl_st_read(ok, err, sizeof err);
	assert_non_null(st);
	float out[6];
	int64_t want[2] = {3, 2};
	assert_int_equal(pl_st_get_f32(st, ok, "v", 2, want, out, err, sizeof err), -1);
	assert_non_null(strstr(err, "missing tensor 'v'"));
	assert_int_equal(pl_st_get_f32(st, ok, "w", 2, want, out, err, sizeof err), -1);
	assert_non_null(strstr(err, "tensor 'w' has shape [2, 3], expected [3, 2]"));
	pl_st_free(st);
}

/* The write is atomic: a failing write (folder missing) leaves the old file and no temporary. */
static void test_st_write_errors(void **state)
{
	(void)state;
	PlSt *st = pl_st_new();
	int64_t d[1] = {1};
	float v = 1.0f;
	pl_st_add_f32(st, "a", 1, d, &v);
	char err[512];
	assert_int_equal(pl_st_write(st, tmp_path("no/such/dir/x.st"), err, sizeof err), -1);
	assert_non_null(strstr(err, "cannot create"));
	pl_st_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rng_deterministic_and_known),
		cmocka_unit_test(test_rng_distributions),
		cmocka_unit_test(test_rng_save_load),
		cmocka_unit_test(test_alloc_fail_hook),
		cmocka_unit_test(test_st_round_trip),
		cmocka_unit_test(test_st_malformed),
		cmocka_unit_test(test_st_write_errors),
	};
	return cmocka_run_group_tests_name("runtime io", tests, setup, teardown);
}
