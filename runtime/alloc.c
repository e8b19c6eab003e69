/* runtime/alloc.c -- the runtime's one allocation function, so tests can make any allocation fail. */
#include <stdlib.h>
#include <string.h>

#include "plastrt.h"

static long fail_after = -1;

void pl_alloc_fail_after(long n)
{
	fail_after = n;
}

/* 64-byte alignment: generated code may use aligned vector loads on work and state buffers. The size is
 * rounded up to a multiple of 64 as aligned_alloc requires. */
void *pl_alloc(size_t bytes)
{
	if (fail_after == 0)
		return NULL;
	if (fail_after > 0)
		fail_after--;
	size_t rounded = (bytes + 63) & ~(size_t)63;
	if (rounded == 0)
		rounded = 64;
	if (rounded < bytes)
		return NULL;
	void *p = aligned_alloc(64, rounded);
	if (p)
		memset(p, 0, rounded);
	return p;
}

void pl_free(void *p)
{
	free(p);
}
