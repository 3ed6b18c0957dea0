/* config_int.h: the key table and the helpers that config.c, config_report.c and config_kafka.c share, for those files only. */
#ifndef ORDERD_CONFIG_INT_H
#define ORDERD_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum config_type {
	CONFIG_STRING,		/* char * */
	CONFIG_INT,		/* int, within min..max */
	CONFIG_INT64,		/* int64_t, within min..max */
	CONFIG_BOOL,		/* bool; values, when given, name false and true */
	CONFIG_ENUM,		/* char *, one of values (stored as spelled there) */
};

/* Row flags. */
#define CONFIG_RELOAD	0x1	/* applied by SIGHUP; others need a restart */
#define CONFIG_NONEMPTY	0x2	/* a string that may not be empty */
#define CONFIG_SECRET	0x4	/* never shown: [redacted] in dumps and reports */

struct config_key {
	const char *section;
	const char *name;
	enum config_type type;
	size_t offset;			/* of the field in struct config */
	const char *def;		/* default, as it would be written in the file */
	int flags;
	int64_t min, max;		/* CONFIG_INT, CONFIG_INT64 */
	const char *const *values;	/* CONFIG_ENUM, CONFIG_BOOL; NULL-terminated */
	/* Extra validation: NULL when the value is fine, else why it is not. */
	const char *(*check)(const char *value);
};

#define CONFIG_KAFKA "kafka"

/* Every key outside [kafka] (config.c), and how many. */
extern const struct config_key config_keys[];
extern const size_t config_nkeys;
/* The words of a bool without words of its own: "false", "true". */
extern const char *const config_bool_words[];

/* k's value as it is written in the file; the caller frees it. */
char *config_key_format(const struct config *cf, const struct config_key *k);
/* Stores value in k's field of cf; 0, or -EINVAL with *why set. */
int config_key_set(struct config *cf, const struct config_key *k, const char *value,
    char **why);
/* ---- config_kafka.c ---- */

/* The index of key in cf's [kafka] list, or -1. */
int config_kafka_find(const struct config *cf, const char *key);
/* Sets key in cf's [kafka] list: a key seen again keeps its place. */
void config_kafka_set(struct config *cf, const char *key, const char *value);
/* Whether a librdkafka property name says it holds a secret. */
bool config_kafka_is_secret(const char *key);
/* Whether orderd can honour key = value in [kafka]: 0, or -EINVAL and *why
 * (caller frees), one line that names the key and says why not. */
int config_kafka_check(const char *key, const char *value, char **why);

#endif
