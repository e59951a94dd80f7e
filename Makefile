# licdata -- PGXS build, plus the project's own test and demo targets.
#
#   make && make install      build and install into the PostgreSQL that pg_config names
#   make test                 every test (pg_regress, isolation, TAP, clients), each suite reported
#   make demo                 a private throwaway cluster running both licensed-access cases
#   make demo KEEP=1          the same, and the cluster keeps running to explore; make demo-stop
#
# PGXS's own "make check" is a silent no-op for extensions; use "make test".

EXTENSION    = licdata
EXTVERSION   = 1.1
MODULE_big   = licdata
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
# licdata--1.0.sql is the released 1.0 install script, frozen; 1.1 is built from
# schema/*.sql, and the upgrade from 1.0 from schema/upgrade/1.0--1.1/*.sql.
DATA         = licdata--1.0.sql
DATA_built   = licdata--$(EXTVERSION).sql licdata--1.0--$(EXTVERSION).sql
PG_CONFIG   ?= pg_config
# The library knows the SQL version it serves (src/catalog.c's version check).
PG_CPPFLAGS  = -I$(srcdir)/src -I$(libpq_srcdir) -DLICDATA_VERSION='"$(EXTVERSION)"'
PG_CFLAGS    = -Wall -Werror
SHLIB_LINK   = -lcrypto -lsodium
# libpq: a standby's worker hands its records to the primary (src/replica.c)
SHLIB_LINK_INTERNAL = $(libpq)
EXTRA_CLEAN  = licdata--$(EXTVERSION).sql licdata--1.0--$(EXTVERSION).sql tools/licdata-sign results regression.diffs regression.out \
               output_iso tmp_check log
# Debian's server build has LLVM; skip bitcode so clang is not needed.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

srcdir ?= .

# The install script is assembled from schema/NN_*.sql in order.
licdata--$(EXTVERSION).sql: $(sort $(wildcard schema/*.sql))
	( printf '%s\n' '\echo Use "CREATE EXTENSION licdata" to load this file. \quit'; \
	  for f in $^; do printf '\n-- %s\n' "$$f"; cat "$$f"; done ) > $@

licdata--1.0--$(EXTVERSION).sql: $(sort $(wildcard schema/upgrade/1.0--$(EXTVERSION)/*.sql))
	( printf '%s\n' '\echo Use "ALTER EXTENSION licdata UPDATE" to load this file. \quit'; \
	  for f in $^; do printf '\n-- %s\n' "$$f"; cat "$$f"; done ) > $@

$(OBJS): $(wildcard src/*.h) Makefile

# The authority's offline signing tool (libsodium only), installed next to
# the PostgreSQL programs.
all: tools/licdata-sign
tools/licdata-sign: tools/licdata-sign.c
	$(CC) -O2 -Wall -Werror -o $@ $< -lsodium
install: install-sign
.PHONY: install-sign
install-sign: tools/licdata-sign
	$(INSTALL_PROGRAM) tools/licdata-sign '$(DESTDIR)$(bindir)/licdata-sign'

.PHONY: test demo demo-stop deps
test:
	bash test/run-tests.sh

# make demo KEEP=1 leaves the demo server running (connection lines printed);
# make demo-stop stops it.
demo:
	LICDATA_DEMO_KEEP=$(KEEP) bash test/demo/run-demo.sh

demo-stop:
	bash test/demo/run-demo.sh --stop

deps:
	bash test/lib/deps.sh
