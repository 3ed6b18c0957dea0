/* cluster.h: Redis Cluster routing for orderd: slot hashing, MOVED/ASK redirections, an async router over struct redis and a blocking client for orderctl. */
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

bool cluster_is_up(const struct cluster *c);
/* Calls accepted whose callback has not run yet. */
size_t cluster_pending(const struct cluster *c);

/* redis_close() for every connection: pending calls end with -ECANCELED
 * before this returns (or before control goes back to the loop, from a
 * callback); closed_cb(arg) runs from the loop once everything is freed. */
void cluster_close(struct cluster *c, void (*closed_cb)(void *arg), void *arg);

/* ---- the blocking client (orderctl, tests) ---- */

/*
 * hiredis's blocking API over one server or a cluster: commands are
 * routed by a key argument and follow MOVED, ASK, TRYAGAIN (for up to
 * timeout_ms) and NOSCRIPT (for scripts loaded with
 * cluster_sync_script_load()).
 */
struct cluster_sync;

/* Connects (cluster: to the first seed that answers CLUSTER SLOTS, and
 * loads the map).  Returns 0, or a negative errno and *cause (caller
 * frees) naming every address tried. */
int cluster_sync_open(struct cluster_sync **out, const struct cluster_options *opt,
    char **cause);
void cluster_sync_free(struct cluster_sync *s);
/* "127.0.0.1:6379", or "cluster 127.0.0.1:7000,..." for messages ("Redis %s"). */
const char *cluster_sync_name(const struct cluster_sync *s);
/* Why the last call failed. */
const char *cluster_sync_errstr(const struct cluster_sync *s);
/* Whether a node refused the credentials (AUTH failed): a configuration
 * problem, not a network one. */
bool cluster_sync_refused(const struct cluster_sync *s);

/*
 * One command for the key argv[key_arg] (any master when key_arg < 0);
 * argvlen may be NULL.  Returns the final reply (the caller frees it with
 * freeReplyObject(); an error reply that is no redirection is returned as
 * it is), or NULL when no node could answer (cluster_sync_errstr() says
 * why).  Only while nothing appended is waiting for its reply.
 */
redisReply *cluster_sync_command(struct cluster_sync *s, int key_arg, int argc,
    const char *const *argv, const size_t *argvlen);

/* Pipelining: queues one command (arguments copied) on the connection of
 * its slot.  Returns 0 or a negative errno. */
int cluster_sync_append(struct cluster_sync *s, int key_arg, int argc,
    const char *const *argv, const size_t *argvlen);
/* The reply of the oldest appended command, after its redirections.
 * Returns 0 and *reply (caller frees), or -EIO (cluster_sync_errstr()),
 * or -ENOENT when nothing is queued. */
int cluster_sync_get_reply(struct cluster_sync *s, redisReply **reply);
/* Commands appended whose reply was not taken yet. */
int cluster_sync_queued(const struct cluster_sync *s);

/* SCRIPT LOAD on every master (and remembered, for a NOSCRIPT later or a
 * node met later).  sha gets the 40 hex digits.  Returns 0 or -EIO. */
int cluster_sync_script_load(struct cluster_sync *s, const char *src, char sha[41]);

/*
 * SCAN MATCH pattern over every master; fn(key, arg) per key, which stops
 * the scan by returning non-zero (then this returns that value).  Returns
 * 0, or -EIO (cluster_sync_errstr()), or -EBUSY while appended commands
 * wait.  A key may be seen twice when its slot moves during the scan.
 */
int cluster_sync_scan(struct cluster_sync *s, const char *pattern,
    int (*fn)(const char *key, void *arg), void *arg);

#endif
