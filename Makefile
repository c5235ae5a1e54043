# distx: PGXS build.
#
# The extension script sql/distx--0.1.sql is assembled from the fragments in
# sql/parts/ (one per concern, applied in name order), so that each part of the
# SQL surface lives next to the code it belongs to in review.

MODULE_big = distx
EXTENSION = distx

SRCS = $(sort $(wildcard src/*.c src/*/*.c))
OBJS = $(SRCS:.c=.o)

DATA_built = sql/distx--0.1.sql
SQL_PARTS = $(sort $(wildcard sql/parts/*.sql))

# pg_regress suites: every sql/<name>.sql except the extension scripts.
REGRESS = $(filter-out distx--%,$(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src -I$(shell $(PG_CONFIG) --includedir)
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
# track header dependencies, so that a changed header rebuilds what uses it
PG_CFLAGS += -MMD -MP
SHLIB_LINK_INTERNAL = -lpq
EXTRA_CLEAN = sql/distx--0.1.sql $(OBJS:.o=.d)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

-include $(OBJS:.o=.d)

sql/distx--0.1.sql: $(SQL_PARTS)
	cat $^ > $@

.PHONY: test demo
# The two commands README.md gives a new user.
test:
	bash scripts/test.sh
demo:
	bash scripts/demo.sh
