# tests/bench.mk -- the PyTorch cross-check of `plastc grad` (skips without python3 torch) and bench/ files.
TESTS += tests/test_torch_crosscheck.sh
EXTRA_DIST += tests/test_torch_crosscheck.sh bench/README.md bench/stio.py bench/ref_model.py \
	bench/compare_grads.py bench/torch_step.py bench/plastc_step.py bench/run.sh bench/machine.sh \
	bench/triad.c bench/sgemm.c bench/floor.py bench/rss_probe.py bench/backends.sh docs/PERFORMANCE.md \
	bench/mpi_scaling.sh bench/mpi_allreduce.c docs/SCALING.md
