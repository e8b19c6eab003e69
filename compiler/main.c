/* compiler/main.c -- the plastc driver (placeholder until the front end lands). */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "compare.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("plastc %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "compare") == 0)
		return cmd_compare(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "plot") == 0)
		return cmd_plot(argc - 1, argv + 1);
	fprintf(stderr, "usage: plastc COMMAND [ARGS]\n");
	return 1;
}
