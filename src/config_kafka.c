/* config_kafka.c: the [kafka] section: the librdkafka properties in the order of their first mention, and which of them hold secrets. */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
