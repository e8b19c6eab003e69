# tests/e2e.mk -- tests of the e2e part
TESTS += tests/test_param_counts.sh
EXTRA_DIST += tests/test_param_counts.sh tests/fuzz/run-fuzz.sh tests/fuzz/fuzz_frontend.c tests/fuzz/plast.dict \
	models/README.md examples/README.md examples/bcm.plast \
	models/lib/duan.plast \
	models/copy/lstm_gradient.plast \
	models/copy/lstm_hebbian.plast \
	models/copy/lstm_none.plast \
	models/copy/rnn_gradient.plast \
	models/copy/rnn_hebbian.plast \
	models/copy/rnn_none.plast \
	models/cue_reward/lstm_gradient.plast \
	models/cue_reward/lstm_hebbian.plast \
	models/cue_reward/lstm_none.plast \
	models/cue_reward/rnn_gradient.plast \
	models/cue_reward/rnn_hebbian.plast \
	models/cue_reward/rnn_none.plast \
	models/regression_linear/lstm_gradient.plast \
	models/regression_linear/lstm_hebbian.plast \
	models/regression_linear/lstm_none.plast \
	models/regression_linear/rnn_gradient.plast \
	models/regression_linear/rnn_hebbian.plast \
	models/regression_linear/rnn_none.plast \
	models/regression_mlp/lstm_gradient.plast \
	models/regression_mlp/lstm_hebbian.plast \
	models/regression_mlp/lstm_none.plast \
	models/regression_mlp/rnn_gradient.plast \
	models/regression_mlp/rnn_hebbian.plast \
	models/regression_mlp/rnn_none.plast \
	models/rules/covariance.plast \
	models/rules/oja.plast \
	models/rules/oja_effective.plast \
	models/rules/per_layer_modulator.plast
