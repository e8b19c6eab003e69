/* runtime/images.c -- IDX, CIFAR-100 binary and miniImageNet loaders (see images.h).
 *
 * Defensive by construction: every header field is range-checked before it sizes anything, every read
 * checks its byte count, a file that is longer than its header says is an error too (a wrong size is as
 * suspicious as a short one), and each message names the file and what was wrong with it.
 */
#include "config.h"

#include "images.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#ifdef HAVE_LIBPNG
#include <png.h>
#endif
#ifdef HAVE_LIBJPEG
#include <jpeglib.h>
#endif

#include "plastrt.h"

static void seterr(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

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

void pl_imageset_free(PlImageSet *s)
{
	if (!s)
		return;
	if (s->class_name)
		for (int k = 0; k < s->n_classes; k++)
			pl_free(s->class_name[k]);
	pl_free(s->class_name);
	pl_free(s->pix);
	pl_free(s->label);
	pl_free(s);
}

/* n images of c x h x w with their label array; NULL if out of memory */
static PlImageSet *imageset_new(int n, int c, int h, int w)
{
	PlImageSet *s = pl_alloc(sizeof *s);
	if (!s)
		return NULL;
	s->n = n;
	s->C = c;
	s->H = h;
	s->W = w;
	s->pix = pl_alloc((size_t)n * (size_t)c * (size_t)h * (size_t)w);
	s->label = pl_alloc((size_t)n * sizeof *s->label);
	if (!s->pix || !s->label) {
		pl_imageset_free(s);
		return NULL;
	}
	return s;
}

/* ---- IDX ---- */

/* Reads exactly n bytes; on a short read the message says how many bytes of `what` were missing. */
static int gz_read_exact(gzFile g, void *buf, size_t n, const char *path, const char *what, char *err,
	size_t errlen)
{
	size_t got = 0;
	while (got < n) {
		size_t chunk = n - got > (1u << 30) ? (1u << 30) : n - got;
		int r = gzread(g, (char *)buf + got, (unsigned)chunk);
		if (r < 0) {
			int zerr;
			const char *msg = gzerror(g, &zerr);
			seterr(err, errlen, "%s: corrupt gzip data (%s)", path, msg ? msg : "?");
			return -1;
		}
		if (r == 0) {
			seterr(err, errlen, "%s: truncated: %zu bytes of %s expected, only %zu present", path, n, what, got);
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

/* The data must end where the header says; reading past the end also makes zlib check the gzip CRC. */
static int gz_expect_end(gzFile g, const char *path, const char *what, char *err, size_t errlen)
{
	char extra;
	int r = gzread(g, &extra, 1);
	if (r < 0) {
		int zerr;
		const char *msg = gzerror(g, &zerr);
		seterr(err, errlen, "%s: corrupt gzip data (%s)", path, msg ? msg : "?");
		return -1;
	}
	if (r > 0) {
		seterr(err, errlen, "%s: longer than its header says (data after the %s): wrong sizes in the header?",
			path, what);
		return -1;
	}
	return 0;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Opens an IDX file and reads its header: ndims dims, each checked against lim[i]. */
static gzFile idx_open(const char *path, int ndims, const uint32_t *lim, const char *const *dim_name, uint32_t *dims,
	char *err, size_t errlen)
{
	errno = 0;
	gzFile g = gzopen(path, "rb");
	if (!g) {
		seterr(err, errlen, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
		return NULL;
	}
	unsigned char hdr[4 + 4 * 3];
	if (gz_read_exact(g, hdr, 4 + 4 * (size_t)ndims, path, "IDX header", err, errlen) != 0)
		goto fail;
	uint32_t magic = be32(hdr), want = 0x00000800u | (uint32_t)ndims;
	if (magic != want) {
		seterr(err, errlen, "%s: bad magic number 0x%08x (an IDX file of unsigned bytes with %d dimension%s has "
				    "0x%08x)", path, magic, ndims, ndims > 1 ? "s" : "", want);
		goto fail;
	}
	for (int i = 0; i < ndims; i++) {
		dims[i] = be32(hdr + 4 + 4 * i);
		if (dims[i] < 1 || dims[i] > lim[i]) {
			seterr(err, errlen, "%s: %s %u out of range 1..%u", path, dim_name[i], dims[i], lim[i]);
			goto fail;
		}
	}
	return g;
fail:
	gzclose(g);
	return NULL;
}

PlImageSet *pl_idx_load(const char *images_path, const char *labels_path, char *err, size_t errlen)
{
	static const uint32_t ilim[3] = {PL_IMAGES_MAX_N, PL_IMAGES_MAX_SIDE, PL_IMAGES_MAX_SIDE};
	static const char *const iname[3] = {"image count", "rows", "columns"};
	static const char *const lname[1] = {"label count"};
	uint32_t d[3], nl;
	PlImageSet *s = NULL;
	gzFile gl = NULL, gi = idx_open(images_path, 3, ilim, iname, d, err, errlen);
	if (!gi)
		return NULL;
	if (!(gl = idx_open(labels_path, 1, ilim, lname, &nl, err, errlen)))
		goto fail;
	if (nl != d[0]) {
		seterr(err, errlen, "%s: holds %u labels but %s holds %u images", labels_path, nl, images_path, d[0]);
		goto fail;
	}
	if (!(s = imageset_new((int)d[0], 1, (int)d[1], (int)d[2]))) {
		seterr(err, errlen, "%s: out of memory for %u images of %ux%u", images_path, d[0], d[1], d[2]);
		goto fail;
	}
	if (gz_read_exact(gi, s->pix, (size_t)d[0] * d[1] * d[2], images_path, "pixels", err, errlen) != 0 ||
		gz_expect_end(gi, images_path, "pixels", err, errlen) != 0)
		goto fail;
	unsigned char *lb = pl_alloc(nl);
	if (!lb) {
		seterr(err, errlen, "%s: out of memory", labels_path);
		goto fail;
	}
	if (gz_read_exact(gl, lb, nl, labels_path, "labels", err, errlen) != 0 ||
		gz_expect_end(gl, labels_path, "labels", err, errlen) != 0) {
		pl_free(lb);
		goto fail;
	}
	for (uint32_t i = 0; i < nl; i++) {
		s->label[i] = lb[i];
		if (lb[i] + 1 > s->n_classes)
			s->n_classes = lb[i] + 1;
	}
	pl_free(lb);
	gzclose(gi);
	gzclose(gl);
	return s;
fail:
	pl_imageset_free(s);
	gzclose(gi);
	if (gl)
		gzclose(gl);
	return NULL;
}

/* ---- text files ---- */

/* Reads a whole (small) text file; NUL-terminated. */
static char *slurp(const char *path, size_t limit, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = pl_alloc(limit + 1);
	if (!buf) {
		fclose(f);
		seterr(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	size_t n = fread(buf, 1, limit + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		seterr(err, errlen, "%s: read error", path);
		pl_free(buf);
		return NULL;
	}
	if (n > limit) {
		seterr(err, errlen, "%s: larger than %zu bytes: not the expected text file", path, limit);
		pl_free(buf);
		return NULL;
	}
	if (memchr(buf, 0, n)) {
		seterr(err, errlen, "%s: contains NUL bytes: not a text file", path);
		pl_free(buf);
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

/* Next line of a text buffer, with trailing CR and blanks removed; NULL at the end. */
static char *next_line(char **cur)
{
	char *s = *cur;
	if (!s || !*s)
		return NULL;
	char *nl = strchr(s, '\n');
	if (nl) {
		*nl = 0;
		*cur = nl + 1;
	} else {
		*cur = s + strlen(s);
	}
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = 0;
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static int join(char *out, size_t n, const char *dir, const char *name)
{
	int w = snprintf(out, n, "%s/%s", dir, name);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* ---- CIFAR-100 ---- */

enum { CIFAR_SIDE = 32, CIFAR_PIX = 3 * 32 * 32, CIFAR_REC = 2 + 3 * 32 * 32, CIFAR_FINE = 100, CIFAR_COARSE = 20 };

/* One pass over a CIFAR-100 binary file. keep[fine] is the new label or -1. With s == NULL it only counts
 * the kept records (and checks the file); else it appends them to s at *at. */
static int cifar_pass(const char *path, const int *keep, PlImageSet *s, int *at, int *count, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0) {
		seterr(err, errlen, "%s: not a regular file", path);
		fclose(f);
		return -1;
	}
	long size = ftell(f);
	rewind(f);
	if (size <= 0 || size % CIFAR_REC != 0) {
		seterr(err, errlen, "%s: size %ld bytes is not a positive multiple of the %d-byte CIFAR-100 record "
				    "(truncated, or not the CIFAR-100 binary version)", path, size, CIFAR_REC);
		fclose(f);
		return -1;
	}
	long nrec = size / CIFAR_REC;
	unsigned char rec[CIFAR_REC];
	*count = 0;
	for (long r = 0; r < nrec; r++) {
		if (fread(rec, 1, CIFAR_REC, f) != CIFAR_REC) {
			seterr(err, errlen, "%s: read error at record %ld", path, r);
			fclose(f);
			return -1;
		}
		if (rec[0] >= CIFAR_COARSE || rec[1] >= CIFAR_FINE) {
			seterr(err, errlen, "%s: record %ld: labels %d (coarse, < %d) and %d (fine, < %d) out of range: not "
					    "CIFAR-100 binary data", path, r, rec[0], CIFAR_COARSE, rec[1], CIFAR_FINE);
			fclose(f);
			return -1;
		}
		int k = keep[rec[1]];
		if (k < 0)
			continue;
		if (s) {
			memcpy(s->pix + (size_t)*at * CIFAR_PIX, rec + 2, CIFAR_PIX);
			s->label[*at] = k;
			(*at)++;
		}
		(*count)++;
	}
	fclose(f);
	return 0;
}

PlImageSet *pl_cifar100_load(const char *dir, const char *class_list, char *err, size_t errlen)
{
	char path[4096], *names_txt = NULL, *list_txt = NULL, *cur;
	char *fine[CIFAR_FINE];
	int keep[CIFAR_FINE], nfine = 0, nsel = 0;
	char *sel_name[CIFAR_FINE];
	PlImageSet *s = NULL;
	for (int k = 0; k < CIFAR_FINE; k++)
		keep[k] = -1;
	if (join(path, sizeof path, dir, "fine_label_names.txt") != 0) {
		seterr(err, errlen, "%s: path too long", dir);
		return NULL;
	}
	if (!(names_txt = slurp(path, 1 << 16, err, errlen)))
		return NULL;
	cur = names_txt;
	for (char *ln; (ln = next_line(&cur));) {
		if (!*ln)
			continue;
		if (nfine == CIFAR_FINE) {
			seterr(err, errlen, "%s: more than %d class names", path, CIFAR_FINE);
			goto fail;
		}
		fine[nfine++] = ln;
	}
	if (nfine != CIFAR_FINE) {
		seterr(err, errlen, "%s: %d class names, CIFAR-100 has %d", path, nfine, CIFAR_FINE);
		goto fail;
	}
	if (!(list_txt = slurp(class_list, 1 << 16, err, errlen)))
		goto fail;
	cur = list_txt;
	int line = 0;
	for (char *ln; (ln = next_line(&cur));) {
		line++;
		if (!*ln || *ln == '#')
			continue;
		int k = 0;
		while (k < CIFAR_FINE && strcmp(fine[k], ln) != 0)
			k++;
		if (k == CIFAR_FINE) {
			seterr(err, errlen, "%s:%d: '%s' is not a CIFAR-100 class (names from %s)", class_list, line, ln, path);
			goto fail;
		}
		if (keep[k] >= 0) {
			seterr(err, errlen, "%s:%d: class '%s' listed twice", class_list, line, ln);
			goto fail;
		}
		sel_name[nsel] = ln;
		keep[k] = nsel++;
	}
	if (nsel == 0) {
		seterr(err, errlen, "%s: no class names", class_list);
		goto fail;
	}
	static const char *const files[2] = {"train.bin", "test.bin"};
	int total = 0, cnt;
	for (int fi = 0; fi < 2; fi++) {
		if (join(path, sizeof path, dir, files[fi]) != 0 || cifar_pass(path, keep, NULL, NULL, &cnt, err, errlen) != 0)
			goto fail;
		total += cnt;
	}
	if (total == 0) {
		seterr(err, errlen, "%s: no images of the classes in %s", dir, class_list);
		goto fail;
	}
	if (!(s = imageset_new(total, 3, CIFAR_SIDE, CIFAR_SIDE)) ||
		!(s->class_name = pl_alloc((size_t)nsel * sizeof *s->class_name))) {
		seterr(err, errlen, "%s: out of memory for %d images", dir, total);
		goto fail;
	}
	s->n_classes = nsel;
	for (int k = 0; k < nsel; k++)
		if (!(s->class_name[k] = dupstr(sel_name[k]))) {
			seterr(err, errlen, "%s: out of memory", dir);
			goto fail;
		}
	int at = 0;
	for (int fi = 0; fi < 2; fi++) {
		join(path, sizeof path, dir, files[fi]);
		if (cifar_pass(path, keep, s, &at, &cnt, err, errlen) != 0)
			goto fail;
	}
	if (at != total) { /* the file changed between the passes */
		seterr(err, errlen, "%s: changed while being read", dir);
		goto fail;
	}
	pl_free(names_txt);
	pl_free(list_txt);
	return s;
fail:
	pl_imageset_free(s);
	pl_free(names_txt);
	pl_free(list_txt);
	return NULL;
}

/* ---- image files ---- */

/* Bilinear resampling with pixel centres at half-integers (the convention of most resizers), from
 * interleaved RGB w x h to planar side x side. Identity when the sizes agree. */
static void resize_rgb(const uint8_t *src, int w, int h, int side, uint8_t *out)
{
	size_t plane = (size_t)side * side;
	for (int y = 0; y < side; y++) {
		double fy = (y + 0.5) * h / side - 0.5;
		if (fy < 0)
			fy = 0;
		int y0 = (int)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
		double ay = fy - y0;
		for (int x = 0; x < side; x++) {
			double fx = (x + 0.5) * w / side - 0.5;
			if (fx < 0)
				fx = 0;
			int x0 = (int)fx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
			double ax = fx - x0;
			for (int c = 0; c < 3; c++) {
				double v00 = src[((size_t)y0 * w + x0) * 3 + c], v01 = src[((size_t)y0 * w + x1) * 3 + c];
				double v10 = src[((size_t)y1 * w + x0) * 3 + c], v11 = src[((size_t)y1 * w + x1) * 3 + c];
				double v = (1 - ay) * ((1 - ax) * v00 + ax * v01) + ay * ((1 - ax) * v10 + ax * v11);
				long q = lround(v);
				out[c * plane + (size_t)y * side + x] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
			}
		}
	}
}

#ifdef HAVE_LIBJPEG
typedef struct JpegErr {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
} JpegErr;

/* libjpeg's default error handler exits the process: jump back to the decoder instead */
static void jpeg_fail(j_common_ptr c)
{
	JpegErr *e = (JpegErr *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jb, 1);
}

/* warnings (level -1) are corrupt data, e.g. a premature end of the file: errors for us; trace messages
 * (level >= 0) are dropped */
static void jpeg_message(j_common_ptr c, int level)
{
	if (level < 0)
		jpeg_fail(c);
}

static int decode_jpeg(const char *path, int side, uint8_t *out, char *err, size_t errlen)
{
	struct jpeg_decompress_struct cinfo;
	JpegErr jerr;
	FILE *volatile f = fopen(path, "rb");
	uint8_t *volatile rgb = NULL;
	if (!f) {
		seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = jpeg_fail;
	jerr.pub.emit_message = jpeg_message;
	if (setjmp(jerr.jb)) {
		seterr(err, errlen, "%s: corrupt JPEG: %s", path, jerr.msg);
		jpeg_destroy_decompress(&cinfo);
		fclose(f);
		pl_free(rgb);
		return -1;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_stdio_src(&cinfo, f);
	jpeg_read_header(&cinfo, TRUE);
	cinfo.out_color_space = JCS_RGB;
	jpeg_start_decompress(&cinfo);
	int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
	if (w < 1 || h < 1 || w > PL_IMAGES_MAX_SIDE || h > PL_IMAGES_MAX_SIDE || cinfo.output_components != 3) {
		seterr(err, errlen, "%s: JPEG of %dx%d with %d components (want RGB, sides 1..%d)", path, w, h,
			cinfo.output_components, PL_IMAGES_MAX_SIDE);
		jpeg_destroy_decompress(&cinfo);
		fclose(f);
		return -1;
	}
	rgb = pl_alloc((size_t)w * h * 3);
	if (!rgb) {
		seterr(err, errlen, "%s: out of memory", path);
		jpeg_destroy_decompress(&cinfo);
		fclose(f);
		return -1;
	}
	while (cinfo.output_scanline < cinfo.output_height) {
		JSAMPROW row = rgb + (size_t)cinfo.output_scanline * w * 3;
		jpeg_read_scanlines(&cinfo, &row, 1);
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	fclose(f);
	resize_rgb(rgb, w, h, side, out);
	pl_free(rgb);
	return 0;
}
#endif

#ifdef HAVE_LIBPNG
static int decode_png(const char *path, int side, uint8_t *out, char *err, size_t errlen)
{
	png_image im;
	memset(&im, 0, sizeof im);
	im.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_file(&im, path)) {
		seterr(err, errlen, "%s: bad PNG: %s", path, im.message);
		png_image_free(&im);
		return -1;
	}
	if (im.width < 1 || im.height < 1 || im.width > PL_IMAGES_MAX_SIDE || im.height > PL_IMAGES_MAX_SIDE) {
		seterr(err, errlen, "%s: PNG of %ux%u (sides 1..%d)", path, im.width, im.height, PL_IMAGES_MAX_SIDE);
		png_image_free(&im);
		return -1;
	}
	im.format = PNG_FORMAT_RGB;
	uint8_t *rgb = pl_alloc(PNG_IMAGE_SIZE(im));
	if (!rgb) {
		seterr(err, errlen, "%s: out of memory", path);
		png_image_free(&im);
		return -1;
	}
	if (!png_image_finish_read(&im, NULL, rgb, 0, NULL)) {
		seterr(err, errlen, "%s: bad PNG: %s", path, im.message);
		png_image_free(&im);
		pl_free(rgb);
		return -1;
	}
	resize_rgb(rgb, (int)im.width, (int)im.height, side, out);
	pl_free(rgb);
	return 0;
}
#endif

int pl_image_file_rgb(const char *path, int side, uint8_t *out, char *err, size_t errlen)
{
	unsigned char sig[8] = {0};
	FILE *f = fopen(path, "rb");
	if (!f) {
		seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	size_t n = fread(sig, 1, sizeof sig, f);
	fclose(f);
	if (side < 1 || side > PL_IMAGES_MAX_SIDE) {
		seterr(err, errlen, "%s: requested side %d out of range", path, side);
		return -1;
	}
	static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	if (n == 8 && memcmp(sig, png_sig, 8) == 0) {
#ifdef HAVE_LIBPNG
		return decode_png(path, side, out, err, errlen);
#else
		seterr(err, errlen, "%s: a PNG file, but plastc was built without libpng (install libpng-dev and "
				    "re-run configure)", path);
		return -1;
#endif
	}
	if (n >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff) {
#ifdef HAVE_LIBJPEG
		return decode_jpeg(path, side, out, err, errlen);
#else
		seterr(err, errlen, "%s: a JPEG file, but plastc was built without libjpeg (install libjpeg-dev and "
				    "re-run configure)", path);
		return -1;
#endif
	}
	seterr(err, errlen, "%s: neither a JPEG nor a PNG file (%s)", path, n < 3 ? "too short" : "unknown signature");
	return -1;
}

/* ---- miniImageNet ---- */

PlImageSet *pl_miniimagenet_load(const char *dir, const char *split, int side, char *err, size_t errlen)
{
	char csv[4096], img[8192];
	PlImageSet *s = NULL;
	const char **names = NULL;
	char **row = NULL;
	int *row_line = NULL;
	int n = 0, ncls = 0;
	if (snprintf(csv, sizeof csv, "%s/%s.csv", dir, split) >= (int)sizeof csv) {
		seterr(err, errlen, "%s: path too long", dir);
		return NULL;
	}
	char *txt = slurp(csv, (size_t)1 << 26, err, errlen), *cur = txt;
	if (!txt)
		return NULL;
	size_t maxrows = 1;
	for (const char *q = txt; *q; q++)
		maxrows += *q == '\n';
	if (!(row = pl_alloc(maxrows * sizeof *row)) || !(row_line = pl_alloc(maxrows * sizeof *row_line))) {
		seterr(err, errlen, "%s: out of memory", csv);
		goto fail;
	}
	char *hdr = next_line(&cur);
	if (!hdr || strcmp(hdr, "filename,label") != 0) {
		seterr(err, errlen, "%s:1: expected the header 'filename,label'", csv);
		goto fail;
	}
	int line = 1;
	for (char *ln; (ln = next_line(&cur));) {
		line++;
		if (*ln) {
			row_line[n] = line;
			row[n++] = ln;
		}
	}
	if (n == 0 || n > PL_IMAGES_MAX_N) {
		seterr(err, errlen, "%s: %d image rows (want 1..%d)", csv, n, PL_IMAGES_MAX_N);
		goto fail;
	}
	if (!(s = imageset_new(n, 3, side, side)) || !(names = pl_alloc((size_t)n * sizeof *names))) {
		seterr(err, errlen, "%s: out of memory for %d images of %dx%d", csv, n, side, side);
		goto fail;
	}
	for (int i = 0; i < n; i++) {
		char *ln = row[i], *comma = strchr(ln, ',');
		if (!comma || comma == ln || !comma[1] || strchr(comma + 1, ',')) {
			seterr(err, errlen, "%s:%d: expected 'filename,label', got '%s'", csv, row_line[i], ln);
			goto fail;
		}
		*comma = 0;
		if (strstr(ln, "..") || ln[0] == '/') {
			seterr(err, errlen, "%s:%d: file name '%s' leaves the images folder", csv, row_line[i], ln);
			goto fail;
		}
		const char *label = comma + 1;
		int k = 0;
		while (k < ncls && strcmp(names[k], label) != 0)
			k++;
		if (k == ncls)
			names[ncls++] = label;
		if (snprintf(img, sizeof img, "%s/images/%s", dir, ln) >= (int)sizeof img) {
			seterr(err, errlen, "%s:%d: path too long", csv, row_line[i]);
			goto fail;
		}
		if (pl_image_file_rgb(img, side, s->pix + (size_t)i * 3 * side * side, err, errlen) != 0)
			goto fail;
		s->label[i] = k;
	}
	if (!(s->class_name = pl_alloc((size_t)ncls * sizeof *s->class_name))) {
		seterr(err, errlen, "%s: out of memory", csv);
		goto fail;
	}
	s->n_classes = ncls;
	for (int k = 0; k < ncls; k++)
		if (!(s->class_name[k] = dupstr(names[k]))) {
			seterr(err, errlen, "%s: out of memory", csv);
			goto fail;
		}
	pl_free(names);
	pl_free(row);
	pl_free(row_line);
	pl_free(txt);
	return s;
fail:
	pl_imageset_free(s);
	pl_free(names);
	pl_free(row);
	pl_free(row_line);
	pl_free(txt);
	return NULL;
}

/* ---- class index ---- */

PlClassIndex *pl_class_index_new(const PlImageSet *s, int lo, int hi, int cls_lo, int cls_hi)
{
	if (lo < 0)
		lo = 0;
	if (hi > s->n)
		hi = s->n;
	if (cls_lo < 0 || cls_hi <= cls_lo)
		return NULL;
	int K = cls_hi - cls_lo;
	PlClassIndex *ci = pl_alloc(sizeof *ci);
	if (!ci)
		return NULL;
	ci->n_classes = K;
	ci->start = pl_alloc((size_t)(K + 1) * sizeof *ci->start);
	int cnt = 0;
	for (int i = lo; i < hi; i++)
		cnt += s->label[i] >= cls_lo && s->label[i] < cls_hi;
	ci->idx = pl_alloc((size_t)(cnt ? cnt : 1) * sizeof *ci->idx);
	int *fill = pl_alloc((size_t)K * sizeof *fill);
	if (!ci->start || !ci->idx || !fill) {
		pl_free(fill);
		pl_class_index_free(ci);
		return NULL;
	}
	for (int i = lo; i < hi; i++)
		if (s->label[i] >= cls_lo && s->label[i] < cls_hi)
			ci->start[s->label[i] - cls_lo + 1]++;
	for (int k = 0; k < K; k++)
		ci->start[k + 1] += ci->start[k];
	for (int i = lo; i < hi; i++)
		if (s->label[i] >= cls_lo && s->label[i] < cls_hi) {
			int k = s->label[i] - cls_lo;
			ci->idx[ci->start[k] + fill[k]++] = i;
		}
	pl_free(fill);
	return ci;
}

void pl_class_index_free(PlClassIndex *ci)
{
	if (!ci)
		return;
	pl_free(ci->start);
	pl_free(ci->idx);
	pl_free(ci);
}
