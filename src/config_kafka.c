/* config_kafka.c: the [kafka] section: the librdkafka properties in the order of their first mention, which of them hold secrets, and the ones orderd cannot honour. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_int.h"
#include "util.h"

/* Whether a librdkafka property name says it holds a secret. */
bool
config_kafka_is_secret(const char *key)
{
	static const char *const words[] = {
		"password", "secret", "token", "credential", "key.pem", "ssl_key",
		"oauthbearer.config",
	};
	size_t n = strlen(key);

	/* KEY_file names the file that holds KEY: a path, not a secret. */
	if (n > 5 && strcmp(key + n - 5, "_file") == 0)
		return false;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(words); i++)
		if (strstr(key, words[i]) != NULL)
			return true;
	return false;
}

/* The index of key in cf's [kafka] list, or -1. */
int
config_kafka_find(const struct config *cf, const char *key)
{
	for (int i = 0; i < cf->nkafka; i++)
		if (strcmp(cf->kafka[i].key, key) == 0)
			return i;
	return -1;
}

/* A key seen again replaces its value where it first appeared, so the
 * order librdkafka sees stays the order of first mention. */
void
config_kafka_set(struct config *cf, const char *key, const char *value)
{
	int i = config_kafka_find(cf, key);

	if (i >= 0) {
		free(cf->kafka[i].value);
		cf->kafka[i].value = xstrdup(value);
		util_secret_free(cf->kafka[i].secret);
		cf->kafka[i].secret = NULL;
		return;
	}
	cf->kafka = xrealloc(cf->kafka, (size_t)(cf->nkafka + 1) * sizeof(*cf->kafka));
	cf->kafka[cf->nkafka].key = xstrdup(key);
	cf->kafka[cf->nkafka].value = xstrdup(value);
	cf->kafka[cf->nkafka].secret = NULL;
	cf->nkafka++;
}

/* A librdkafka boolean as it parses them: 1 true, 0 false, -1 neither
 * (which librdkafka itself refuses). */
static int
config_kafka_bool(const char *v)
{
	if (strcasecmp(v, "true") == 0 || strcasecmp(v, "t") == 0 || strcmp(v, "1") == 0)
		return 1;
	if (strcasecmp(v, "false") == 0 || strcasecmp(v, "f") == 0 || strcmp(v, "0") == 0)
		return 0;
	return -1;
}

/*
 * The keys whose value would break what orderd builds on; the programs
 * that share the file (orderd-paysim's rebalance is eager too) refuse them
 * alike.  librdkafka would take them, and some orderd overrides anyway, so
 * without this they would be ignored or stop consumption without a word.
 */
int
config_kafka_check(const char *key, const char *value, char **why)
{
	/* kafka.c's rebalance callback assigns and revokes whole assignments
	 * (cooperative-sticky needs incremental ones, and its first
	 * rebalance stops consuming), and an order's events are on the
	 * partition of the same number in orders and payments, which only
	 * the range assignor gives to one instance (not roundrobin). */
	if (strcmp(key, "partition.assignment.strategy") == 0 && strcmp(value, "range") != 0) {
		*why = xasprintf("kafka.%s: '%s' cannot be used: orderd's rebalance is eager, and "
		    "an order's orders and payments partitions must go to one instance: range "
		    "only (the default)", key, value);
		return -EINVAL;
	}
	/* KIP-848's protocol assigns incrementally, whatever the assignor. */
	if (strcmp(key, "group.protocol") == 0 && strcasecmp(value, "classic") != 0) {
		*why = xasprintf("kafka.%s: '%s' cannot be used: its assignments are incremental, "
		    "and orderd's rebalance is eager: classic only (the default)", key, value);
		return -EINVAL;
	}
	/* The offset rule (offsets.c): an offset is stored after the journal
	 * commit and the outputs' acknowledgement, then auto-committed. */
	if (strcmp(key, "enable.auto.offset.store") == 0 && config_kafka_bool(value) == 1) {
		*why = xasprintf("kafka.%s: '%s' cannot be used: orderd stores an input's offset "
		    "itself, once what the input caused is journaled and published (it sets "
		    "false)", key, value);
		return -EINVAL;
	}
	if (strcmp(key, "enable.auto.commit") == 0 && config_kafka_bool(value) == 0) {
		*why = xasprintf("kafka.%s: '%s' cannot be used: orderd has librdkafka commit the "
		    "offsets it stored (it sets true)", key, value);
		return -EINVAL;
	}
	if (strcmp(key, "group.id") == 0) {
		*why = xasprintf("kafka.%s: set [consumer] group instead (orderd sets group.id "
		    "itself, and would ignore this one)", key);
		return -EINVAL;
	}
	/* The relay and the tools produce outside any transaction. */
	if (strcmp(key, "transactional.id") == 0 && *value != '\0') {
		*why = xasprintf("kafka.%s: cannot be used: orderd's producers are idempotent, not "
		    "transactional, and a transactional producer refuses every record outside a "
		    "transaction", key);
		return -EINVAL;
	}
	return 0;
}
