/* cluster.h: Redis Cluster routing for orderd: slot hashing, MOVED/ASK redirections and the async router over struct redis (the blocking client: cluster_sync.h). */
#ifndef ORDERD_CLUSTER_H
#define ORDERD_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "inventory.h"
#include "redis.h"

#define CLUSTER_SLOTS 16384
#define CLUSTER_HOST_MAX 256		/* longest host of a node address, with the NUL */
#define CLUSTER_REDIRECT_MAX 16		/* MOVED and ASK followed per call before giving up */
#define CLUSTER_RETRY_MS 20		/* TRYAGAIN, CLUSTERDOWN, a node still connecting */
#define CLUSTER_NO_NODE 0xFFFF		/* a slot no master owns in a slot map */

/* ---- slots and replies (pure functions) ---- */

/* CRC16-XMODEM (polynomial 0x1021, initial 0), as the Redis Cluster specification uses it. */
uint16_t cluster_crc16(const char *buf, size_t len);

/*
 * The hash slot of a key: CRC16 mod 16384 of the whole key, or of the part
 * between the first '{' and the first '}' after it when that part is not
 * empty (the hash tag).  orderd's keys are PREFIX{sku}:..., so every key of
 * one sku lives in one slot.
 */
int cluster_keyslot(const char *key, size_t len);

enum cluster_redirect_kind {
	CLUSTER_REDIRECT_MOVED = 1,	/* the slot lives elsewhere now: update the map */
	CLUSTER_REDIRECT_ASK,		/* this one command: ASKING, then the command, there */
};

struct cluster_redirect {
	enum cluster_redirect_kind kind;
	int slot;
	/* Empty when Redis does not know the node's endpoint: then it is the
	 * host of the node that answered. */
	char host[CLUSTER_HOST_MAX];
	int port;
};

/*
 * Parses the error reply "MOVED 3999 127.0.0.1:6381" or "ASK 3999
 * 127.0.0.1:6381" (len bytes, need not be NUL-terminated).  Returns 0;
 * -ENOENT when it is neither; -EINVAL when it is one of them but malformed
 * (slot outside 0..16383, no HOST:PORT, a port outside 1..65535, more words).
 */
int cluster_parse_redirect(const char *err, size_t len, struct cluster_redirect *out);

struct cluster_addr {
	char host[CLUSTER_HOST_MAX];
	int port;
};

/*
 * Parses "HOST:PORT,HOST:PORT,..." (blanks around entries allowed; an IPv6
 * host is everything before the last ':').  Returns 0, *out (caller frees)
 * and *n >= 1; or -EINVAL and *cause (caller frees), which quotes the first
 * bad entry.  An empty list is -EINVAL.
 */
int cluster_parse_nodes(const char *list, struct cluster_addr **out, int *n, char **cause);

/*
 * Reads a CLUSTER SLOTS reply into map[] (CLUSTER_SLOTS entries, filled
 * with CLUSTER_NO_NODE first): node_fn(arg, host, port) names the index of
 * each master, or returns < 0 to refuse it.  An empty or "?" host is the
 * node that answered, from_host.  Returns the number of slots covered, or
 * -EINVAL with why set.
 */
int cluster_slots_parse(const redisReply *r, const char *from_host,
    int (*node_fn)(void *arg, const char *host, int port), void *arg, uint16_t *map,
    char *why, size_t whylen);

/* Whether an error reply asks to send the call again a little later
 * (TRYAGAIN, CLUSTERDOWN) rather than elsewhere or never. */
bool cluster_is_retry_error(const char *s);

/* ---- the async router (orderd) ---- */

struct cluster_options {
	bool cluster;		/* false: one server at host:port, no routing */
	const char *host;	/* single server; numeric, as in struct redis_options */
	int port;
	const char *nodes;	/* cluster: the seed nodes, "HOST:PORT,..." */
	int timeout_ms;		/* as in struct redis_options (<= 0: 2000) */
	int backoff_min_ms;
	int backoff_max_ms;
	/* AUTH on every connection to every node (see struct redis_options);
	 * copied.  refused_cb gets the arg of cluster_new(). */
	const char *user;
	const char *password;
	void (*refused_cb)(const char *why, void *arg);
};

/*
 * The same contract as redis.h, over one struct redis per master.  With
 * opt->cluster false every call goes straight to one struct redis and
 * behaves exactly as redis.h says.  With it true:
 *
 * - the slot map comes from CLUSTER SLOTS, asked of any connected node
 *   (the seeds first), and is asked again after a MOVED, a CLUSTERDOWN
 *   and the loss of a master;
 * - "up" means: a map is loaded, it covers every slot, and the connection
 *   to every master that owns slots is up (connected, scripts loaded);
 *   state_cb reports changes of that;
 * - a call goes to the master of its slot; MOVED moves the slot in the map
 *   and sends the call there; ASK sends ASKING and the call to the node
 *   named, pipelined on one connection; TRYAGAIN (a multi-key script while
 *   its slot migrates) and CLUSTERDOWN send it again every few ms.  A call
 *   waits at most timeout_ms for a node to connect or a slot to settle;
 *   after that, or after CLUSTER_REDIRECT_MAX redirections, it ends with
 *   status 0 and an error reply that says so ("TRYAGAIN ...",
 *   "CLUSTER too many redirections ...");
 * - a call on a connection that is lost or times out ends as redis.h says
 *   (-ENOTCONN, -ETIMEDOUT); when that connection is a master's, the router
 *   goes down first (state_cb(false)), so the caller retries once it is up.
 */
struct cluster;

/*
 * Validates opt (and the node list), then starts connecting.  Returns 0
 * and *out (released by cluster_close()), or -EINVAL.
 */
int cluster_new(struct cluster **out, uv_loop_t *loop, const struct cluster_options *opt,
    char *const scripts[INVENTORY_SCRIPT_COUNT],
    void (*state_cb)(bool up, void *arg), void *arg);

/* redis_eval(), routed by the slot of keys[0] (any master when nkeys is 0).
 * -ENOTCONN while the router is not up. */
int cluster_eval(struct cluster *c, enum inventory_script s, int nkeys,
    const char *const *keys, int nargs, const char *const *args,
    redis_reply_fn cb, void *arg);

/* redis_command_argv(), routed by the slot of argv[key_arg], or to any
 * master when key_arg < 0 (a key-less command). */
int cluster_command_argv(struct cluster *c, int key_arg, int argc, const char *const *argv,
    const size_t *argvlen, redis_reply_fn cb, void *arg);

/* redis_set_auth() on every node's connection, and for nodes met later. */
void cluster_set_auth(struct cluster *c, const char *user, const char *password);

/* redis_set_timeout() on every node's connection, for nodes met later, and
 * for the calls waiting for a node or a slot (none waits longer than
 * timeout_ms from now). */
void cluster_set_timeout(struct cluster *c, int timeout_ms);

bool cluster_is_up(const struct cluster *c);
/* Calls accepted whose callback has not run yet. */
size_t cluster_pending(const struct cluster *c);

/* redis_close() for every connection: pending calls end with -ECANCELED
 * before this returns (or before control goes back to the loop, from a
 * callback); closed_cb(arg) runs from the loop once everything is freed. */
void cluster_close(struct cluster *c, void (*closed_cb)(void *arg), void *arg);

#endif
