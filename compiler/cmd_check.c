/* compiler/cmd_check.c -- `plastc check FILE...`: parse and check, diagnostics only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "frontend.h"

int cmd_check(int argc, char **argv)
{
	char **sets = NULL, **files = NULL;
	int nset = 0, nfiles = 0, rc = 0;
	for (int i = 1; i < argc;) {
		int r = cmd_opt_set(argc, argv, &i, &sets, &nset);
		if (r < 0) {
			rc = 1;
			goto out;
		}
		if (r)
			continue;
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			rc = cmd_usage_error("check", "unknown option '%s'", argv[i]);
			goto out;
		}
		char **nf = realloc(files, (size_t)(nfiles + 1) * sizeof *nf);
		if (!nf)
			abort();
		files = nf;
		files[nfiles++] = argv[i++];
	}
	if (nfiles == 0) {
		rc = cmd_usage_error("check", "no FILE given");
		goto out;
	}
	for (int k = 0; k < nfiles; k++) {
		DiagCtx *d = diag_ctx_new(stderr);
		Frontend *fe = frontend_parse(files[k], d);
		if (fe && diag_error_count(d) == 0)
			frontend_check(fe, nset, sets, d);
		if (diag_error_count(d) > 0)
			rc = 1;
		frontend_free(fe);
		diag_ctx_free(d);
	}
out:
	free(sets);
	free(files);
	return rc;
}
