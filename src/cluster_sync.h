/* cluster_sync.h: the blocking Redis client of orderctl and the tests, over one server or a Redis Cluster. */
#ifndef ORDERD_CLUSTER_SYNC_H
#define ORDERD_CLUSTER_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "cluster.h"

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
