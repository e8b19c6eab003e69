/* compiler/sema.h -- semantic analysis: names, constants, shapes, rules; the checked model.
 *
 * sema_check resolves every name of a program (its files joined by imports), evaluates the constants
 * after `--set`, infers the shape of every expression, checks the model's structure and builds the
 * parameter and state tables that lowering, the runtime and the backends share.
 *
 * Ownership: a SemaModel and everything it points to live in the AstArena of the program it was built
 * from (strings of the parameter/state tables included); it dies with that arena.
 */
#ifndef PLASTC_SEMA_H
#define PLASTC_SEMA_H

#include <stdbool.h>
#include <stdint.h>

#include "ast.h"
#include "diag.h"
#include "ir.h"      /* IrShape */
#include "program.h" /* ProgTensor */

/* The largest size of one dimension, and of the whole parameter table, in elements. */
#define SEMA_MAX_DIM ((int64_t)INT32_MAX)
#define SEMA_MAX_PARAMS ((int64_t)1 << 31)

typedef enum SemaAct { ACT_IDENTITY, ACT_RELU, ACT_TANH, ACT_SIGMOID } SemaAct;

typedef enum SemaSymKind {
	SYM_NONE,
	SYM_CONST,
	SYM_RULE,
	SYM_MODEL,
	SYM_INPUT,
	SYM_OUTPUT, /* output, extra or modulator */
	SYM_LAYER,
	SYM_PARAM,  /* free param */
} SemaSymKind;

typedef struct SemaSym {
	SemaSymKind kind;
	const char *name;
	SrcSpan span;         /* where it is defined */
	int index;            /* into the matching SemaModel array; consts/rules: into SemaProgram arrays */
} SemaSym;

/* One weight or bias of a layer. */
typedef struct SemaTensor {
	const char *suffix;   /* "w", "b", "w_hh", "b_hh", "w_ih", "b_ih" */
	bool is_bias;
	bool pre_is_h;        /* weights: pre is the layer's previous h (w_hh), else its input */
	int64_t in, out;      /* weight [in, out]; bias [out] (in = the matching weight's in) */
	int param;            /* index in the parameter table */
	int alpha;            /* index of its alpha parameter, -1 if none (not plastic, or alpha = none) */
	int state;            /* index of its plastic state tensor, -1 if not plastic */
} SemaTensor;

typedef enum SemaSrcKind { SRC_INPUT, SRC_LAYER, SRC_OUTPUT } SemaSrcKind;

typedef struct SemaSrc {
	SemaSrcKind kind;
	int index;            /* layer or output index (SRC_INPUT: 0) */
	bool sliced;          /* NAME[lo:hi]: the values offset .. offset+size of the source */
	int64_t offset;
	int64_t size;
	SrcSpan span;
} SemaSrc;

typedef struct SemaLayer {
	const AstItem *item;
	const char *name;
	AstLayerKind kind;
	SemaAct act;
	SemaSrc *srcs;
	int nsrcs;
	int64_t in;           /* sum of the sources' sizes */
	int64_t size;         /* linear: N; rnn/lstm: H */
	int64_t post_size;    /* N, H, or 4H (lstm: the activated gates) */
	bool plastic;
	bool has_bias;
	SemaTensor t[4];      /* linear: w [b]; rnn/lstm: w_hh [b_hh] w_ih [b_ih] */
	int nt;
	int *outs;            /* linear with an output list: output indices, in order */
	int nouts;
	/* plasticity (plastic layers) */
	const AstDecl *rule;
	const AstExpr *rate, *decay; /* decay NULL: 0 */
	int h_state, c_state; /* rnn/lstm state indices (-1 when absent) */
	/* conv4 (docs/oneshot.md): the source is an image [img_c, img_side, img_side]; `blocks` blocks of
	 * conv (channels out) + batch norm + relu + pool leave channels x out_side x out_side = size values.
	 * Parameters from conv_param on, per block: convK.w [Co,C,9], bnK.gamma, bnK.beta,
	 * bnK.running_mean, bnK.running_var [Co,1,1] (5 parameters per block). */
	int64_t channels, img_c, img_side, out_side;
	int blocks;
	int conv_param;
} SemaLayer;

typedef struct SemaOutput {
	const AstItem *item;
	const char *name;
	AstItemKind kind;     /* ITEM_OUTPUT, ITEM_EXTRA, ITEM_MODULATOR */
	int64_t size;
	int layer;            /* producer, -1 if none */
	int64_t offset;       /* within the producer's output */
	int64_t port_offset;  /* within the OUTPUTS port (declaration order) */
} SemaOutput;

typedef struct SemaFreeParam {
	const AstItem *item;
	IrShape shape;
	int param;
} SemaFreeParam;

typedef struct SemaConst {
	const AstDecl *decl;
	const char *name;
	const AstExpr *value; /* after --set */
	bool is_rule;
	double num;
	const AstDecl *rule;
	const char *alpha;    /* the α initialisation the constant names (random, uniform, negative, none), else NULL; static */
	const char *init;     /* the weight initialisation the constant names (identity, default), else NULL; static */
	int state;            /* evaluation: 0 not yet, 1 in progress, 2 done */
	bool ok;
} SemaConst;

typedef struct SemaModel {
	const AstDecl *decl;
	const char *name;
	const char *input_name;
	int64_t in_size;
	SemaOutput *outs;
	int nouts;
	int pred;             /* index of the `output` */
	int64_t pred_size, out_size;
	SemaLayer *layers;
	int nlayers;
	SemaFreeParam *fparams;
	int nfparams;
	const AstExpr *internal_loss; /* NULL if none */
	bool needs_grad;      /* some rule uses grad(internal_loss, .) */
	bool has_max_norm;
	double max_norm;
	PlLoss meta_loss;
	ProgTensor *params;   /* parameter table (names in the arena) */
	int nparams;
	ProgTensor *state;    /* state table */
	int nstate;
	int64_t total_params;
	const char *settings; /* "name=value ..." of every constant */
	/* name resolution for lowering */
	struct SemaProgram *prog;
} SemaModel;

typedef struct SemaProgram SemaProgram;

/* Built-in functions of expressions (docs/language.md section 5). */
typedef enum SemaFn {
	FN_NONE,
	FN_RELU, FN_TANH, FN_SIGMOID, FN_EXP, FN_LOG, FN_SQRT, FN_SQUARE, FN_ABS, FN_SIGN, FN_STEP,
	FN_MIN, FN_MAX,
	FN_SUM, FN_MEAN, FN_NORM, FN_BATCH_MEAN,
	FN_CONCAT, FN_OUTER, FN_GRAD,
} SemaFn;

SemaFn sema_fn(const char *name);

/* Checks the program made of files[0..nfiles) (files[0] is the one named on the command line, the
 * rest its imports). sets are "NAME=VALUE" strings from --set. Returns the checked model, or NULL when
 * the program has no model or has errors (reported to diag; see diag_error_count). */
SemaModel *sema_check(AstArena *arena, DiagCtx *diag, AstFile **files, int nfiles, int nset, char **sets);

/* Name lookup in the checked program (globals only). */
SemaSym sema_lookup(const SemaModel *m, const char *name);
/* Value of a numeric constant; false when name is not one. */
bool sema_const_value(const SemaModel *m, const char *name, double *v);
/* The rule a rule name or rule-valued constant denotes (NULL if neither). */
const AstDecl *sema_rule(const SemaModel *m, const char *name);

const char *sema_act_name(SemaAct a);
/* The rule-local names: pre, post, w, W, b, Wb. */
bool sema_is_rule_local(const char *name);

/* Levenshtein-nearest of cands[0..n) to name, or NULL if none is close (for "did you mean" hints). */
const char *sema_nearest(const char *name, const char *const *cands, int n);

/* "[16,256]" */
void sema_shape_str(IrShape s, char *buf, size_t n);

#endif
