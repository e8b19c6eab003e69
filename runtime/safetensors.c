/* runtime/safetensors.c -- reading and writing safetensors files (F32 and F64 tensors, any shape).
 *
 * Format: u64 little-endian N, then N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [b, e]},
 * "__metadata__": {string: string}}, then the data section; offsets are relative to its start. The reader
 * trusts nothing: every length, offset, dtype and shape is checked before a byte of data is touched, and
 * each message names the file, the tensor and what is wrong, because these files come from other tools
 * (PyTorch, NumPy) and from interrupted runs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "plastrt.h"

/* Headers above this size are rejected before allocating (the safetensors reference uses 100 MB). */
#define ST_MAX_HEADER (100u * 1024u * 1024u)

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static char *dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = pl_alloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

static size_t dtype_size(PlDtype d)
{
	return d == PL_F64 ? 8 : 4;
}

static const char *dtype_name(PlDtype d)
{
	return d == PL_F64 ? "F64" : "F32";
}

static int host_is_big_endian(void)
{
	const uint16_t one = 1;
	unsigned char c;
	memcpy(&c, &one, 1);
	return c == 0;
}

static void swap_bytes(void *data, int64_t numel, size_t size)
{
	unsigned char *p = data;
	for (int64_t i = 0; i < numel; i++, p += size)
		for (size_t a = 0, b = size - 1; a < b; a++, b--) {
			unsigned char t = p[a];
			p[a] = p[b];
			p[b] = t;
		}
}

static void shape_str(char *buf, size_t len, int rank, const int64_t *dims)
{
	size_t used = 0;
	used += (size_t)snprintf(buf + used, len - used, "[");
	for (int i = 0; i < rank && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%" PRId64, i ? ", " : "", dims[i]);
	if (used < len)
		snprintf(buf + used, len - used, "]");
}

PlSt *pl_st_new(void)
{
	return pl_alloc(sizeof(PlSt));
}

void pl_st_free(PlSt *st)
{
	if (!st)
		return;
	for (int i = 0; i < st->n; i++) {
		pl_free(st->t[i].name);
		pl_free(st->t[i].data);
	}
	pl_free(st->t);
	for (int i = 0; i < st->n_meta; i++) {
		pl_free(st->meta_key[i]);
		pl_free(st->meta_val[i]);
	}
	pl_free(st->meta_key);
	pl_free(st->meta_val);
	pl_free(st);
}

const PlStTensor *pl_st_find(const PlSt *st, const char *name)
{
	for (int i = 0; i < st->n; i++)
		if (strcmp(st->t[i].name, name) == 0)
			return &st->t[i];
	return NULL;
}

/* Grows the tensor table by one slot; pl_alloc has no realloc, so copy (tables are small). */
static PlStTensor *st_slot(PlSt *st)
{
	if (st->n == st->cap) {
		int cap = st->cap ? 2 * st->cap : 16;
		PlStTensor *t = pl_alloc((size_t)cap * sizeof *t);
		if (!t)
			return NULL;
		if (st->n)
			memcpy(t, st->t, (size_t)st->n * sizeof *t);
		pl_free(st->t);
		st->t = t;
		st->cap = cap;
	}
	PlStTensor *t = &st->t[st->n];
	memset(t, 0, sizeof *t);
	return t;
}

/* Adds a tensor that takes ownership of name and data. */
static int st_adopt(PlSt *st, char *name, PlDtype dtype, int rank, const int64_t *dims, int64_t numel, void *data)
{
	PlStTensor *t = st_slot(st);
	if (!t)
		return -1;
	t->name = name;
	t->dtype = dtype;
	t->rank = rank;
	for (int i = 0; i < rank; i++)
		t->dims[i] = dims[i];
	t->numel = numel;
	t->data = data;
	st->n++;
	return 0;
}

int pl_st_add(PlSt *st, const char *name, PlDtype dtype, int rank, const int64_t *dims, const void *data)
{
	if (rank < 0 || rank > PL_ST_MAX_RANK || pl_st_find(st, name) || strcmp(name, "__metadata__") == 0)
		return -1;
	int64_t numel = 1;
	for (int i = 0; i < rank; i++) {
		if (dims[i] < 0)
			return -1;
		numel *= dims[i];
	}
	size_t bytes = (size_t)numel * dtype_size(dtype);
	char *nm = dupstr(name);
	void *d = pl_alloc(bytes);
	if (!nm || !d) {
		pl_free(nm);
		pl_free(d);
		return -1;
	}
	if (bytes)
		memcpy(d, data, bytes);
	if (st_adopt(st, nm, dtype, rank, dims, numel, d) < 0) {
		pl_free(nm);
		pl_free(d);
		return -1;
	}
	return 0;
}

int pl_st_add_f32(PlSt *st, const char *name, int rank, const int64_t *dims, const float *data)
{
	return pl_st_add(st, name, PL_F32, rank, dims, data);
}

int pl_st_set_meta(PlSt *st, const char *key, const char *value)
{
	for (int i = 0; i < st->n_meta; i++)
		if (strcmp(st->meta_key[i], key) == 0) {
			char *v = dupstr(value);
			if (!v)
				return -1;
			pl_free(st->meta_val[i]);
			st->meta_val[i] = v;
			return 0;
		}
	if (st->n_meta == st->cap_meta) {
		int cap = st->cap_meta ? 2 * st->cap_meta : 8;
		char **k = pl_alloc((size_t)cap * sizeof *k), **v = pl_alloc((size_t)cap * sizeof *v);
		if (!k || !v) {
			pl_free(k);
			pl_free(v);
			return -1;
		}
		if (st->n_meta) {
			memcpy(k, st->meta_key, (size_t)st->n_meta * sizeof *k);
			memcpy(v, st->meta_val, (size_t)st->n_meta * sizeof *v);
		}
		pl_free(st->meta_key);
		pl_free(st->meta_val);
		st->meta_key = k;
		st->meta_val = v;
		st->cap_meta = cap;
	}
	char *k = dupstr(key), *v = dupstr(value);
	if (!k || !v) {
		pl_free(k);
		pl_free(v);
		return -1;
	}
	st->meta_key[st->n_meta] = k;
	st->meta_val[st->n_meta] = v;
	st->n_meta++;
	return 0;
}

const char *pl_st_meta(const PlSt *st, const char *key)
{
	for (int i = 0; i < st->n_meta; i++)
		if (strcmp(st->meta_key[i], key) == 0)
			return st->meta_val[i];
	return NULL;
}

/* ---- writing ---- */

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static char *build_header(const PlSt *st, size_t *len_out)
{
	json_t *root = json_object();
	if (!root)
		return NULL;
	if (st->n_meta) {
		json_t *meta = json_object();
		for (int i = 0; i < st->n_meta; i++)
			json_object_set_new(meta, st->meta_key[i], json_string(st->meta_val[i]));
		json_object_set_new(root, "__metadata__", meta);
	}
	int64_t off = 0;
	for (int i = 0; i < st->n; i++) {
		const PlStTensor *t = &st->t[i];
		json_t *o = json_object(), *shape = json_array(), *offs = json_array();
		for (int d = 0; d < t->rank; d++)
			json_array_append_new(shape, json_integer(t->dims[d]));
		int64_t bytes = t->numel * (int64_t)dtype_size(t->dtype);
		json_array_append_new(offs, json_integer(off));
		json_array_append_new(offs, json_integer(off + bytes));
		off += bytes;
		json_object_set_new(o, "dtype", json_string(dtype_name(t->dtype)));
		json_object_set_new(o, "shape", shape);
		json_object_set_new(o, "data_offsets", offs);
		json_object_set_new(root, t->name, o);
	}
	char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	if (!text)
		return NULL;
	/* Pad with spaces so the data section starts 8-byte aligned (allowed by the format). */
	size_t n = strlen(text), padded = (8 + n + 7) / 8 * 8 - 8;
	char *h = pl_alloc(padded + 1);
	if (h) {
		memcpy(h, text, n);
		memset(h + n, ' ', padded - n);
	}
	free(text);
	*len_out = padded;
	return h;
}

static void fsync_dir_of(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int pl_st_write(const PlSt *st, const char *path, char *err, size_t errlen)
{
	size_t hlen;
	char *header = build_header(st, &hlen);
	if (!header) {
		seterr(err, errlen, "%s: out of memory building the header", path);
		return -1;
	}
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		seterr(err, errlen, "%s: cannot create %s: %s", path, tmp, strerror(errno));
		pl_free(header);
		return -1;
	}
	unsigned char len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
	int bad = write_all(fd, len8, 8) || write_all(fd, header, hlen);
	pl_free(header);
	int big = host_is_big_endian();
	for (int i = 0; i < st->n && !bad; i++) {
		const PlStTensor *t = &st->t[i];
		size_t bytes = (size_t)t->numel * dtype_size(t->dtype);
		if (!big) {
			bad = write_all(fd, t->data, bytes);
			continue;
		}
		void *copy = pl_alloc(bytes);
		if (!copy) {
			bad = 1;
			break;
		}
		memcpy(copy, t->data, bytes);
		swap_bytes(copy, t->numel, dtype_size(t->dtype));
		bad = write_all(fd, copy, bytes);
		pl_free(copy);
	}
	int saved = errno;
	if (!bad && fsync(fd) < 0) {
		bad = 1;
		saved = errno;
	}
	if (close(fd) < 0 && !bad) {
		bad = 1;
		saved = errno;
	}
	if (bad) {
		unlink(tmp);
		seterr(err, errlen, "%s: cannot write %s: %s", path, tmp, strerror(saved));
		return -1;
	}
	if (rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		seterr(err, errlen, "%s: cannot rename %s into place: %s", path, tmp, strerror(saved));
		return -1;
	}
	fsync_dir_of(path);
	return 0;
}

/* ---- reading ---- */

typedef struct Span {
	int64_t b, e;
	const char *name;
	int idx;
} Span;

static int span_cmp(const void *a, const void *b)
{
	const Span *x = a, *y = b;
	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	return x->e < y->e ? -1 : x->e > y->e;
}

static int read_file(const char *path, unsigned char **buf, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		seterr(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	size_t n = (size_t)sb.st_size;
	unsigned char *b = pl_alloc(n ? n : 1);
	if (!b) {
		seterr(err, errlen, "%s: out of memory reading %zu bytes", path, n);
		close(fd);
		return -1;
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			seterr(err, errlen, "%s: read error: %s", path, r < 0 ? strerror(errno) : "file shrank");
			pl_free(b);
			close(fd);
			return -1;
		}
		got += (size_t)r;
	}
	close(fd);
	*buf = b;
	*len = n;
	return 0;
}

static int parse_metadata(PlSt *st, const char *path, json_t *meta, char *err, size_t errlen)
{
	if (!json_is_object(meta)) {
		seterr(err, errlen, "%s: __metadata__ is not an object of strings", path);
		return -1;
	}
	const char *k;
	json_t *v;
	json_object_foreach(meta, k, v) {
		if (!json_is_string(v)) {
			seterr(err, errlen, "%s: __metadata__ entry '%s' is not a string", path, k);
			return -1;
		}
		if (pl_st_set_meta(st, k, json_string_value(v)) < 0) {
			seterr(err, errlen, "%s: out of memory", path);
			return -1;
		}
	}
	return 0;
}

/* Checks one tensor entry of the header; fills dtype, rank, dims, numel and its byte span. */
static int parse_entry(const char *path, const char *name, json_t *o, PlDtype *dtype, int *rank,
		int64_t *dims, int64_t *numel, Span *span, char *err, size_t errlen)
{
	if (!json_is_object(o)) {
		seterr(err, errlen, "%s: tensor '%s': header entry is not an object", path, name);
		return -1;
	}
	json_t *jd = json_object_get(o, "dtype"), *js = json_object_get(o, "shape"),
		*jo = json_object_get(o, "data_offsets");
	if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo)) {
		seterr(err, errlen, "%s: tensor '%s': header entry needs \"dtype\" (string), \"shape\" (array) and "
				"\"data_offsets\" (array)", path, name);
		return -1;
	}
	const char *ds = json_string_value(jd);
	if (strcmp(ds, "F32") == 0)
		*dtype = PL_F32;
	else if (strcmp(ds, "F64") == 0)
		*dtype = PL_F64;
	else {
		static const char *const known[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
			"BF16", "I32", "U32", "I64", "U64", NULL};
		int is_known = 0;
		for (int i = 0; known[i]; i++)
			is_known |= strcmp(ds, known[i]) == 0;
		if (is_known)
			seterr(err, errlen, "%s: tensor '%s': unsupported dtype %s (plastc reads F32 and F64)", path, name, ds);
		else
			seterr(err, errlen, "%s: tensor '%s': unknown dtype '%s'", path, name, ds);
		return -1;
	}
	size_t r = json_array_size(js);
	if (r > PL_ST_MAX_RANK) {
		seterr(err, errlen, "%s: tensor '%s': rank %zu exceeds the limit of %d", path, name, r, PL_ST_MAX_RANK);
		return -1;
	}
	*rank = (int)r;
	int64_t n = 1;
	for (size_t i = 0; i < r; i++) {
		json_t *d = json_array_get(js, i);
		if (!json_is_integer(d) || json_integer_value(d) < 0) {
			seterr(err, errlen, "%s: tensor '%s': shape entry %zu is not a non-negative integer", path, name, i);
			return -1;
		}
		dims[i] = json_integer_value(d);
		if (dims[i] > 0 && n > INT64_MAX / 16 / dims[i]) {
			seterr(err, errlen, "%s: tensor '%s': shape is too large", path, name);
			return -1;
		}
		n *= dims[i];
	}
	*numel = n;
	if (json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) || !json_is_integer(json_array_get(jo, 1))) {
		seterr(err, errlen, "%s: tensor '%s': data_offsets must be two integers [begin, end]", path, name);
		return -1;
	}
	span->b = json_integer_value(json_array_get(jo, 0));
	span->e = json_integer_value(json_array_get(jo, 1));
	span->name = name;
	if (span->b < 0 || span->e < span->b) {
		seterr(err, errlen, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] are not an increasing pair",
			path, name, span->b, span->e);
		return -1;
	}
	return 0;
}

PlSt *pl_st_read(const char *path, char *err, size_t errlen)
{
	unsigned char *buf;
	size_t len;
	if (read_file(path, &buf, &len, err, errlen) < 0)
		return NULL;
	PlSt *st = NULL;
	json_t *root = NULL;
	Span *spans = NULL;
	if (len < 8) {
		seterr(err, errlen, "%s: truncated file: %zu bytes, a safetensors file starts with an 8-byte header length",
			path, len);
		goto fail;
	}
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = (hlen << 8) | buf[i];
	if (hlen > len - 8) {
		seterr(err, errlen, "%s: header length %" PRIu64 " runs past the end of the file (%zu bytes)%s", path,
			hlen, len, hlen > ST_MAX_HEADER ? "; this may not be a safetensors file" : "");
		goto fail;
	}
	if (hlen > ST_MAX_HEADER) {
		seterr(err, errlen, "%s: header length %" PRIu64 " exceeds the limit of %u bytes", path, hlen, ST_MAX_HEADER);
		goto fail;
	}
	json_error_t je;
	root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		seterr(err, errlen, "%s: bad JSON header: %s (header byte %d)", path, je.text, je.position);
		goto fail;
	}
	if (!json_is_object(root)) {
		seterr(err, errlen, "%s: bad JSON header: not an object", path);
		goto fail;
	}
	st = pl_st_new();
	size_t nkeys = json_object_size(root);
	spans = pl_alloc((nkeys ? nkeys : 1) * sizeof *spans);
	if (!st || !spans) {
		seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	const unsigned char *data = buf + 8 + hlen;
	int64_t dlen = (int64_t)(len - 8 - hlen);
	int ns = 0;
	const char *name;
	json_t *o;
	json_object_foreach(root, name, o) {
		if (strcmp(name, "__metadata__") == 0) {
			if (parse_metadata(st, path, o, err, errlen) < 0)
				goto fail;
			continue;
		}
		PlDtype dt;
		int rank;
		int64_t dims[PL_ST_MAX_RANK], numel;
		Span sp;
		if (parse_entry(path, name, o, &dt, &rank, dims, &numel, &sp, err, errlen) < 0)
			goto fail;
		if (sp.e > dlen) {
			seterr(err, errlen, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] out of range: the data "
					"section has %" PRId64 " bytes (truncated file?)", path, name, sp.b, sp.e, dlen);
			goto fail;
		}
		int64_t need = numel * (int64_t)dtype_size(dt);
		if (sp.e - sp.b != need) {
			char sh[256];
			shape_str(sh, sizeof sh, rank, dims);
			seterr(err, errlen, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] hold %" PRId64 " bytes, "
					"but shape %s of %s needs %" PRId64, path, name, sp.b, sp.e, sp.e - sp.b, sh,
				dtype_name(dt), need);
			goto fail;
		}
		char *nm = dupstr(name);
		void *d = pl_alloc((size_t)need);
		if (!nm || !d) {
			pl_free(nm);
			pl_free(d);
			seterr(err, errlen, "%s: out of memory reading tensor '%s'", path, name);
			goto fail;
		}
		if (need)
			memcpy(d, data + sp.b, (size_t)need);
		if (host_is_big_endian())
			swap_bytes(d, numel, dtype_size(dt));
		sp.idx = st->n;
		sp.name = st_adopt(st, nm, dt, rank, dims, numel, d) < 0 ? NULL : nm;
		if (!sp.name) {
			pl_free(nm);
			pl_free(d);
			seterr(err, errlen, "%s: out of memory", path);
			goto fail;
		}
		spans[ns++] = sp;
	}
	/* Offsets must tile the data section: no overlap, no hole, nothing after the last tensor. */
	qsort(spans, (size_t)ns, sizeof *spans, span_cmp);
	int64_t at = 0;
	for (int i = 0; i < ns; i++) {
		if (spans[i].b == spans[i].e)
			continue;
		if (spans[i].b < at) {
			const char *prev = "?";
			for (int j = i - 1; j >= 0; j--)
				if (spans[j].e > spans[i].b) {
					prev = spans[j].name;
					break;
				}
			seterr(err, errlen, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] overlap tensor '%s'",
				path, spans[i].name, spans[i].b, spans[i].e, prev);
			goto fail;
		}
		if (spans[i].b > at) {
			seterr(err, errlen, "%s: data bytes [%" PRId64 ", %" PRId64 ") belong to no tensor (before tensor '%s')",
				path, at, spans[i].b, spans[i].name);
			goto fail;
		}
		at = spans[i].e;
	}
	if (at != dlen) {
		seterr(err, errlen, "%s: %" PRId64 " bytes after the last tensor's data belong to no tensor", path, dlen - at);
		goto fail;
	}
	json_decref(root);
	pl_free(spans);
	pl_free(buf);
	return st;
fail:
	if (root)
		json_decref(root);
	pl_free(spans);
	pl_st_free(st);
	pl_free(buf);
	return NULL;
}

static const PlStTensor *get_checked(const PlSt *st, const char *what, const char *name, int rank,
		const int64_t *dims, char *err, size_t errlen)
{
	const PlStTensor *t = pl_st_find(st, name);
	if (!t) {
		seterr(err, errlen, "%s: missing tensor '%s'", what, name);
		return NULL;
	}
	int same = t->rank == rank;
	for (int i = 0; same && i < rank; i++)
		same = t->dims[i] == dims[i];
	if (!same) {
		char a[256], b[256];
		shape_str(a, sizeof a, t->rank, t->dims);
		shape_str(b, sizeof b, rank, dims);
		seterr(err, errlen, "%s: tensor '%s' has shape %s, expected %s", what, name, a, b);
		return NULL;
	}
	return t;
}

int pl_st_get_f32(const PlSt *st, const char *what, const char *name, int rank, const int64_t *dims,
		float *out, char *err, size_t errlen)
{
	const PlStTensor *t = get_checked(st, what, name, rank, dims, err, errlen);
	if (!t)
		return -1;
	if (t->dtype == PL_F32)
		memcpy(out, t->data, (size_t)t->numel * sizeof(float));
	else
		for (int64_t i = 0; i < t->numel; i++)
			out[i] = (float)((const double *)t->data)[i];
	return 0;
}

int pl_st_get_f64(const PlSt *st, const char *what, const char *name, int rank, const int64_t *dims,
		double *out, char *err, size_t errlen)
{
	const PlStTensor *t = get_checked(st, what, name, rank, dims, err, errlen);
	if (!t)
		return -1;
	if (t->dtype == PL_F64)
		memcpy(out, t->data, (size_t)t->numel * sizeof(double));
	else
		for (int64_t i = 0; i < t->numel; i++)
			out[i] = ((const float *)t->data)[i];
	return 0;
}
