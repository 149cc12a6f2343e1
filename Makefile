EXTENSION = release_expired_orders
EXTVERSION = 1.2

MODULE_big = release_expired_orders
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))

DATA = $(wildcard sql/$(EXTENSION)--*.sql)

# Regression tests: every sql/NAME.sql that is not an install script.
REGRESS = $(sort $(filter-out $(EXTENSION)--%,$(basename $(notdir $(wildcard sql/*.sql)))))
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql

# Isolation specs: test/specs/NAME.spec with test/expected/NAME.out.
ISOLATION = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test

PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
# Warnings are errors in CI only (make WERROR=1): a newer compiler's new
# warning must not stop a user's build.
ifdef WERROR
PG_CFLAGS += -Werror
endif
# The library refuses to run against the SQL objects of another version.
PG_CPPFLAGS += -DREO_VERSION='"$(EXTVERSION)"'
ifdef ASSERTS
PG_CPPFLAGS += -DUSE_ASSERT_CHECKING
endif

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# TAP tests (test/t/*.pl) against the installed extension; run as a user
# that may run initdb (not root).  Each file starts its own servers on
# free ports and mostly waits (for pg_cron's minute, a worker's deadline),
# so four run at once, the longest first: TAP_JOBS=1 runs them one by one.
# (PROVE_FLAGS, which PGXS sets empty, is passed too: --verbose, say.)
TAP_JOBS ?= 4
TAP_LONGEST = test/t/020_cron_fires.pl test/t/051_launcher.pl \
	test/t/052_worker_findings.pl test/t/050_worker.pl
TAP_TESTS = $(TAP_LONGEST) $(filter-out $(TAP_LONGEST),$(sort $(wildcard test/t/*.pl)))
.PHONY: tap
tap:
	rm -rf '$(CURDIR)'/tmp_check
	PATH="$(bindir):$$PATH" PG_REGRESS='$(pgxsdir)/src/test/regress/pg_regress' \
		prove -j$(TAP_JOBS) $(PROVE_FLAGS) -I '$(pgxsdir)/src/test/perl' -I test/t $(TAP_TESTS)

# PGXN release: make dist writes $(EXTENSION)-$(DISTVERSION).zip, the
# committed tree (HEAD) under the folder $(EXTENSION)-$(DISTVERSION)/, as
# PGXN takes it.  META.json's "version" is $(DISTVERSION) (test/pgxn_meta.py
# checks).
DISTVERSION = $(EXTVERSION).0
.PHONY: dist
dist:
	git archive --format zip --prefix=$(EXTENSION)-$(DISTVERSION)/ \
		-o $(EXTENSION)-$(DISTVERSION).zip HEAD
	@echo "$(EXTENSION)-$(DISTVERSION).zip"
