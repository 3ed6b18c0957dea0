/* cluster_slots.c: Redis Cluster arithmetic and replies that the async router and the blocking client share: hash slots, MOVED/ASK, node lists, CLUSTER SLOTS. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "cluster.h"
#include "inventory.h"
#include "log.h"
#include "redis.h"
#include "util.h"

/* ---- slots ---- */

uint16_t
cluster_crc16(const char *buf, size_t len)
{
	uint16_t crc = 0;

	/* Bit by bit: keys are a few dozen bytes, a table would buy nothing. */
	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)((unsigned char)buf[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

int
cluster_keyslot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len), *close;

	if (open != NULL) {
		close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
		/* "{}" is no tag: the whole key is hashed then. */
		if (close != NULL && close > open + 1)
			return cluster_crc16(open + 1, (size_t)(close - open - 1)) & (CLUSTER_SLOTS - 1);
	}
	return cluster_crc16(key, len) & (CLUSTER_SLOTS - 1);
}

/* Parses "HOST:PORT" of len bytes; an empty host is allowed only when
 * empty_host is (Redis writes ":PORT" for a node whose address it does not know). */
static int
cluster_parse_addr(const char *s, size_t len, bool empty_host, struct cluster_addr *out)
{
	const char *colon = NULL;
	long port = 0;

	for (size_t i = 0; i < len; i++) {
		if (isspace((unsigned char)s[i]) || s[i] == ',')
			return -EINVAL;
		if (s[i] == ':')
			colon = s + i;
	}
	if (colon == NULL || (colon == s && !empty_host) ||
	    (size_t)(colon - s) >= sizeof(out->host) || colon + 1 == s + len)
		return -EINVAL;
	for (const char *p = colon + 1; p < s + len; p++) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		port = port * 10 + (*p - '0');
		if (port > 65535)
			return -EINVAL;
	}
	if (port < 1)
		return -EINVAL;
	memcpy(out->host, s, (size_t)(colon - s));
	out->host[colon - s] = '\0';
	out->port = (int)port;
	return 0;
}

int
cluster_parse_redirect(const char *err, size_t len, struct cluster_redirect *out)
{
	struct cluster_addr a;
	const char *p, *end = err + len, *sp;
	size_t word;
	long slot = 0;

	memset(out, 0, sizeof(*out));
	for (word = 0; word < len && err[word] != ' '; word++)
		;
	if (word == 5 && memcmp(err, "MOVED", 5) == 0)
		out->kind = CLUSTER_REDIRECT_MOVED;
	else if (word == 3 && memcmp(err, "ASK", 3) == 0)
		out->kind = CLUSTER_REDIRECT_ASK;
	else
		return -ENOENT;
	/* "KIND SLOT HOST:PORT", one blank between words, nothing after. */
	p = err + word;
	if (p >= end || *p != ' ' || p + 1 >= end || !isdigit((unsigned char)p[1]))
		return -EINVAL;
	for (p++; p < end && isdigit((unsigned char)*p); p++) {
		slot = slot * 10 + (*p - '0');
		if (slot >= CLUSTER_SLOTS)
			return -EINVAL;
	}
	if (p >= end || *p != ' ')
		return -EINVAL;
	p++;
	sp = memchr(p, ' ', (size_t)(end - p));
	if (sp != NULL || cluster_parse_addr(p, (size_t)(end - p), true, &a) < 0)
		return -EINVAL;
	out->slot = (int)slot;
	memcpy(out->host, a.host, sizeof(out->host));
	out->port = a.port;
	return 0;
}

int
cluster_parse_nodes(const char *list, struct cluster_addr **out, int *n, char **cause)
{
	struct cluster_addr *v = NULL;
	const char *p = list;
	int count = 0;

	*out = NULL;
	*n = 0;
	if (list == NULL || list[strspn(list, " \t")] == '\0') {
		*cause = xstrdup("no node given (HOST:PORT,...)");
		return -EINVAL;
	}
	for (;;) {
		size_t len = strcspn(p, ","), lead = strspn(p, " \t");
		const char *s = p + (lead < len ? lead : len);
		size_t n2 = len - (size_t)(s - p);

		while (n2 > 0 && (s[n2 - 1] == ' ' || s[n2 - 1] == '\t'))
			n2--;
		v = xrealloc(v, (size_t)(count + 1) * sizeof(*v));
		if (cluster_parse_addr(s, n2, false, &v[count]) < 0) {
			*cause = xasprintf("bad entry '%.*s': not HOST:PORT with a port in 1..65535",
			    (int)n2, s);
			free(v);
			return -EINVAL;
		}
		count++;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	*out = v;
	*n = count;
	return 0;
}

int
cluster_slots_parse(const redisReply *r, const char *from_host,
    int (*node_fn)(void *arg, const char *host, int port), void *arg, uint16_t *map,
    char *why, size_t whylen)
{
	int covered = 0;

	for (int i = 0; i < CLUSTER_SLOTS; i++)
		map[i] = CLUSTER_NO_NODE;
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, whylen, "%s", r->str);
		return -EINVAL;
	}
	if (r->type != REDIS_REPLY_ARRAY) {
		snprintf(why, whylen, "CLUSTER SLOTS: not an array (type %d)", r->type);
		return -EINVAL;
	}
	for (size_t e = 0; e < r->elements; e++) {
		const redisReply *x = r->element[e], *m;
		const char *host;
		long long lo, hi;
		int node;

		if (x->type != REDIS_REPLY_ARRAY || x->elements < 3 ||
		    x->element[0]->type != REDIS_REPLY_INTEGER ||
		    x->element[1]->type != REDIS_REPLY_INTEGER ||
		    (m = x->element[2])->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
		    m->element[0]->type != REDIS_REPLY_STRING ||
		    m->element[1]->type != REDIS_REPLY_INTEGER) {
			snprintf(why, whylen, "CLUSTER SLOTS: entry %zu is malformed", e);
			return -EINVAL;
		}
		lo = x->element[0]->integer;
		hi = x->element[1]->integer;
		if (lo < 0 || hi >= CLUSTER_SLOTS || lo > hi || m->element[1]->integer < 1 ||
		    m->element[1]->integer > 65535) {
			snprintf(why, whylen, "CLUSTER SLOTS: entry %zu: slots %lld-%lld, port %lld",
			    e, lo, hi, m->element[1]->integer);
			return -EINVAL;
		}
		host = m->element[0]->str;
		if (host[0] == '\0' || strcmp(host, "?") == 0)
			host = from_host;
		node = node_fn(arg, host, (int)m->element[1]->integer);
		if (node < 0) {
			snprintf(why, whylen, "CLUSTER SLOTS: master %s:%lld is not usable", host,
			    m->element[1]->integer);
			return -EINVAL;
		}
		for (long long s = lo; s <= hi; s++) {
			if (map[s] == CLUSTER_NO_NODE)
				covered++;
			map[s] = (uint16_t)node;
		}
	}
	return covered;
}

bool
cluster_is_retry_error(const char *s)
{
	/* TRYAGAIN: a multi-key call while its slot migrates and only some of
	 * its keys have moved; CLUSTERDOWN: no master for the slot for now. */
	return strncmp(s, "TRYAGAIN", 8) == 0 || strncmp(s, "CLUSTERDOWN", 11) == 0;
}
