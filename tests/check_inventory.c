/* check_inventory.c: unit tests of src/inventory.c's script calls: each constructor's KEYS and ARGV against the order its lua/ header states, read from the header itself, and the refusal of a key too long. */
#include "autoconfig.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"
#include "testutil.h"
#include "util.h"

/* ---- what a header says ------------------------------------------------ */

/*
 * A script's header is its leading "--" lines.  A line whose text begins
 * with KEYS[...] or ARGV[...] names what the caller passes there: [2], a
 * range [2..4], or an open end [5..] / [1..n] (as many as the caller
 * likes).  restore.lua has modes: a line "-- 'mode'" starts one, and what
 * the lines before the first mode name (ARGV[1], the mode) holds for every
 * mode.  Whatever else a header says of KEYS or ARGV, inside prose, is not
 * a definition.
 */
#define HDR_MAX 16

struct hdr_item {
	int lo, hi;		/* 1-based, inclusive; hi == lo for [N] */
	bool open;		/* [N..] or [N..n] */
	char what[160];		/* the rest of the line */
};

struct hdr_names {
	struct hdr_item keys[HDR_MAX], args[HDR_MAX];
	int nkeys, nargs;	/* items, not indexes */
};

struct hdr {
	struct hdr_names common;	/* before the first mode */
	struct hdr_names modes[4];
	char mode[4][32];
	int nmodes;
};

/* Parses "[N]", "[N..M]", "[N..]" or "[N..n]" at p; returns 0 or -1. */
static int
hdr_index(const char *p, struct hdr_item *it, const char **end)
{
	char *e;

	if (*p++ != '[')
		return -1;
	it->lo = it->hi = (int)strtol(p, &e, 10);
	it->open = false;
	if (e == p || it->lo < 1)
		return -1;
	p = e;
	if (strncmp(p, "..", 2) == 0) {
		p += 2;
		if (isdigit((unsigned char)*p)) {
			it->hi = (int)strtol(p, &e, 10);
			p = e;
		} else {
			it->open = true;
			if (*p == 'n')
				p++;
		}
	}
	if (*p != ']')
		return -1;
	*end = p + 1;
	return 0;
}

static void
hdr_read(const char *name, struct hdr *h)
{
	char rel[64], *text, *line, *save = NULL;
	struct hdr_names *cur = &h->common;

	memset(h, 0, sizeof(*h));
	snprintf(rel, sizeof(rel), "lua/%s.lua", name);
	ck_assert_msg(util_read_data_file(rel, &text, NULL) == 0, "%s: cannot read it", rel);
	for (line = strtok_r(text, "\n", &save); line != NULL && strncmp(line, "--", 2) == 0;
	    line = strtok_r(NULL, "\n", &save)) {
		const char *p = line + 2, *end;
		struct hdr_item it;

		while (*p == ' ')
			p++;
		if (*p == '\'') {
			const char *q = strchr(p + 1, '\'');

			ck_assert_ptr_nonnull(q);
			ck_assert_int_lt(h->nmodes, 4);
			snprintf(h->mode[h->nmodes], sizeof(h->mode[0]), "%.*s", (int)(q - p - 1),
			    p + 1);
			cur = &h->modes[h->nmodes++];
			continue;
		}
		if (strncmp(p, "KEYS[", 5) != 0 && strncmp(p, "ARGV[", 5) != 0)
			continue;
		ck_assert_msg(hdr_index(p + 4, &it, &end) == 0, "%s: cannot read '%s'", rel, line);
		while (*end == ' ')
			end++;
		snprintf(it.what, sizeof(it.what), "%s", end);
		if (p[0] == 'K') {
			ck_assert_int_lt(cur->nkeys, HDR_MAX);
			cur->keys[cur->nkeys++] = it;
		} else {
			ck_assert_int_lt(cur->nargs, HDR_MAX);
			cur->args[cur->nargs++] = it;
		}
	}
	free(text);
}

/*
 * The KEYS (or ARGV) one mode names, common ones first: they must follow
 * each other from 1 without a gap.  Returns how many a caller must pass;
 * *open says whether it may pass more.
 */
static int
hdr_count(const char *script, const struct hdr_item *a, int na, const struct hdr_item *b,
    int nb, bool *open)
{
	int next = 1;

	*open = false;
	for (int i = 0; i < na + nb; i++) {
		const struct hdr_item *it = i < na ? &a[i] : &b[i - na];

		ck_assert_msg(!*open, "%s: an index after an open range", script);
		ck_assert_msg(it->lo == next, "%s: index %d where %d was due", script, it->lo, next);
		if (it->open) {
			*open = true;
			continue;
		}
		next = it->hi + 1;
	}
	return next - 1;
}

/* What a key's line says it is, against the key the constructor made. */
static void
hdr_check_key(const char *script, const struct hdr_item *it, const char *key)
{
	const char *kind = strstr(it->what, "stock hash") != NULL ? "}:stock" :
	    strstr(it->what, "reservation record") != NULL ? "}:r:" :
	    strstr(it->what, "adjustment ids") != NULL ? "}:adds" : NULL;

	if (kind == NULL)
		return;		/* restore 'drop': any key of the sku */
	ck_assert_msg(strstr(key, kind) != NULL, "%s: KEYS[%d] is '%s', its header says %s",
	    script, it->lo, key, it->what);
}

/*
 * The header of script (and mode, for restore.lua) against call c: as
 * many KEYS and ARGV as it names (at least as many where it leaves the
 * count open: the caller adds the rest), each key of the kind it names,
 * and ARGV[1] the mode's name.
 */
static void
hdr_check(const char *mode, const struct inventory_call *c)
{
	const char *script = inventory_script_name(c->script);
	const struct hdr_names *m;
	struct hdr h;
	bool keys_open, args_open;
	int nkeys, nargs, i;

	hdr_read(script, &h);
	m = &h.common;
	if (mode != NULL) {
		for (i = 0; i < h.nmodes && strcmp(h.mode[i], mode) != 0; i++)
			;
		ck_assert_msg(i < h.nmodes, "%s: no mode '%s' in its header", script, mode);
		ck_assert_str_eq(c->args[0], mode);
		m = &h.modes[i];
	} else {
		ck_assert_msg(h.nmodes == 0, "%s: its header has modes", script);
	}
	nkeys = hdr_count(script, h.common.keys, h.common.nkeys, m == &h.common ? NULL : m->keys,
	    m == &h.common ? 0 : m->nkeys, &keys_open);
	nargs = hdr_count(script, h.common.args, h.common.nargs, m == &h.common ? NULL : m->args,
	    m == &h.common ? 0 : m->nargs, &args_open);
	if (keys_open)
		ck_assert_int_ge(c->nkeys, nkeys);
	else
		ck_assert_msg(c->nkeys == nkeys, "%s %s: %d KEYS built, the header names %d",
		    script, mode ? mode : "", c->nkeys, nkeys);
	ck_assert_msg(c->nargs == nargs, "%s %s: %d ARGV built, the header names %d%s", script,
	    mode ? mode : "", c->nargs, nargs, args_open ? " before its open range" : "");
	ck_assert_int_ge(c->nkeys, 1);		/* a cluster routes by KEYS[1] */
	ck_assert_int_le(c->nkeys, INVENTORY_CALL_KEYS);
	ck_assert_int_le(c->nargs, INVENTORY_CALL_ARGS);
	for (i = 0; i < m->nkeys; i++)
		hdr_check_key(script, &m->keys[i], c->keys[m->keys[i].lo - 1]);
}

/* ---- the constructors ---------------------------------------------------- */

static void
expect_words(const struct inventory_call *c, enum inventory_script s, const char *const *keys,
    int nkeys, const char *const *args, int nargs)
{
	ck_assert_int_eq(c->script, s);
	ck_assert_int_eq(c->nkeys, nkeys);
	ck_assert_int_eq(c->nargs, nargs);
	for (int i = 0; i < nkeys; i++)
		ck_assert_str_eq(c->keys[i], keys[i]);
	for (int i = 0; i < nargs; i++)
		ck_assert_str_eq(c->args[i], args[i]);
}

START_TEST(test_reserve_commit_release)
{
	static const char *const keys[] = { "p:{sku-1}:stock", "p:{sku-1}:r:o-1" };
	struct inventory_call c;

	ck_assert_int_eq(inventory_call_reserve(&c, "p:", "sku-1", "o-1", 3, 86400000), 0);
	expect_words(&c, INVENTORY_RESERVE, keys, 2, (const char *[]){ "o-1", "3", "86400000" },
	    3);
	hdr_check(NULL, &c);
	ck_assert_int_eq(inventory_call_commit(&c, "p:", "sku-1", "o-1", 5), 0);
	expect_words(&c, INVENTORY_COMMIT, keys, 2, (const char *[]){ "o-1", "5" }, 2);
	hdr_check(NULL, &c);
	ck_assert_int_eq(inventory_call_release(&c, "p:", "sku-1", "o-1", 0), 0);
	expect_words(&c, INVENTORY_RELEASE, keys, 2, (const char *[]){ "o-1", "0" }, 2);
	hdr_check(NULL, &c);
	/* A day longer than the journal keeps the order; 0 keeps it for good. */
	ck_assert_int_eq(inventory_keep_ms(336), (int64_t)360 * 3600 * 1000);
	ck_assert_int_eq(inventory_keep_ms(0), 0);
	/* No prefix is an empty one. */
	ck_assert_int_eq(inventory_call_commit(&c, NULL, "s", "o", 0), 0);
	ck_assert_str_eq(c.keys[0], "{s}:stock");
	ck_assert_str_eq(c.keys[1], "{s}:r:o");
}
END_TEST

START_TEST(test_stock_add)
{
	struct inventory_call c;

	ck_assert_int_eq(inventory_call_stock_add(&c, "p:", "sku-1", "adj-9", 1000000000000LL), 0);
	expect_words(&c, INVENTORY_STOCK_ADD, (const char *[]){ "p:{sku-1}:stock",
	    "p:{sku-1}:adds" }, 2, (const char *[]){ "adj-9", "1000000000000" }, 2);
	hdr_check(NULL, &c);
}
END_TEST

START_TEST(test_restore)
{
	struct inventory_call c;

	ck_assert_int_eq(inventory_call_restore_stock(&c, "p:", "sku-1", 10, 2, 3), 0);
	expect_words(&c, INVENTORY_RESTORE, (const char *[]){ "p:{sku-1}:stock",
	    "p:{sku-1}:adds" }, 2, (const char *[]){ "stock", "10", "2", "3" }, 4);
	hdr_check("stock", &c);
	ck_assert_int_eq(inventory_call_restore_reservation(&c, "p:", "sku-1", "o-1",
	    "COMMITTED", 2, 7), 0);
	expect_words(&c, INVENTORY_RESTORE, (const char *[]){ "p:{sku-1}:r:o-1" }, 1,
	    (const char *[]){ "reservation", "COMMITTED", "2", "o-1", "7" }, 5);
	hdr_check("reservation", &c);
	ck_assert_int_eq(inventory_call_restore_drop(&c, "p:{sku-1}:whatever"), 0);
	expect_words(&c, INVENTORY_RESTORE, (const char *[]){ "p:{sku-1}:whatever" }, 1,
	    (const char *[]){ "drop" }, 1);
	hdr_check("drop", &c);
}
END_TEST

/* Every mode restore.lua's header names has its constructor above. */
START_TEST(test_every_restore_mode_is_built)
{
	struct hdr h;

	hdr_read("restore", &h);
	ck_assert_int_eq(h.nmodes, 3);
	ck_assert_str_eq(h.mode[0], "stock");
	ck_assert_str_eq(h.mode[1], "reservation");
	ck_assert_str_eq(h.mode[2], "drop");
}
END_TEST

START_TEST(test_command_words)
{
	struct inventory_call c;
	const char *w[INVENTORY_CALL_WORDS];
	static const char *const want[] = { "EVALSHA", "0123abcd", "2", "p:{s}:stock",
	    "p:{s}:r:o", "o", "7", "0" };

	ck_assert_int_eq(inventory_call_reserve(&c, "p:", "s", "o", 7, 0), 0);
	ck_assert_int_eq(inventory_call_command(&c, "EVALSHA", "0123abcd", w), 8);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(want); i++)
		ck_assert_str_eq(w[i], want[i]);
	ck_assert_int_eq(inventory_call_restore_drop(&c, "k"), 0);
	ck_assert_int_eq(inventory_call_command(&c, "EVAL", "return 1", w), 5);
	ck_assert_str_eq(w[2], "1");
	ck_assert_str_eq(w[3], "k");
	ck_assert_str_eq(w[4], "drop");
}
END_TEST

/* A key cut short would be another order's or sku's: refused whole, at
 * one byte over the limit, by every constructor. */
START_TEST(test_key_too_long)
{
	/* "{" sku "}:stock" (the longest key of a sku) and its NUL fill it. */
	size_t fit = INVENTORY_KEY_MAX - 1 - strlen("{}:stock");
	/* "{s}:r:" order and its NUL fill it. */
	size_t ofit = INVENTORY_KEY_MAX - 1 - strlen("{s}:r:");
	char *sku = xmalloc(fit + 2), *order = xmalloc(ofit + 2);
	struct inventory_call c;

	memset(sku, 'a', fit + 1);
	sku[fit] = '\0';
	ck_assert_int_eq(inventory_call_stock_add(&c, NULL, sku, "a", 1), 0);
	ck_assert_uint_eq(strlen(c.keys[0]), INVENTORY_KEY_MAX - 1);
	ck_assert_int_eq(inventory_call_restore_stock(&c, NULL, sku, 1, 0, 0), 0);
	sku[fit] = 'a';
	sku[fit + 1] = '\0';
	ck_assert_int_eq(inventory_call_stock_add(&c, NULL, sku, "a", 1), -ENAMETOOLONG);
	ck_assert_int_eq(inventory_call_reserve(&c, NULL, sku, "o", 1, 0), -ENAMETOOLONG);
	ck_assert_int_eq(inventory_call_commit(&c, NULL, sku, "o", 0), -ENAMETOOLONG);
	ck_assert_int_eq(inventory_call_release(&c, NULL, sku, "o", 0), -ENAMETOOLONG);
	ck_assert_int_eq(inventory_call_restore_stock(&c, NULL, sku, 1, 0, 0), -ENAMETOOLONG);

	memset(order, 'o', ofit + 1);
	order[ofit] = '\0';
	ck_assert_int_eq(inventory_call_reserve(&c, NULL, "s", order, 1, 0), 0);
	ck_assert_uint_eq(strlen(c.keys[1]), INVENTORY_KEY_MAX - 1);
	ck_assert_int_eq(inventory_call_restore_reservation(&c, NULL, "s", order, "RESERVED", 1, 0),
	    0);
	order[ofit] = 'o';
	order[ofit + 1] = '\0';
	ck_assert_int_eq(inventory_call_reserve(&c, NULL, "s", order, 1, 0), -ENAMETOOLONG);
	ck_assert_int_eq(inventory_call_commit(&c, NULL, "s", order, 0), -ENAMETOOLONG);
	ck_assert_int_eq(inventory_call_release(&c, NULL, "s", order, 0), -ENAMETOOLONG);
	ck_assert_int_eq(inventory_call_restore_reservation(&c, NULL, "s", order, "RESERVED", 1, 0),
	    -ENAMETOOLONG);
	/* The prefix counts too. */
	ck_assert_int_eq(inventory_call_stock_add(&c, order, "s", "a", 1), -ENAMETOOLONG);
	free(sku);
	free(order);
}
END_TEST

START_TEST(test_null_is_einval)
{
	struct inventory_call c;

	ck_assert_int_eq(inventory_call_reserve(&c, "p:", NULL, "o", 1, 0), -EINVAL);
	ck_assert_int_eq(inventory_call_commit(&c, "p:", "s", NULL, 0), -EINVAL);
	ck_assert_int_eq(inventory_call_release(&c, "p:", NULL, "o", 0), -EINVAL);
	ck_assert_int_eq(inventory_call_stock_add(&c, "p:", "s", NULL, 1), -EINVAL);
	ck_assert_int_eq(inventory_call_restore_stock(&c, "p:", NULL, 0, 0, 0), -EINVAL);
	ck_assert_int_eq(inventory_call_restore_reservation(&c, "p:", "s", "o", NULL, 1, 0),
	    -EINVAL);
	ck_assert_int_eq(inventory_call_restore_drop(&c, NULL), -EINVAL);
}
END_TEST

static Suite *
inventory_suite(void)
{
	Suite *s = suite_create("inventory");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_reserve_commit_release);
	tcase_add_test(tc, test_stock_add);
	tcase_add_test(tc, test_restore);
	tcase_add_test(tc, test_every_restore_mode_is_built);
	tcase_add_test(tc, test_command_words);
	tcase_add_test(tc, test_key_too_long);
	tcase_add_test(tc, test_null_is_einval);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(inventory_suite());
}
