/* ctl_keys.c: orderctl's SCANs of the inventory keys under the prefix (every master of a cluster): collected, sorted, each once. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cluster_sync.h"
#include "config.h"
#include "ctl.h"
#include "inventory.h"
#include "util.h"

/* Escapes s for a Redis glob pattern: the prefix is the operator's choice
 * (config.c refuses glob characters in it; this holds if it ever allows one). */
static void
ctl_glob_escape(char *out, size_t len, const char *s)
{
	size_t n = 0;

	for (; *s != '\0' && n + 3 < len; s++) {
		if (strchr("*?[]\\", *s) != NULL)
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n] = '\0';
}

/* Whether what follows the hash tag's brace is one of kinds. */
static bool
ctl_keys_kind(const char *const *kinds, const char *kind)
{
	if (kinds == NULL)
		return true;
	for (; *kinds != NULL; kinds++) {
		size_t len = strlen(*kinds);

		if (len > 0 && (*kinds)[len - 1] == ':' ? strncmp(kind, *kinds, len) == 0 :
		    strcmp(kind, *kinds) == 0)
			return true;
	}
	return false;
}

/* The callback of cluster_sync_scan(): keeps PREFIX{sku}KIND keys. */
static int
ctl_keys_add(const char *key, void *arg)
{
	struct ctl_keys *ks = arg;
	const char *k = key + ks->plen, *close;

	if (strlen(key) < ks->plen || *k != '{' || (close = strchr(k, '}')) == NULL)
		return 0;
	if (!ctl_keys_kind(ks->kinds, close + 1))
		return 0;
	if (ks->n == ks->cap) {
		ks->cap = ks->cap ? ks->cap * 2 : 64;
		ks->v = xrealloc(ks->v, (size_t)ks->cap * sizeof(*ks->v));
	}
	ks->v[ks->n++] = ks->skus ? xstrndup(k + 1, (size_t)(close - k - 1)) : xstrdup(key);
	return 0;
}

void
ctl_keys_free(struct ctl_keys *ks)
{
	for (int i = 0; i < ks->n; i++)
		free(ks->v[i]);
	free(ks->v);
	ks->v = NULL;
	ks->n = ks->cap = 0;
}

static int
ctl_cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, each once: a key whose slot moves during a cluster SCAN can be
 * seen on both masters. */
static void
ctl_keys_sort(struct ctl_keys *ks)
{
	int n = 0;

	if (ks->n == 0)
		return;		/* v may be NULL: qsort() must not see it */
	qsort(ks->v, (size_t)ks->n, sizeof(*ks->v), ctl_cmpstr);
	for (int i = 0; i < ks->n; i++) {
		if (n > 0 && strcmp(ks->v[n - 1], ks->v[i]) == 0)
			free(ks->v[i]);
		else
			ks->v[n++] = ks->v[i];
	}
	ks->n = n;
}

/* SCAN, so that it never blocks Redis. */
int
ctl_keys_scan(struct ctl *c, const char *match, struct ctl_keys *ks)
{
	char pattern[INVENTORY_KEY_MAX * 2 + 16];
	size_t len;
	int err;

	ks->plen = strlen(c->cf->redis_prefix);
	ctl_glob_escape(pattern, sizeof(pattern), c->cf->redis_prefix);
	len = strlen(pattern);
	snprintf(pattern + len, sizeof(pattern) - len, "%s", match);
	err = cluster_sync_scan(c->rc, pattern, ctl_keys_add, ks);
	if (err < 0)
		ctl_fail("redis SCAN: %s", cluster_sync_errstr(c->rc));
	ctl_keys_sort(ks);
	return err < 0 ? -EIO : 0;
}

static int
ctl_keys_first(const char *key, void *arg)
{
	*(char **)arg = xstrdup(key);
	return 1;	/* one is enough */
}

char *
ctl_keys_any(struct ctl *c, int *err)
{
	char pattern[INVENTORY_KEY_MAX * 2 + 2], *key = NULL;

	ctl_glob_escape(pattern, sizeof(pattern) - 1, c->cf->redis_prefix);
	strcat(pattern, "*");
	if (cluster_sync_scan(c->rc, pattern, ctl_keys_first, &key) < 0) {
		ctl_fail("redis SCAN: %s", cluster_sync_errstr(c->rc));
		free(key);
		*err = -EIO;
		return NULL;
	}
	*err = 0;
	return key;
}
