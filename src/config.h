/* config.h: orderd's INI configuration: one table of keys with types, defaults and reloadability. */
#ifndef ORDERD_CONFIG_H
#define ORDERD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

/* Where -c points when it is not given. */
#define CONFIG_DEFAULT_PATH SYSCONFDIR "/orderd/orderd.conf"

struct config_kv {
	char *key;
	char *value;
	/* For a KEY_file entry: the secret read from the file value names,
	 * which librdkafka gets as KEY; NULL otherwise. */
	char *secret;
};

struct config {
	char *path;			/* the file read, or NULL when none */

	/* [kafka]: every key passed to librdkafka as it is, in file order,
	 * then the -s overrides. */
	struct config_kv *kafka;
	int nkafka;

	/* [redis] */
	char *redis_host;		/* default 127.0.0.1 */
	int redis_port;			/* default 6379 */
	char *redis_prefix;		/* key prefix, default "orderd:" */
	int redis_timeout_ms;		/* per call, default 2000 (reloadable) */
	bool redis_cluster;		/* Redis Cluster through nodes, default no */
	char *redis_nodes;		/* cluster seed nodes "HOST:PORT,...", default "" */
	char *redis_user;		/* Redis 6 ACL user; "" = default (reloadable) */
	char *redis_password;		/* as written; secret (reloadable) */
	char *redis_password_file;	/* a file holding the password (reloadable) */
	char *redis_secret;		/* the password in effect: from the file or
					 * the key; "" = no AUTH */

	/* [journal] */
	char *journal_path;		/* default /var/lib/orderd/journal.db */
	bool journal_synchronous_full;	/* synchronous = full | normal */

	/* [topics] */
	char *topic_orders;
	char *topic_payments;
	char *topic_payment_requests;
	char *topic_order_events;
	char *topic_dlq;
	char *topic_state;		/* the compacted changelog; "" for none */

	/* [consumer] */
	char *consumer_group;		/* default orderd */
	int consumer_batch_max;		/* events per journal transaction, default 512 */
	char *consumer_instance_id;	/* static membership (group.instance.id); "" = dynamic */

	/* [saga] */
	int64_t saga_payment_timeout_ms;	/* default 900000 (reloadable) */
	int64_t saga_state_record_linger_ms;	/* default 5000 (reloadable) */
	int64_t saga_parked_max_age_ms;		/* default 86400000 (reloadable) */

	/* [relay] */
	int relay_max_attempts;		/* failed deliveries before a row is dead, default 10 */

	/* [http] */
	char *http_listen;		/* default 127.0.0.1:9464; empty disables */
	int64_t http_unhealthy_outbox_age_ms;	/* /healthz fails past this outbox age,
						 * default 60000 (reloadable) */

	/* [log] */
	char *log_level;		/* error | warn | info | debug (reloadable) */

	/* [retention]: how long the journal keeps applied or ignored inbox
	 * rows and published outbox rows; 0 keeps them for good (reloadable) */
	int retention_inbox_max_age_hours;	/* default 168 */
	int retention_outbox_max_age_hours;	/* default 168 */
	int retention_orders_max_age_hours;	/* ended orders, default 336; >= inbox's */
	int retention_adjustments_max_age_hours;	/* applied stock additions, default 336 */
	int retention_dlq_max_age_hours;	/* dead letters, default 720 */
	int retention_batch;			/* rows per transaction, default 500 */
};

/*
 * Builds a configuration: built-in defaults, then the INI file at path,
 * then each override "SECTION.KEY=VALUE" in order.  path NULL means the
 * default file, which may be missing; a path given explicitly must exist.
 * An unknown section or key (outside [kafka]), a malformed line or a value
 * of the wrong type or range fails with -EINVAL and a one-line *cause
 * (caller frees) that names the file, line and key; a missing explicit
 * file fails with -ENOENT ("-c PATH: No such file or directory").  Returns
 * 0 or a negative errno; *out is NULL on failure.
 */
int config_load(struct config **out, const char *path, char *const *overrides,
    int noverrides, char **cause);
void config_free(struct config *cf);

/* The file config_load reads when path is NULL: CONFIG_DEFAULT_PATH unless
 * changed (tests point it at a file of their own). */
extern const char *config_default_path;

/* The built-in defaults alone, no file read; the caller frees it. */
struct config *config_new(void);

/* Whether every key (and the [kafka] list, in order) has the same value in
 * both; path is not compared. */
bool config_equal(const struct config *a, const struct config *b);

/*
 * After a SIGHUP: copies the reloadable keys of next into cur and calls
 * log_fn once per key whose value changed ("saga.payment_timeout_ms: 900000
 * -> 60000"); reports each non-reloadable key that changed, [kafka]
 * included, as "redis.host changed (a -> b); restart to apply" and leaves
 * it alone.  log_fn may be NULL.  Returns the number of keys applied.
 */
int config_reload(struct config *cur, const struct config *next,
    void (*log_fn)(const char *line, void *arg), void *arg);

/* Writes every key with its current value, as an INI file, to a malloc'd
 * string (for --check-config and orderctl config).  Secrets are written
 * as [redacted]. */
char *config_dump(const struct config *cf);

/* Longest [redis] prefix: with the longest sku and order id, every key
 * still fits in INVENTORY_KEY_MAX. */
#define CONFIG_PREFIX_MAX 64

/*
 * Whether a key holds a secret, by its name: [redis] password, and every
 * [kafka] key whose name says password, secret, token, credential or
 * private key material (librdkafka's sensitive properties among them:
 * sasl.password, ssl.key.password, ssl.key.pem, ssl.keystore.password,
 * sasl.oauthbearer.client.secret, sasl.oauthbearer.config).  name is
 * "SECTION.KEY".
 */
bool config_is_secret(const char *name);

/* Registers every secret of cf with log.c (log_secret_add), so that no
 * log line can show one. */
void config_register_secrets(const struct config *cf);

#endif
