/* compiler/plot.h -- figures of a compare grid, drawn by gnuplot.
 *
 * plot_grid writes into DIR/plots/: curves.dat and test.dat (the data, one gnuplot index block per
 * variant), plots.gp (the script), and the figures curves.png/.svg (validation metric against step: the
 * mean over seeds with a shaded ±SEM band per variant) and test.png/.svg (the test metric per variant:
 * bars at the mean, error bars ±1.96·SEM). gnuplot runs as a subprocess in DIR/plots; its messages go to
 * DIR/plots/gnuplot.log. The gnuplot program is $PLASTC_GNUPLOT, else `gnuplot` from PATH.
 */
#ifndef PLASTC_PLOT_H
#define PLASTC_PLOT_H

#include <stdbool.h>

#include "compare.h"

/* Returns 0 on success, 1 on a user-facing problem (gnuplot missing, no data), having printed it. */
int plot_grid(const CmpGrid *g);

#endif
