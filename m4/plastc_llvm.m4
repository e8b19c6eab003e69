# PLASTC_CHECK_LLVM: find LLVM 14, 15 or 16 through llvm-config (Debian ships no .pc for LLVM).
# Sets have_llvm=yes|no, LLVM_CFLAGS, LLVM_LIBS, LLVM_VERSION; defines HAVE_LLVM.
AC_DEFUN([PLASTC_CHECK_LLVM], [
  AC_ARG_WITH([llvm],
    [AS_HELP_STRING([--with-llvm=PATH_TO_LLVM_CONFIG], [LLVM backend (default: auto, llvm-config-14..16)])],
    [], [with_llvm=auto])
  have_llvm=no
  LLVM_CONFIG=""
  AS_CASE([$with_llvm],
    [no], [],
    [auto|yes], [AC_PATH_PROGS([LLVM_CONFIG], [llvm-config-14 llvm-config-15 llvm-config-16 llvm-config])],
    [LLVM_CONFIG="$with_llvm"])
  AS_IF([test -n "$LLVM_CONFIG"], [
    LLVM_VERSION=`$LLVM_CONFIG --version`
    llvm_major=`echo "$LLVM_VERSION" | sed 's/\..*//'`
    AS_IF([test "$llvm_major" -ge 14 2>/dev/null && test "$llvm_major" -le 16], [
      LLVM_CFLAGS="-I`$LLVM_CONFIG --includedir`"
      LLVM_LIBS="`$LLVM_CONFIG --ldflags` `$LLVM_CONFIG --libs core orcjit native passes` `$LLVM_CONFIG --system-libs`"
      save_CPPFLAGS="$CPPFLAGS"; CPPFLAGS="$CPPFLAGS $LLVM_CFLAGS"
      AC_CHECK_HEADERS([llvm-c/LLJIT.h llvm-c/Transforms/PassBuilder.h], [have_llvm=yes], [have_llvm=no; break])
      CPPFLAGS="$save_CPPFLAGS"
    ], [AC_MSG_WARN([LLVM $LLVM_VERSION is not 14, 15 or 16: LLVM backend disabled])])
  ])
  AS_IF([test "x$with_llvm" = "xyes" && test "x$have_llvm" != "xyes"],
    [AC_MSG_ERROR([--with-llvm given but LLVM 14-16 development files not found (apt-get install llvm-14-dev)])])
  AS_IF([test "x$have_llvm" = "xyes"], [AC_DEFINE([HAVE_LLVM], [1], [LLVM backend available])],
    [LLVM_CFLAGS=""; LLVM_LIBS=""])
  AC_SUBST([LLVM_CFLAGS])
  AC_SUBST([LLVM_LIBS])
  AC_SUBST([LLVM_VERSION])
])
