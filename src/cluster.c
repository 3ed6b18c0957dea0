/* cluster.c: Redis Cluster for orderd: the async router over one struct redis per master (the slot map, MOVED, ASK, TRYAGAIN). */
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

#define CLUSTER_COMPONENT "cluster"
#define CLUSTER_REFRESH_MIN_MS 100	/* at most this often CLUSTER SLOTS */
#define CLUSTER_REFRESH_RETRY_MS 1000	/* after a CLUSTER SLOTS that failed */

/* ---- the async router ---- */

struct cluster_node {
	struct cluster *c;
	int idx;			/* in c->nodes */
	char host[CLUSTER_HOST_MAX];
	int port;
	struct redis *r;
	int owned;			/* slots the map gives it */
};

/* One call of the user, kept (with copies of its arguments) until its
 * final answer, so that a redirection can send it again. */
struct cluster_call {
	struct cluster_call *next;	/* on c->parked */
	struct cluster *c;
	int script;			/* enum inventory_script, or -1 for a command */
	int slot;			/* -1: any master */
	redis_reply_fn cb;
	void *arg;
	struct cluster_node *ask;	/* ASK target, for the next send only */
	struct cluster_node *sent_to;
	int redirects;
	int64_t retry_us;		/* parked: not sent again before */
	int64_t deadline_us;		/* parked: given up after; 0 before the first parking */
	unsigned timeout_gen;		/* the cluster's timeout_gen when deadline_us was set */
	char why[200];			/* what it waits for, for the final error */
	int nkeys;			/* script calls: argv = keys, then args */
	int argc;
	const char **argv;
	size_t *argvlen;
};

struct cluster {
	uv_loop_t *loop;
	bool cluster;
	struct redis_options ro;	/* host set per node */
	char *nodes_text;		/* the seed list, for messages */
	char *src[INVENTORY_SCRIPT_COUNT];
	void (*state_cb)(bool up, void *arg);
	void *state_arg;
	void (*refused_cb)(const char *why, void *arg);
	char *user, *password;		/* ro.user and ro.password point here */

	struct cluster_node **nodes;
	int nnodes;
	uint16_t *slot_node;		/* CLUSTER_SLOTS indices into nodes */
	int covered;			/* slots with a master in the map */
	bool map_loaded;
	bool up;

	struct cluster_call *parked, **parked_tail;
	size_t pending;

	uv_timer_t kick;		/* sends parked calls again */
	uv_timer_t refresh;		/* paces and retries CLUSTER SLOTS */
	bool refresh_wanted;
	bool refreshing;		/* a CLUSTER SLOTS is out */
	bool refresh_warned;		/* its failure is logged */
	int64_t refresh_not_before_us;
	int refresh_from;		/* the node asked first next time */
	int64_t started_us;
	/* cluster_set_timeout's: a deadline set before the last change is
	 * capped at cap_us when its call parks again (it may have been out on
	 * a node, not parked, when the change came). */
	unsigned timeout_gen;
	int64_t cap_us;
	bool warned_nomap;
	unsigned long long moved, asked, retried;

	bool closing;
	int open;			/* timers and connections not yet closed */
	void (*closed_cb)(void *arg);
	void *closed_arg;
};

static void cluster_on_reply(redisReply *reply, int status, void *arg);
static void cluster_refresh_try(struct cluster *c);
static void cluster_refresh_arm(struct cluster *c);

static void
cluster_free_mem(struct cluster *c)
{
	for (int i = 0; i < c->nnodes; i++)
		free(c->nodes[i]);
	free(c->nodes);
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		free(c->src[i]);
	free(c->slot_node);
	free(c->nodes_text);
	free(c->user);
	util_secret_free(c->password);
	free(c);
}

/* One timer or connection is released; the last one frees c. */
static void
cluster_released(struct cluster *c)
{
	void (*cb)(void *);
	void *arg;

	if (--c->open > 0)
		return;
	cb = c->closed_cb;
	arg = c->closed_arg;
	cluster_free_mem(c);
	if (cb != NULL)
		cb(arg);
}

static void
cluster_on_handle_closed(uv_handle_t *h)
{
	cluster_released(h->data);
}

static void
cluster_on_redis_closed(void *arg)
{
	cluster_released(arg);
}

static void cluster_on_node_state(bool up, void *arg);

/* A node refused our credentials: the router's owner hears it. */
static void
cluster_on_node_refused(const char *why, void *arg)
{
	struct cluster_node *n = arg;

	if (n->c->refused_cb != NULL)
		n->c->refused_cb(why, n->c->state_arg);
}

/* The node at host:port, connecting to it when it is new; NULL when it
 * cannot be (closing, or an address redis_new() refuses). */
static struct cluster_node *
cluster_node_get(struct cluster *c, const char *host, int port)
{
	struct redis_options ro = c->ro;
	struct cluster_node *n;
	int err;

	for (int i = 0; i < c->nnodes; i++)
		if (c->nodes[i]->port == port && strcmp(c->nodes[i]->host, host) == 0)
			return c->nodes[i];
	if (c->closing || c->nnodes >= CLUSTER_NO_NODE || strlen(host) >= CLUSTER_HOST_MAX)
		return NULL;
	n = xcalloc(1, sizeof(*n));
	n->c = c;
	n->idx = c->nnodes;
	snprintf(n->host, sizeof(n->host), "%s", host);
	n->port = port;
	ro.host = n->host;
	ro.port = port;
	ro.refused_cb = c->cluster ? cluster_on_node_refused : c->refused_cb;
	/* One server: its state is the router's, so the user hears it directly. */
	err = c->cluster ? redis_new(&n->r, c->loop, &ro, c->src, cluster_on_node_state, n) :
	    redis_new(&n->r, c->loop, &ro, c->src, c->state_cb, c->state_arg);
	if (err < 0) {
		log_error(CLUSTER_COMPONENT, "node %s:%d: %s", host, port, strerror(-err));
		free(n);
		return NULL;
	}
	c->nodes = xrealloc(c->nodes, (size_t)(c->nnodes + 1) * sizeof(*c->nodes));
	c->nodes[c->nnodes++] = n;
	c->open++;
	if (c->cluster)
		log_debug(CLUSTER_COMPONENT, "connecting to node %s:%d", host, port);
	return n;
}

static int
cluster_node_index(void *arg, const char *host, int port)
{
	struct cluster_node *n = cluster_node_get(arg, host, port);

	return n != NULL ? n->idx : -1;
}

static void
cluster_set_owner(struct cluster *c, int slot, struct cluster_node *n)
{
	uint16_t old = c->slot_node[slot];

	if (old == (uint16_t)n->idx)
		return;
	if (old != CLUSTER_NO_NODE)
		c->nodes[old]->owned--;
	else
		c->covered++;
	c->slot_node[slot] = (uint16_t)n->idx;
	n->owned++;
}

/* Recomputes "up" and tells the user when it changed. */
static void
cluster_update_state(struct cluster *c)
{
	char why[CLUSTER_HOST_MAX + 64] = "";
	int masters = 0;
	bool up;

	if (!c->cluster || c->closing)
		return;
	if (!c->map_loaded)
		snprintf(why, sizeof(why), "no slot map yet");
	else if (c->covered != CLUSTER_SLOTS)
		snprintf(why, sizeof(why), "%d of %d slots have no master", CLUSTER_SLOTS - c->covered,
		    CLUSTER_SLOTS);
	for (int i = 0; i < c->nnodes; i++) {
		struct cluster_node *n = c->nodes[i];

		if (n->owned == 0)
			continue;
		masters++;
		if (!redis_is_up(n->r) && why[0] == '\0')
			snprintf(why, sizeof(why), "master %s:%d is not connected", n->host, n->port);
	}
	up = why[0] == '\0';
	if (up == c->up)
		return;
	c->up = up;
	if (up)
		log_info(CLUSTER_COMPONENT, "up: %d masters serve all %d slots", masters,
		    CLUSTER_SLOTS);
	else
		log_warn(CLUSTER_COMPONENT, "down: %s", why);
	if (c->state_cb != NULL)
		c->state_cb(up, c->state_arg);
}

/* Ends a call: the record is freed before cb runs, so cb may do anything. */
static void
cluster_complete(struct cluster *c, struct cluster_call *k, redisReply *reply, int status)
{
	redis_reply_fn cb = k->cb;
	void *arg = k->arg;

	c->pending--;
	free(k);
	cb(reply, status, arg);
}

static void cluster_fail(struct cluster *c, struct cluster_call *k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Ends a call with an error reply of our own: the caller treats it like
 * one of Redis's (orderd's engine tries the step again a little later). */
static void
cluster_fail(struct cluster *c, struct cluster_call *k, const char *fmt, ...)
{
	char msg[400];
	redisReply r = { .type = REDIS_REPLY_ERROR };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r.str = msg;
	r.len = strlen(msg);
	log_debug(CLUSTER_COMPONENT, "call for slot %d fails: %s", k->slot, msg);
	cluster_complete(c, k, &r, 0);
}

static struct cluster_node *
cluster_route(struct cluster *c, int slot)
{
	if (slot >= 0)
		return c->slot_node[slot] == CLUSTER_NO_NODE ? NULL : c->nodes[c->slot_node[slot]];
	/* Key-less: any master that is up. */
	for (int i = 0; i < c->nnodes; i++)
		if (c->nodes[i]->owned > 0 && redis_is_up(c->nodes[i]->r))
			return c->nodes[i];
	return NULL;
}

static void
cluster_on_asking(redisReply *reply, int status, void *arg)
{
	/* ASKING answers OK; a failure shows in the call sent after it. */
	(void)reply;
	(void)status;
	(void)arg;
}

/*
 * Hands a call to the node of its slot (or its ASK target).  Returns 0 when
 * sent, -EAGAIN when that node is unknown or not up, or what redis.c
 * refused it with.
 */
static int
cluster_send(struct cluster *c, struct cluster_call *k)
{
	static const char *const asking[1] = { "ASKING" };
	struct cluster_node *n = k->ask != NULL ? k->ask : cluster_route(c, k->slot);
	int err;

	if (n == NULL || !redis_is_up(n->r))
		return -EAGAIN;
	/* ASKING holds for the next command of the same connection only, and
	 * redis.c sends in order on one connection: the pair stays together. */
	if (k->ask != NULL &&
	    (err = redis_command_argv(n->r, 1, asking, NULL, cluster_on_asking, NULL)) < 0)
		return err;
	if (k->script >= 0)
		err = redis_eval(n->r, (enum inventory_script)k->script, k->nkeys, k->argv,
		    k->argc - k->nkeys, k->argv + k->nkeys, cluster_on_reply, k);
	else
		err = redis_command_argv(n->r, k->argc, k->argv, k->argvlen, cluster_on_reply, k);
	if (err == 0)
		k->sent_to = n;
	return err;
}

static void
cluster_on_kick(uv_timer_t *t)
{
	struct cluster *c = t->data;
	struct cluster_call *work = c->parked;
	int64_t now = util_mono_us();

	c->parked = NULL;
	c->parked_tail = &c->parked;
	while (work != NULL) {
		struct cluster_call *k = work;

		work = k->next;
		k->next = NULL;
		if (c->closing) {
			cluster_complete(c, k, NULL, -ECANCELED);
			continue;
		}
		if (now >= k->retry_us && cluster_send(c, k) == 0)
			continue;
		if (now >= k->deadline_us) {
			cluster_fail(c, k, "%s (gave up after %d ms)", k->why, c->ro.timeout_ms);
			continue;
		}
		*c->parked_tail = k;
		c->parked_tail = &k->next;
	}
	if (c->parked == NULL && !c->closing)
		uv_timer_stop(&c->kick);
}

/* Sends k again in delay_ms or once its node is up, until timeout_ms after
 * it first had to wait. */
static void
cluster_park(struct cluster *c, struct cluster_call *k, int delay_ms, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
cluster_park(struct cluster *c, struct cluster_call *k, int delay_ms, const char *fmt, ...)
{
	int64_t now = util_mono_us();
	va_list ap;

	if (c->closing) {
		cluster_complete(c, k, NULL, -ECANCELED);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(k->why, sizeof(k->why), fmt, ap);
	va_end(ap);
	if (k->deadline_us == 0)
		k->deadline_us = now + (int64_t)c->ro.timeout_ms * 1000;
	else if (k->timeout_gen != c->timeout_gen && k->deadline_us > c->cap_us)
		k->deadline_us = c->cap_us;
	k->timeout_gen = c->timeout_gen;
	k->retry_us = now + (int64_t)delay_ms * 1000;
	k->next = NULL;
	*c->parked_tail = k;
	c->parked_tail = &k->next;
	if (!uv_is_active((uv_handle_t *)&c->kick))
		uv_timer_start(&c->kick, cluster_on_kick, CLUSTER_RETRY_MS, CLUSTER_RETRY_MS);
}

/* Sends k now if its node is up, else parks it. */
static void
cluster_dispatch(struct cluster *c, struct cluster_call *k)
{
	struct cluster_node *n;

	if (c->closing) {
		cluster_complete(c, k, NULL, -ECANCELED);
		return;
	}
	if (cluster_send(c, k) == 0)
		return;
	n = k->ask != NULL ? k->ask : cluster_route(c, k->slot);
	if (n != NULL)
		cluster_park(c, k, 0, "CLUSTER node %s:%d is not connected", n->host, n->port);
	else
		cluster_park(c, k, 0, "CLUSTERDOWN no master known for slot %d", k->slot);
}

static void
cluster_refresh(struct cluster *c)
{
	c->refresh_wanted = true;
	cluster_refresh_try(c);
	cluster_refresh_arm(c);
}

static void
cluster_on_reply(redisReply *reply, int status, void *arg)
{
	struct cluster_call *k = arg;
	struct cluster *c = k->c;
	struct cluster_node *from = k->sent_to, *to;
	struct cluster_redirect rd;
	int err;

	k->sent_to = NULL;
	k->ask = NULL;
	if (status < 0) {
		/* The connection of a master going down takes the router down
		 * after this, and the caller sends again when it is back up.  A
		 * node that is no master (an ASK target) does not: say it with an
		 * error reply, which the caller retries on its own. */
		if (status != -ECANCELED && !c->closing && c->up && from != NULL && from->owned == 0)
			cluster_fail(c, k, "CLUSTER node %s:%d: %s", from->host, from->port,
			    status == -ETIMEDOUT ? "no reply in time" : "connection lost");
		else
			cluster_complete(c, k, NULL, status);
		return;
	}
	if (reply->type != REDIS_REPLY_ERROR || c->closing) {
		cluster_complete(c, k, reply, 0);
		return;
	}
	err = cluster_parse_redirect(reply->str, reply->len, &rd);
	if (err == 0) {
		if (++k->redirects > CLUSTER_REDIRECT_MAX) {
			log_warn(CLUSTER_COMPONENT, "slot %d: more than %d redirections, the last "
			    "%s; the call fails", rd.slot, CLUSTER_REDIRECT_MAX, reply->str);
			cluster_fail(c, k, "CLUSTER too many redirections (%d) for slot %d, the "
			    "last: %s", CLUSTER_REDIRECT_MAX, rd.slot, reply->str);
			return;
		}
		to = cluster_node_get(c, rd.host[0] != '\0' ? rd.host : from->host, rd.port);
		if (to == NULL) {
			cluster_complete(c, k, reply, 0);
			return;
		}
		if (rd.kind == CLUSTER_REDIRECT_MOVED) {
			log_debug(CLUSTER_COMPONENT, "%s", reply->str);
			c->moved++;
			cluster_set_owner(c, rd.slot, to);
			cluster_refresh(c);
		} else {
			c->asked++;
			k->ask = to;
		}
		cluster_dispatch(c, k);
		/* A slot moved to a master not connected yet takes the router down. */
		cluster_update_state(c);
		return;
	}
	if (cluster_is_retry_error(reply->str)) {
		c->retried++;
		if (strncmp(reply->str, "CLUSTERDOWN", 11) == 0)
			cluster_refresh(c);
		if (k->deadline_us != 0 && util_mono_us() >= k->deadline_us) {
			cluster_complete(c, k, reply, 0);
			return;
		}
		/* Bounded by time, not by count: a slot can take a while to move,
		 * and every round through its old master is one more ASK. */
		k->redirects = 0;
		cluster_park(c, k, CLUSTER_RETRY_MS, "%s", reply->str);
		return;
	}
	cluster_complete(c, k, reply, 0);
}

static void
cluster_on_slots(redisReply *reply, int status, void *arg)
{
	struct cluster_node *from = arg;
	struct cluster *c = from->c;
	uint16_t *map;
	char why[300];
	int covered, moved = 0, masters = 0;

	c->refreshing = false;
	if (status == -ECANCELED || c->closing)
		return;
	map = xmalloc(CLUSTER_SLOTS * sizeof(*map));
	covered = status < 0 ? -EIO : cluster_slots_parse(reply, from->host, cluster_node_index,
	    c, map, why, sizeof(why));
	if (covered < 0) {
		if (status < 0)
			snprintf(why, sizeof(why), "%s", strerror(-status));
		if (!c->refresh_warned)
			log_warn(CLUSTER_COMPONENT, "CLUSTER SLOTS from %s:%d: %s; asking another "
			    "node", from->host, from->port, why);
		c->refresh_warned = true;
		c->refresh_wanted = true;
		c->refresh_from = from->idx + 1;
		c->refresh_not_before_us = util_mono_us() + CLUSTER_REFRESH_RETRY_MS * 1000;
		cluster_refresh_arm(c);
		free(map);
		return;
	}
	c->refresh_warned = false;
	c->refresh_from = from->idx;
	for (int s = 0; s < CLUSTER_SLOTS; s++)
		if (c->map_loaded && map[s] != c->slot_node[s])
			moved++;
	memcpy(c->slot_node, map, CLUSTER_SLOTS * sizeof(*map));
	free(map);
	for (int i = 0; i < c->nnodes; i++)
		c->nodes[i]->owned = 0;
	for (int s = 0; s < CLUSTER_SLOTS; s++)
		if (c->slot_node[s] != CLUSTER_NO_NODE)
			c->nodes[c->slot_node[s]]->owned++;
	for (int i = 0; i < c->nnodes; i++)
		masters += c->nodes[i]->owned > 0;
	c->covered = covered;
	if (covered != CLUSTER_SLOTS) {
		/* The cluster is down or being set up: ask again in a while. */
		c->refresh_wanted = true;
		c->refresh_not_before_us = util_mono_us() + CLUSTER_REFRESH_RETRY_MS * 1000;
		cluster_refresh_arm(c);
	}
	if (!c->map_loaded)
		log_info(CLUSTER_COMPONENT, "slot map from %s:%d: %d masters, %d of %d slots",
		    from->host, from->port, masters, covered, CLUSTER_SLOTS);
	else if (moved > 0)
		log_info(CLUSTER_COMPONENT, "slot map changed: %d slots moved; %d masters, %d of "
		    "%d slots", moved, masters, covered, CLUSTER_SLOTS);
	c->map_loaded = true;
	cluster_update_state(c);
	if (c->parked != NULL && !c->closing)
		cluster_on_kick(&c->kick);
}

/* Asks one connected node for CLUSTER SLOTS, when one is wanted and the
 * last was long enough ago; a node coming up, the refresh timer or the
 * next request tries again otherwise. */
static void
cluster_refresh_try(struct cluster *c)
{
	static const char *const argv[2] = { "CLUSTER", "SLOTS" };
	int64_t now = util_mono_us();

	if (!c->cluster || c->closing || c->refreshing || !c->refresh_wanted ||
	    now < c->refresh_not_before_us || c->nnodes == 0)
		return;
	for (int i = 0; i < c->nnodes; i++) {
		struct cluster_node *n = c->nodes[(c->refresh_from + i) % c->nnodes];

		if (!redis_is_up(n->r) ||
		    redis_command_argv(n->r, 2, argv, NULL, cluster_on_slots, n) < 0)
			continue;
		c->refreshing = true;
		c->refresh_wanted = false;
		c->refresh_not_before_us = now + CLUSTER_REFRESH_MIN_MS * 1000;
		return;
	}
}

static void
cluster_on_refresh_timer(uv_timer_t *t)
{
	struct cluster *c = t->data;

	if (!c->map_loaded && !c->warned_nomap &&
	    util_mono_us() - c->started_us >= (int64_t)c->ro.timeout_ms * 1000) {
		log_warn(CLUSTER_COMPONENT, "no slot map after %d ms: no node of %s answered "
		    "CLUSTER SLOTS; still trying", c->ro.timeout_ms, c->nodes_text);
		c->warned_nomap = true;
	}
	if (!c->map_loaded)
		c->refresh_wanted = true;
	cluster_refresh_try(c);
	/* Idle while the map is good: MOVED and lost masters arm it again. */
	if (c->map_loaded && !c->refresh_wanted)
		uv_timer_stop(t);
}

/* Runs the refresh timer (every CLUSTER_REFRESH_MIN_MS) until a wanted
 * CLUSTER SLOTS has gone out. */
static void
cluster_refresh_arm(struct cluster *c)
{
	if (c->cluster && !c->closing && c->refresh_wanted &&
	    !uv_is_active((uv_handle_t *)&c->refresh))
		uv_timer_start(&c->refresh, cluster_on_refresh_timer, CLUSTER_REFRESH_MIN_MS,
		    CLUSTER_REFRESH_MIN_MS);
}

static void
cluster_on_node_state(bool up, void *arg)
{
	struct cluster_node *n = arg;
	struct cluster *c = n->c;

	if (c->closing)
		return;
	if (up) {
		cluster_refresh_try(c);
		if (c->parked != NULL)
			cluster_on_kick(&c->kick);
	} else if (n->owned > 0) {
		/* With replicas its slots may have a new master now. */
		cluster_refresh(c);
	}
	cluster_update_state(c);
}

int
cluster_new(struct cluster **out, uv_loop_t *loop, const struct cluster_options *opt,
    char *const scripts[INVENTORY_SCRIPT_COUNT],
    void (*state_cb)(bool up, void *arg), void *arg)
{
	struct cluster_addr *seeds = NULL;
	struct cluster *c = NULL;
	char *cause = NULL;
	int nseeds = 0, err = -EINVAL;

	*out = NULL;
	if (loop == NULL || opt == NULL || scripts == NULL)
		goto fail;
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		if (scripts[i] == NULL)
			goto fail;
	if (opt->cluster && cluster_parse_nodes(opt->nodes, &seeds, &nseeds, &cause) < 0) {
		log_error(CLUSTER_COMPONENT, "nodes: %s", cause);
		goto fail;
	}
	if (!opt->cluster && (opt->host == NULL || opt->port <= 0 || opt->port > 65535))
		goto fail;
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->cluster = opt->cluster;
	c->ro.timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 2000;
	c->ro.backoff_min_ms = opt->backoff_min_ms;
	c->ro.backoff_max_ms = opt->backoff_max_ms;
	c->nodes_text = xstrdup(opt->cluster ? opt->nodes : opt->host);
	c->state_cb = state_cb;
	c->state_arg = arg;
	c->refused_cb = opt->refused_cb;
	c->user = xstrdup(opt->user != NULL ? opt->user : "");
	c->password = xstrdup(opt->password != NULL ? opt->password : "");
	c->ro.user = c->user;
	c->ro.password = c->password;
	c->parked_tail = &c->parked;
	c->started_us = util_mono_us();
	c->refresh_wanted = true;
	for (int i = 0; i < INVENTORY_SCRIPT_COUNT; i++)
		c->src[i] = xstrdup(scripts[i]);
	if (c->cluster) {
		c->slot_node = xmalloc(CLUSTER_SLOTS * sizeof(*c->slot_node));
		for (int i = 0; i < CLUSTER_SLOTS; i++)
			c->slot_node[i] = CLUSTER_NO_NODE;
	}
	/* From here on, releasing c goes through the loop (cluster_close). */
	uv_timer_init(loop, &c->kick);
	uv_timer_init(loop, &c->refresh);
	c->kick.data = c->refresh.data = c;
	c->open = 2;
	if (!c->cluster) {
		if (cluster_node_get(c, opt->host, opt->port) == NULL)
			goto fail;
	} else {
		for (int i = 0; i < nseeds; i++)
			if (cluster_node_get(c, seeds[i].host, seeds[i].port) == NULL)
				goto fail;
		uv_timer_start(&c->refresh, cluster_on_refresh_timer, CLUSTER_REFRESH_MIN_MS,
		    CLUSTER_REFRESH_MIN_MS);
	}
	free(seeds);
	*out = c;
	return 0;
fail:
	free(cause);
	free(seeds);
	if (c != NULL && c->open > 0)
		cluster_close(c, NULL, NULL);
	else if (c != NULL)
		cluster_free_mem(c);
	return err;
}

/* A call record with copies of argv (NUL-terminated, after the record). */
static struct cluster_call *
cluster_call_new(struct cluster *c, int script, int argc, const char *const *argv,
    const size_t *argvlen, redis_reply_fn cb, void *arg)
{
	struct cluster_call *k;
	size_t bytes = 0;
	char *p;

	for (int i = 0; i < argc; i++)
		bytes += (argvlen != NULL ? argvlen[i] : strlen(argv[i])) + 1;
	k = xcalloc(1, sizeof(*k) + (size_t)argc * (sizeof(size_t) + sizeof(char *)) + bytes);
	k->c = c;
	k->script = script;
	k->cb = cb;
	k->arg = arg;
	k->argc = argc;
	k->argvlen = (size_t *)(k + 1);
	k->argv = (const char **)(k->argvlen + argc);
	p = (char *)(k->argv + argc);
	for (int i = 0; i < argc; i++) {
		size_t n = argvlen != NULL ? argvlen[i] : strlen(argv[i]);

		memcpy(p, argv[i], n);
		p[n] = '\0';
		k->argv[i] = p;
		k->argvlen[i] = n;
		p += n + 1;
	}
	return k;
}

int
cluster_eval(struct cluster *c, enum inventory_script s, int nkeys,
    const char *const *keys, int nargs, const char *const *args,
    redis_reply_fn cb, void *arg)
{
	struct cluster_call *k;
	const char **v;

	if (!c->cluster)
		return c->closing ? -ENOTCONN :
		    redis_eval(c->nodes[0]->r, s, nkeys, keys, nargs, args, cb, arg);
	if ((unsigned)s >= INVENTORY_SCRIPT_COUNT || nkeys < 0 || nargs < 0 ||
	    (nkeys > 0 && keys == NULL) || (nargs > 0 && args == NULL) || cb == NULL)
		return -EINVAL;
	if (c->closing || !c->up)
		return -ENOTCONN;
	v = xmalloc((size_t)(nkeys + nargs + 1) * sizeof(*v));
	for (int i = 0; i < nkeys + nargs; i++)
		v[i] = i < nkeys ? keys[i] : args[i - nkeys];
	k = cluster_call_new(c, (int)s, nkeys + nargs, v, NULL, cb, arg);
	free(v);
	k->nkeys = nkeys;
	k->slot = nkeys > 0 ? cluster_keyslot(keys[0], strlen(keys[0])) : -1;
	c->pending++;
	cluster_dispatch(c, k);
	return 0;
}

int
cluster_command_argv(struct cluster *c, int key_arg, int argc, const char *const *argv,
    const size_t *argvlen, redis_reply_fn cb, void *arg)
{
	struct cluster_call *k;
	int err;

	if (!c->cluster)
		return c->closing ? -ENOTCONN :
		    redis_command_argv(c->nodes[0]->r, argc, argv, argvlen, cb, arg);
	if (argc <= 0 || argv == NULL || cb == NULL || key_arg >= argc)
		return -EINVAL;
	if (c->closing || !c->up)
		return -ENOTCONN;
	k = cluster_call_new(c, -1, argc, argv, argvlen, cb, arg);
	k->slot = key_arg >= 0 ? cluster_keyslot(k->argv[key_arg], k->argvlen[key_arg]) : -1;
	err = cluster_send(c, k);
	if (err == -EINVAL) {
		free(k);	/* a command redis.c refuses (SUBSCRIBE, ...) */
		return err;
	}
	c->pending++;
	if (err < 0)
		cluster_dispatch(c, k);
	return 0;
}

void
cluster_set_auth(struct cluster *c, const char *user, const char *password)
{
	char *old = c->password;

	for (int i = 0; i < c->nnodes; i++)
		redis_set_auth(c->nodes[i]->r, user, password);
	/* Nodes met later connect with these. */
	free(c->user);
	c->user = xstrdup(user != NULL ? user : "");
	c->password = xstrdup(password != NULL ? password : "");
	c->ro.user = c->user;
	c->ro.password = c->password;
	util_secret_free(old);
}

void
cluster_set_timeout(struct cluster *c, int timeout_ms)
{
	int64_t cap;

	if (timeout_ms <= 0)
		return;
	for (int i = 0; i < c->nnodes; i++)
		redis_set_timeout(c->nodes[i]->r, timeout_ms);
	/* Nodes met later, and calls parked from now on. */
	c->ro.timeout_ms = timeout_ms;
	/* As redis_set_timeout() does for the calls sent: a parked call waits
	 * no longer than the new value from now. */
	cap = util_mono_us() + (int64_t)timeout_ms * 1000;
	c->timeout_gen++;
	c->cap_us = cap;
	for (struct cluster_call *k = c->parked; k != NULL; k = k->next) {
		if (k->deadline_us > cap)
			k->deadline_us = cap;
		k->timeout_gen = c->timeout_gen;
	}
}

bool
cluster_is_up(const struct cluster *c)
{
	if (c->closing)
		return false;
	return c->cluster ? c->up : redis_is_up(c->nodes[0]->r);
}

size_t
cluster_pending(const struct cluster *c)
{
	return c->cluster ? c->pending : c->closing ? 0 : redis_pending(c->nodes[0]->r);
}

void
cluster_close(struct cluster *c, void (*closed_cb)(void *arg), void *arg)
{
	if (c == NULL || c->closing)
		return;
	c->closing = true;
	c->up = false;
	c->closed_cb = closed_cb;
	c->closed_arg = arg;
	if (c->cluster && c->map_loaded)
		log_info(CLUSTER_COMPONENT, "closing: followed %llu MOVED and %llu ASK "
		    "redirections, waited out %llu TRYAGAIN or CLUSTERDOWN answers", c->moved,
		    c->asked, c->retried);
	while (c->parked != NULL) {
		struct cluster_call *k = c->parked;

		c->parked = k->next;
		if (c->parked == NULL)
			c->parked_tail = &c->parked;
		cluster_complete(c, k, NULL, -ECANCELED);
	}
	/* Counted down by cluster_released(); the last one frees c. */
	for (int i = 0; i < c->nnodes; i++)
		redis_close(c->nodes[i]->r, cluster_on_redis_closed, c);
	uv_close((uv_handle_t *)&c->kick, cluster_on_handle_closed);
	uv_close((uv_handle_t *)&c->refresh, cluster_on_handle_closed);
}
