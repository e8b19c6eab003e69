%define api.pure full
%code requires { typedef void *yyscan_t; }
%param { yyscan_t scanner }
%{
#include <stdio.h>
#include "parser.h"
int yylex(YYSTYPE *lval, yyscan_t scanner);
static void yyerror(yyscan_t scanner, const char *msg) { (void)scanner; fprintf(stderr, "%s\n", msg); }
%}
%%
file: %empty ;
%%
