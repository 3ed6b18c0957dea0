/* cluster_sync.c: the blocking Redis client of orderctl and the tests, over one server or a cluster (hiredis contexts, routed by cluster.c's slots). */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "cluster.h"
#include "cluster_sync.h"
#include "util.h"

#define CLUSTER_SHA_LEN 40

struct cluster_sync_node {
	char host[CLUSTER_HOST_MAX];
	int port;
	redisContext *ctx;		/* NULL until used, and after an I/O error */
};

/* One appended command, with what it takes to send it again. */
struct cluster_sync_entry {
	int node;
	bool failed;			/* its connection broke before the reply */
	redisReply *reply;		/* read ahead of its turn, or NULL */
	int key_arg;
	int argc;
	char **argv;
	size_t *argvlen;
};

struct cluster_sync_script {
	char sha[CLUSTER_SHA_LEN + 1];
	char *src;
};

struct cluster_sync {
	bool cluster;
	int timeout_ms;
	char *name;
	char err[512];
	struct cluster_sync_node *nodes;
	int nnodes;
	uint16_t *slot_node;
	struct cluster_sync_entry *q;
	int qhead, qlen, qcap;
	struct cluster_sync_script *scripts;
	int nscripts;
	char *user, *password;		/* AUTH on every connection; "" = none */
	bool refused;			/* a node refused the credentials */
};

static void cluster_sync_set_err(struct cluster_sync *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
cluster_sync_set_err(struct cluster_sync *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

static int
cluster_sync_node_index(void *arg, const char *host, int port)
{
	struct cluster_sync *s = arg;

	for (int i = 0; i < s->nnodes; i++)
		if (s->nodes[i].port == port && strcmp(s->nodes[i].host, host) == 0)
			return i;
	if (strlen(host) >= CLUSTER_HOST_MAX || s->nnodes >= CLUSTER_NO_NODE)
		return -1;
	s->nodes = xrealloc(s->nodes, (size_t)(s->nnodes + 1) * sizeof(*s->nodes));
	memset(&s->nodes[s->nnodes], 0, sizeof(*s->nodes));
	snprintf(s->nodes[s->nnodes].host, CLUSTER_HOST_MAX, "%s", host);
	s->nodes[s->nnodes].port = port;
	return s->nnodes++;
}

/* A broken context is dropped, and every queued command on it fails. */
static void
cluster_sync_drop(struct cluster_sync *s, int i)
{
	if (s->nodes[i].ctx != NULL)
		redisFree(s->nodes[i].ctx);
	s->nodes[i].ctx = NULL;
	for (int e = s->qhead; e < s->qlen; e++)
		if (s->q[e].node == i && s->q[e].reply == NULL)
			s->q[e].failed = true;
}

static redisContext *
cluster_sync_ctx(struct cluster_sync *s, int i)
{
	struct cluster_sync_node *n = &s->nodes[i];
	struct timeval tv = { .tv_sec = s->timeout_ms / 1000,
	    .tv_usec = (s->timeout_ms % 1000) * 1000 };

	if (n->ctx != NULL)
		return n->ctx;
	n->ctx = redisConnectWithTimeout(n->host, n->port, tv);
	if (n->ctx == NULL || n->ctx->err) {
		cluster_sync_set_err(s, "%s:%d: %s", n->host, n->port,
		    n->ctx != NULL ? n->ctx->errstr : "out of memory");
		if (n->ctx != NULL)
			redisFree(n->ctx);
		n->ctx = NULL;
		return NULL;
	}
	redisSetTimeout(n->ctx, tv);
	if (s->password[0] != '\0') {
		/* AUTH before anything else, as the async side does. */
		redisReply *r = s->user[0] != '\0' ?
		    redisCommandArgv(n->ctx, 3, (const char *[]){ "AUTH", s->user, s->password },
		    NULL) :
		    redisCommandArgv(n->ctx, 2, (const char *[]){ "AUTH", s->password }, NULL);

		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			cluster_sync_set_err(s, "%s:%d: AUTH as user '%s' refused: %s", n->host,
			    n->port, s->user[0] != '\0' ? s->user : "default",
			    r != NULL ? r->str : n->ctx->errstr);
			s->refused = true;
			if (r != NULL)
				freeReplyObject(r);
			redisFree(n->ctx);
			n->ctx = NULL;
			return NULL;
		}
		freeReplyObject(r);
	}
	return n->ctx;
}

/* The reply to one command on node i, or NULL (s->err set, context dropped). */
static redisReply *
cluster_sync_call(struct cluster_sync *s, int i, int argc, const char *const *argv,
    const size_t *argvlen)
{
	redisContext *ctx = cluster_sync_ctx(s, i);
	redisReply *r;

	if (ctx == NULL)
		return NULL;
	r = redisCommandArgv(ctx, argc, (const char **)argv, argvlen);
	if (r == NULL) {
		cluster_sync_set_err(s, "%s:%d: %s", s->nodes[i].host, s->nodes[i].port,
		    ctx->errstr[0] ? ctx->errstr : "no reply");
		cluster_sync_drop(s, i);
	}
	return r;
}

/* CLUSTER SLOTS from node i into the map.  Only while nothing is queued. */
static int
cluster_sync_load_map(struct cluster_sync *s, int i)
{
	static const char *const argv[2] = { "CLUSTER", "SLOTS" };
	uint16_t *map = xmalloc(CLUSTER_SLOTS * sizeof(*map));
	redisReply *r = cluster_sync_call(s, i, 2, argv, NULL);
	char why[300], host[CLUSTER_HOST_MAX];
	int covered;

	if (r == NULL) {
		free(map);
		return -EIO;
	}
	/* Parsing may add nodes, which moves s->nodes. */
	snprintf(host, sizeof(host), "%s", s->nodes[i].host);
	covered = cluster_slots_parse(r, host, cluster_sync_node_index, s, map, why,
	    sizeof(why));
	freeReplyObject(r);
	if (covered < 0) {
		cluster_sync_set_err(s, "%s:%d: %s", host, s->nodes[i].port, why);
		free(map);
		return -EIO;
	}
	if (covered != CLUSTER_SLOTS) {
		cluster_sync_set_err(s, "%s:%d: the slot map covers %d of %d slots (cluster "
		    "down?)", host, s->nodes[i].port, covered, CLUSTER_SLOTS);
		free(map);
		return -EIO;
	}
	memcpy(s->slot_node, map, CLUSTER_SLOTS * sizeof(*map));
	free(map);
	return 0;
}

/* The map again, from any node that answers. */
static int
cluster_sync_refresh(struct cluster_sync *s)
{
	for (int i = 0; i < s->nnodes; i++)
		if (cluster_sync_load_map(s, i) == 0)
			return 0;
	return -EIO;
}

/* The distinct masters of the map, in node order (caller frees). */
static int *
cluster_sync_masters(struct cluster_sync *s, int *n)
{
	int *v = xcalloc((size_t)s->nnodes + 1, sizeof(*v));
	bool *seen = xcalloc((size_t)s->nnodes + 1, sizeof(*seen));

	*n = 0;
	if (!s->cluster) {
		v[(*n)++] = 0;
	} else {
		for (int sl = 0; sl < CLUSTER_SLOTS; sl++)
			if (s->slot_node[sl] != CLUSTER_NO_NODE)
				seen[s->slot_node[sl]] = true;
		for (int i = 0; i < s->nnodes; i++)
			if (seen[i])
				v[(*n)++] = i;
	}
	free(seen);
	return v;
}

static int
cluster_sync_route(struct cluster_sync *s, int key_arg, const char *const *argv,
    const size_t *argvlen)
{
	int slot, *m, n, node;

	if (!s->cluster)
		return 0;
	if (key_arg < 0) {
		m = cluster_sync_masters(s, &n);
		node = n > 0 ? m[0] : 0;
		free(m);
		return node;
	}
	slot = cluster_keyslot(argv[key_arg],
	    argvlen != NULL ? argvlen[key_arg] : strlen(argv[key_arg]));
	if (s->slot_node[slot] == CLUSTER_NO_NODE) {
		cluster_sync_set_err(s, "no master for slot %d", slot);
		return -1;
	}
	return s->slot_node[slot];
}

static const char *
cluster_sync_script_src(struct cluster_sync *s, const char *sha, size_t len)
{
	for (int i = 0; i < s->nscripts; i++)
		if (len == CLUSTER_SHA_LEN && strncasecmp(s->scripts[i].sha, sha, len) == 0)
			return s->scripts[i].src;
	return NULL;
}

/*
 * Runs one command to its final reply.  first is a reply already read for
 * it from node first_node (a redirection met in the pipeline), or NULL.
 * Nothing may be queued on any connection.
 */
static redisReply *
cluster_sync_exec(struct cluster_sync *s, int key_arg, int argc, const char *const *argv,
    const size_t *argvlen, redisReply *first, int first_node)
{
	static const char *const asking[1] = { "ASKING" };
	int64_t deadline = util_mono_us() + (int64_t)s->timeout_ms * 1000;
	redisReply *r = first;
	int from = first_node, ask = -1, redirects = 0;
	bool reloaded = false;

	for (;;) {
		struct cluster_redirect rd;
		const char *src;

		if (r == NULL) {
			int i = ask >= 0 ? ask : cluster_sync_route(s, key_arg, argv, argvlen);

			if (i < 0)
				return NULL;
			if (ask >= 0) {
				r = cluster_sync_call(s, i, 1, asking, NULL);
				if (r == NULL)
					return NULL;
				freeReplyObject(r);
			}
			ask = -1;
			if ((r = cluster_sync_call(s, i, argc, argv, argvlen)) == NULL)
				return NULL;
			from = i;
		}
		if (r->type != REDIS_REPLY_ERROR)
			return r;
		if (s->cluster && cluster_parse_redirect(r->str, r->len, &rd) == 0) {
			char host[CLUSTER_HOST_MAX];
			int to;

			snprintf(host, sizeof(host), "%s",
			    rd.host[0] != '\0' ? rd.host : s->nodes[from].host);
			if (++redirects > CLUSTER_REDIRECT_MAX) {
				cluster_sync_set_err(s, "more than %d redirections, the last: %s",
				    CLUSTER_REDIRECT_MAX, r->str);
				freeReplyObject(r);
				return NULL;
			}
			freeReplyObject(r);
			r = NULL;
			if ((to = cluster_sync_node_index(s, host, rd.port)) < 0) {
				cluster_sync_set_err(s, "redirected to a bad address %s:%d", host,
				    rd.port);
				return NULL;
			}
			if (rd.kind == CLUSTER_REDIRECT_ASK) {
				ask = to;
			} else {
				/* The other slots that moved with it, at once; the
				 * MOVED is newer than any map a lagging node gives. */
				cluster_sync_refresh(s);
				s->slot_node[rd.slot] = (uint16_t)to;
			}
			continue;
		}
		if (s->cluster && cluster_is_retry_error(r->str) && util_mono_us() < deadline) {
			freeReplyObject(r);
			r = NULL;
			usleep(CLUSTER_RETRY_MS * 1000);
			continue;
		}
		/* Redis restarted or flushed its scripts: load it there, once. */
		if (!reloaded && strncmp(r->str, "NOSCRIPT", 8) == 0 && argc >= 2 &&
		    strcasecmp(argv[0], "EVALSHA") == 0 &&
		    (src = cluster_sync_script_src(s, argv[1], argvlen != NULL ? argvlen[1] :
		    strlen(argv[1]))) != NULL) {
			const char *load[3] = { "SCRIPT", "LOAD", src };

			freeReplyObject(r);
			if ((r = cluster_sync_call(s, from, 3, load, NULL)) == NULL)
				return NULL;
			freeReplyObject(r);
			r = NULL;
			reloaded = true;
			continue;
		}
		return r;
	}
}

int
cluster_sync_open(struct cluster_sync **out, const struct cluster_options *opt, char **cause)
{
	struct cluster_sync *s = xcalloc(1, sizeof(*s));
	struct cluster_addr *seeds = NULL;
	char *why = NULL, *tried = NULL;
	int nseeds = 0, err = -EINVAL;

	*out = NULL;
	*cause = NULL;
	s->cluster = opt->cluster;
	s->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 2000;
	s->user = xstrdup(opt->user != NULL ? opt->user : "");
	s->password = xstrdup(opt->password != NULL ? opt->password : "");
	if (!s->cluster) {
		if (opt->host == NULL || cluster_sync_node_index(s, opt->host, opt->port) < 0) {
			*cause = xstrdup("redis: no host");
			goto fail;
		}
		s->name = xasprintf("%s:%d", opt->host, opt->port);
		if (cluster_sync_ctx(s, 0) == NULL) {
			*cause = xasprintf("redis %s", s->err);
			err = -EIO;
			goto fail;
		}
		*out = s;
		return 0;
	}
	if (cluster_parse_nodes(opt->nodes, &seeds, &nseeds, &why) < 0) {
		*cause = xasprintf("redis.nodes: %s", why);
		goto fail;
	}
	s->name = xasprintf("cluster %s", opt->nodes);
	s->slot_node = xmalloc(CLUSTER_SLOTS * sizeof(*s->slot_node));
	for (int i = 0; i < nseeds; i++)
		cluster_sync_node_index(s, seeds[i].host, seeds[i].port);
	/* The first seed that answers gives the map; say why each did not. */
	err = -EIO;
	for (int i = 0; i < nseeds; i++) {
		char *t;

		if (cluster_sync_load_map(s, i) == 0) {
			err = 0;
			break;
		}
		t = xasprintf("%s%s%s", tried ? tried : "", tried ? "; " : "", s->err);
		free(tried);
		tried = t;
	}
	if (err < 0) {
		*cause = xasprintf("redis cluster: no node of %s gave a usable slot map (%s)",
		    opt->nodes, tried ? tried : "no node");
		goto fail;
	}
	free(tried);
	free(seeds);
	*out = s;
	return 0;
fail:
	free(why);
	free(tried);
	free(seeds);
	cluster_sync_free(s);
	return err;
}

static void
cluster_sync_entry_free(struct cluster_sync_entry *e)
{
	for (int i = 0; i < e->argc; i++)
		free(e->argv[i]);
	free(e->argv);
	free(e->argvlen);
	freeReplyObject(e->reply);
	memset(e, 0, sizeof(*e));
}

void
cluster_sync_free(struct cluster_sync *s)
{
	if (s == NULL)
		return;
	for (int e = s->qhead; e < s->qlen; e++)
		cluster_sync_entry_free(&s->q[e]);
	free(s->q);
	for (int i = 0; i < s->nnodes; i++)
		if (s->nodes[i].ctx != NULL)
			redisFree(s->nodes[i].ctx);
	free(s->nodes);
	for (int i = 0; i < s->nscripts; i++)
		free(s->scripts[i].src);
	free(s->scripts);
	free(s->slot_node);
	free(s->name);
	free(s->user);
	util_secret_free(s->password);
	free(s);
}

bool
cluster_sync_refused(const struct cluster_sync *s)
{
	return s->refused;
}

const char *
cluster_sync_name(const struct cluster_sync *s)
{
	return s->name;
}

const char *
cluster_sync_errstr(const struct cluster_sync *s)
{
	return s->err[0] ? s->err : "no error";
}

int
cluster_sync_queued(const struct cluster_sync *s)
{
	return s->qlen - s->qhead;
}

redisReply *
cluster_sync_command(struct cluster_sync *s, int key_arg, int argc, const char *const *argv,
    const size_t *argvlen)
{
	if (cluster_sync_queued(s) > 0) {
		cluster_sync_set_err(s, "%d appended commands wait for their replies",
		    cluster_sync_queued(s));
		return NULL;
	}
	if (argc <= 0 || key_arg >= argc) {
		cluster_sync_set_err(s, "bad arguments");
		return NULL;
	}
	return cluster_sync_exec(s, key_arg, argc, argv, argvlen, NULL, -1);
}

/* Reads every queued reply into memory, so that commands can go out
 * again without taking one for another's. */
static void
cluster_sync_read_ahead(struct cluster_sync *s)
{
	for (int e = s->qhead; e < s->qlen; e++) {
		struct cluster_sync_entry *x = &s->q[e];
		redisContext *ctx = s->nodes[x->node].ctx;
		void *r = NULL;

		if (x->reply != NULL || x->failed)
			continue;
		if (ctx == NULL || redisGetReply(ctx, &r) != REDIS_OK || r == NULL) {
			cluster_sync_set_err(s, "%s:%d: %s", s->nodes[x->node].host,
			    s->nodes[x->node].port, ctx != NULL ? ctx->errstr : "not connected");
			cluster_sync_drop(s, x->node);
			continue;
		}
		x->reply = r;
	}
}

int
cluster_sync_append(struct cluster_sync *s, int key_arg, int argc, const char *const *argv,
    const size_t *argvlen)
{
	struct cluster_sync_entry *e;
	redisContext *ctx;
	int i;

	if (argc <= 0 || key_arg >= argc)
		return -EINVAL;
	i = cluster_sync_route(s, key_arg, argv, argvlen);
	if (i < 0 && cluster_sync_queued(s) > 0) {
		cluster_sync_read_ahead(s);
		if (cluster_sync_refresh(s) == 0)
			i = cluster_sync_route(s, key_arg, argv, argvlen);
	}
	if (i < 0 || (ctx = cluster_sync_ctx(s, i)) == NULL)
		return -EIO;
	if (redisAppendCommandArgv(ctx, argc, (const char **)argv, argvlen) != REDIS_OK) {
		cluster_sync_set_err(s, "%s:%d: %s", s->nodes[i].host, s->nodes[i].port,
		    ctx->errstr);
		return -EIO;
	}
	if (s->qhead > 0 && s->qhead == s->qlen)
		s->qhead = s->qlen = 0;
	if (s->qlen == s->qcap) {
		s->qcap = s->qcap ? s->qcap * 2 : 64;
		s->q = xrealloc(s->q, (size_t)s->qcap * sizeof(*s->q));
	}
	e = &s->q[s->qlen++];
	memset(e, 0, sizeof(*e));
	e->node = i;
	e->key_arg = key_arg;
	e->argc = argc;
	e->argv = xcalloc((size_t)argc, sizeof(*e->argv));
	e->argvlen = xcalloc((size_t)argc, sizeof(*e->argvlen));
	for (int a = 0; a < argc; a++) {
		e->argvlen[a] = argvlen != NULL ? argvlen[a] : strlen(argv[a]);
		e->argv[a] = xmalloc(e->argvlen[a] + 1);
		memcpy(e->argv[a], argv[a], e->argvlen[a]);
		e->argv[a][e->argvlen[a]] = '\0';
	}
	return 0;
}

int
cluster_sync_get_reply(struct cluster_sync *s, redisReply **reply)
{
	struct cluster_sync_entry *e;
	struct cluster_redirect rd;
	redisReply *r;
	int node;

	*reply = NULL;
	if (cluster_sync_queued(s) == 0)
		return -ENOENT;
	e = &s->q[s->qhead];
	if (e->reply == NULL && !e->failed) {
		redisContext *ctx = s->nodes[e->node].ctx;
		void *got = NULL;

		if (ctx == NULL || redisGetReply(ctx, &got) != REDIS_OK || got == NULL) {
			cluster_sync_set_err(s, "%s:%d: %s", s->nodes[e->node].host,
			    s->nodes[e->node].port, ctx != NULL ? ctx->errstr : "not connected");
			cluster_sync_drop(s, e->node);
		} else {
			e->reply = got;
		}
	}
	if (e->failed) {
		cluster_sync_entry_free(e);
		s->qhead++;
		return -EIO;
	}
	r = e->reply;
	e->reply = NULL;
	node = e->node;
	if (r->type == REDIS_REPLY_ERROR &&
	    ((s->cluster && (cluster_parse_redirect(r->str, r->len, &rd) == 0 ||
	    cluster_is_retry_error(r->str))) || strncmp(r->str, "NOSCRIPT", 8) == 0)) {
		/* Sent again alone: first every reply still on the wire. */
		s->qhead++;
		cluster_sync_read_ahead(s);
		r = cluster_sync_exec(s, e->key_arg, e->argc, (const char *const *)e->argv,
		    e->argvlen, r, node);
		cluster_sync_entry_free(e);
		if (r == NULL)
			return -EIO;
		*reply = r;
		return 0;
	}
	cluster_sync_entry_free(e);
	s->qhead++;
	*reply = r;
	return 0;
}

int
cluster_sync_script_load(struct cluster_sync *s, const char *src, char sha[41])
{
	const char *argv[3] = { "SCRIPT", "LOAD", src };
	int n, *m, err = 0;

	if (cluster_sync_queued(s) > 0)
		return -EBUSY;
	m = cluster_sync_masters(s, &n);
	sha[0] = '\0';
	for (int k = 0; k < n && err == 0; k++) {
		redisReply *r = cluster_sync_call(s, m[k], 3, argv, NULL);

		if (r == NULL || r->type != REDIS_REPLY_STRING || r->len != CLUSTER_SHA_LEN) {
			if (r != NULL)
				cluster_sync_set_err(s, "%s:%d: SCRIPT LOAD: %s", s->nodes[m[k]].host,
				    s->nodes[m[k]].port, r->type == REDIS_REPLY_ERROR ? r->str :
				    "unexpected reply");
			err = -EIO;
		} else {
			memcpy(sha, r->str, CLUSTER_SHA_LEN);
			sha[CLUSTER_SHA_LEN] = '\0';
		}
		freeReplyObject(r);
	}
	free(m);
	if (err < 0)
		return err;
	if (cluster_sync_script_src(s, sha, CLUSTER_SHA_LEN) == NULL) {
		s->scripts = xrealloc(s->scripts, (size_t)(s->nscripts + 1) * sizeof(*s->scripts));
		memcpy(s->scripts[s->nscripts].sha, sha, CLUSTER_SHA_LEN + 1);
		s->scripts[s->nscripts].src = xstrdup(src);
		s->nscripts++;
	}
	return 0;
}

int
cluster_sync_scan(struct cluster_sync *s, const char *pattern,
    int (*fn)(const char *key, void *arg), void *arg)
{
	int n, *m, rc = 0;

	if (cluster_sync_queued(s) > 0)
		return -EBUSY;
	m = cluster_sync_masters(s, &n);
	for (int k = 0; k < n && rc == 0; k++) {
		char cursor[32] = "0";

		do {
			const char *argv[6] = { "SCAN", cursor, "MATCH", pattern, "COUNT", "1000" };
			redisReply *r = cluster_sync_call(s, m[k], 6, argv, NULL);

			if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
			    r->element[0]->type != REDIS_REPLY_STRING ||
			    r->element[1]->type != REDIS_REPLY_ARRAY) {
				if (r != NULL)
					cluster_sync_set_err(s, "%s:%d: SCAN: %s", s->nodes[m[k]].host,
					    s->nodes[m[k]].port, r->type == REDIS_REPLY_ERROR ?
					    r->str : "unexpected reply");
				freeReplyObject(r);
				rc = -EIO;
				break;
			}
			snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
			for (size_t i = 0; i < r->element[1]->elements && rc == 0; i++)
				if (r->element[1]->element[i]->type == REDIS_REPLY_STRING)
					rc = fn(r->element[1]->element[i]->str, arg);
			freeReplyObject(r);
		} while (rc == 0 && strcmp(cursor, "0") != 0);
	}
	free(m);
	return rc;
}
