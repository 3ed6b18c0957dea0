/* config.c: reads orderd's INI file and -s overrides through one declarative table of keys. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "cluster.h"
#include "config.h"
#include "config_int.h"
#include "log.h"
#include "util.h"

const char *config_default_path = CONFIG_DEFAULT_PATH;

static const char *config_check_listen(const char *value);
static const char *config_check_nodes(const char *value);
static const char *config_check_prefix(const char *value);

static const char *const config_log_levels[] = { "error", "warn", "info", "debug", NULL };
/* synchronous is a bool in struct config: "normal" is false, "full" true. */
static const char *const config_sync_words[] = { "normal", "full", NULL };
const char *const config_bool_words[] = { "false", "true", NULL };
static const char *const config_yes_words[] = { "no", "yes", NULL };

#define F(field) offsetof(struct config, field)
#define STR(sec, name, field, def, flags) \
	{ sec, name, CONFIG_STRING, F(field), def, flags, 0, 0, NULL, NULL }
#define STRCHK(sec, name, field, def, flags, check) \
	{ sec, name, CONFIG_STRING, F(field), def, flags, 0, 0, NULL, check }
#define INT(sec, name, field, def, flags, min, max) \
	{ sec, name, CONFIG_INT, F(field), def, flags, min, max, NULL, NULL }
#define INT64(sec, name, field, def, flags, min, max) \
	{ sec, name, CONFIG_INT64, F(field), def, flags, min, max, NULL, NULL }
#define BOOL(sec, name, field, def, flags, words) \
	{ sec, name, CONFIG_BOOL, F(field), def, flags, 0, 0, words, NULL }
#define ENUM(sec, name, field, def, flags, values) \
	{ sec, name, CONFIG_ENUM, F(field), def, flags, 0, 0, values, NULL }

/*
 * Every key outside [kafka]: its type, field, default and whether SIGHUP
 * applies it.  Keep contrib/orderd.conf in step (tests/check_config.c
 * fails when the two disagree).
 */
const struct config_key config_keys[] = {
	STR("redis", "host", redis_host, "127.0.0.1", CONFIG_NONEMPTY),
	INT("redis", "port", redis_port, "6379", 0, 1, 65535),
	STRCHK("redis", "prefix", redis_prefix, "orderd:", 0, config_check_prefix),
	INT("redis", "timeout_ms", redis_timeout_ms, "2000", CONFIG_RELOAD, 1, INT_MAX),
	BOOL("redis", "cluster", redis_cluster, "no", 0, config_yes_words),
	STRCHK("redis", "nodes", redis_nodes, "", 0, config_check_nodes),
	/* Redis 6 ACLs: AUTH [user] password on every connection. */
	STR("redis", "user", redis_user, "", CONFIG_RELOAD),
	STR("redis", "password", redis_password, "", CONFIG_RELOAD | CONFIG_SECRET),
	STR("redis", "password_file", redis_password_file, "", CONFIG_RELOAD),

	STR("journal", "path", journal_path, "/var/lib/orderd/journal.db", CONFIG_NONEMPTY),
	BOOL("journal", "synchronous", journal_synchronous_full, "full", 0, config_sync_words),

	STR("topics", "orders", topic_orders, "orders", CONFIG_NONEMPTY),
	STR("topics", "payments", topic_payments, "payments", CONFIG_NONEMPTY),
	STR("topics", "payment_requests", topic_payment_requests, "payment-requests", CONFIG_NONEMPTY),
	STR("topics", "order_events", topic_order_events, "order-events", CONFIG_NONEMPTY),
	STR("topics", "dlq", topic_dlq, "orders.dlq", CONFIG_NONEMPTY),
	STR("topics", "state", topic_state, "orderd.state", 0),

	STR("consumer", "group", consumer_group, "orderd", CONFIG_NONEMPTY),
	INT("consumer", "batch_max", consumer_batch_max, "512", CONFIG_RELOAD, 1, 10000),
	STR("consumer", "instance_id", consumer_instance_id, "", 0),

	INT64("saga", "payment_timeout_ms", saga_payment_timeout_ms, "900000", CONFIG_RELOAD,
	    1, INT64_MAX),
	INT64("saga", "state_record_linger_ms", saga_state_record_linger_ms, "5000",
	    CONFIG_RELOAD, 0, 60000),
	/* A day; at least a second (parked.c looks once a second). */
	INT64("saga", "parked_max_age_ms", saga_parked_max_age_ms, "86400000", CONFIG_RELOAD,
	    1000, INT64_MAX),

	/* A row whose deliveries keep failing is dead after this many (an
	 * error retrying cannot mend kills it at once). */
	INT("relay", "max_attempts", relay_max_attempts, "10", 0, 1, 1000000),

	STRCHK("http", "listen", http_listen, "127.0.0.1:9464", 0, config_check_listen),
	INT64("http", "unhealthy_outbox_age_ms", http_unhealthy_outbox_age_ms, "60000",
	    CONFIG_RELOAD, 1, INT64_MAX),

	ENUM("log", "level", log_level, "info", CONFIG_RELOAD, config_log_levels),

	/* Up to 10 years; 0 keeps the rows for good. */
	INT("retention", "inbox_max_age_hours", retention_inbox_max_age_hours, "168",
	    CONFIG_RELOAD, 0, 87600),
	INT("retention", "outbox_max_age_hours", retention_outbox_max_age_hours, "168",
	    CONFIG_RELOAD, 0, 87600),
	/* Whole orders that ended, with their steps, inbox rows and deadline
	 * (the dedupe of their events goes with them: at least the inbox's). */
	INT("retention", "orders_max_age_hours", retention_orders_max_age_hours, "336",
	    CONFIG_RELOAD, 0, 87600),
	INT("retention", "adjustments_max_age_hours", retention_adjustments_max_age_hours,
	    "336", CONFIG_RELOAD, 0, 87600),
	INT("retention", "dlq_max_age_hours", retention_dlq_max_age_hours, "720",
	    CONFIG_RELOAD, 0, 87600),
	INT("retention", "batch", retention_batch, "500", CONFIG_RELOAD, 1, 10000),
};
const size_t config_nkeys = UTIL_ARRAY_SIZE(config_keys);

/* [kafka] before any file: enough to reach a broker on this host, as the
 * [redis] defaults reach a local Redis. */
static const struct config_kv config_kafka_defaults[] = {
	{ "bootstrap.servers", "127.0.0.1:9092", NULL },
};


/* One section/key name as a pointer and a length (overrides are not
 * NUL-terminated where the section ends). */
struct config_name {
	const char *p;
	size_t len;
};

static bool
config_name_is(struct config_name n, const char *s)
{
	return strlen(s) == n.len && memcmp(n.p, s, n.len) == 0;
}

static bool
config_section_known(struct config_name sec)
{
	if (config_name_is(sec, CONFIG_KAFKA))
		return true;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(config_keys); i++)
		if (config_name_is(sec, config_keys[i].section))
			return true;
	return false;
}

static const struct config_key *
config_key_find(struct config_name sec, struct config_name name)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(config_keys); i++) {
		const struct config_key *k = &config_keys[i];

		if (config_name_is(sec, k->section) && config_name_is(name, k->name))
			return k;
	}
	return NULL;
}

static void *
config_field(const struct config *cf, const struct config_key *k)
{
	return (char *)cf + k->offset;
}

static const char *
config_check_listen(const char *value)
{
	const char *colon = strrchr(value, ':');
	char *end;
	long port;

	if (*value == '\0')
		return NULL;	/* empty disables the HTTP endpoint */
	if (colon == NULL || colon == value)
		return "is not HOST:PORT (or empty to disable)";
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (!isdigit((unsigned char)colon[1]) || *end != '\0' || errno != 0 ||
	    port < 1 || port > 65535)
		return "is not HOST:PORT with a port in 1..65535 (or empty to disable)";
	return NULL;
}

/* Empty is fine here; config_load() requires nodes when cluster = yes. */
static const char *
config_check_nodes(const char *value)
{
	/* The message names the bad entry; configurations are read by one
	 * thread, so one static buffer does. */
	static char why[INI_MAX_LINE + 64];
	struct cluster_addr *v = NULL;
	char *cause = NULL;
	int n;

	if (*value == '\0')
		return NULL;
	if (cluster_parse_nodes(value, &v, &n, &cause) == 0) {
		free(v);
		return NULL;
	}
	snprintf(why, sizeof(why), "has a %s", cause);
	free(cause);
	return why;
}

/*
 * The prefix starts every key orderd writes, and orderctl uses it in SCAN
 * patterns: a glob character would match other applications' keys, a
 * brace would move the hash tag off the sku, and a long one would not
 * leave room for the longest sku and order id in INVENTORY_KEY_MAX.
 */
static const char *
config_check_prefix(const char *value)
{
	static char why[96];

	if (strlen(value) > CONFIG_PREFIX_MAX) {
		snprintf(why, sizeof(why), "is longer than %d bytes", CONFIG_PREFIX_MAX);
		return why;
	}
	for (const char *c = value; *c != '\0'; c++)
		if (!isalnum((unsigned char)*c) && strchr("._:/-@#|=+", *c) == NULL)
			return "may hold only letters, digits and . _ : / - @ # | = + (no glob "
			    "characters, braces or blanks)";
	return NULL;
}

/* Parses a whole decimal integer; false when it is not one or is out of range. */
static bool
config_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	/* strtoll would skip leading blanks and take "0x"; we want plain digits. */
	if (!(isdigit((unsigned char)s[0]) || ((s[0] == '-' || s[0] == '+') &&
	    isdigit((unsigned char)s[1]))))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || errno != 0 || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* The allowed words of an enum or named bool, "a, b, c", for messages. */
static char *
config_words(const char *const *values)
{
	size_t n = 1;
	char *s;

	for (int i = 0; values[i] != NULL; i++)
		n += strlen(values[i]) + 2;
	s = xmalloc(n);
	s[0] = '\0';
	for (int i = 0; values[i] != NULL; i++) {
		if (i > 0)
			strcat(s, ", ");
		strcat(s, values[i]);
	}
	return s;
}

/*
 * Stores value in k's field of cf.  Returns 0, or -EINVAL with *why set to
 * "KEY: 'VALUE' is not ..." (the caller adds where the value came from).
 */
int
config_key_set(struct config *cf, const struct config_key *k, const char *value,
    char **why)
{
	void *field = config_field(cf, k);
	const char *problem;
	int64_t v;
	int i;

	switch (k->type) {
	case CONFIG_STRING:
		if ((k->flags & CONFIG_NONEMPTY) && *value == '\0') {
			*why = xasprintf("%s.%s: may not be empty", k->section, k->name);
			return -EINVAL;
		}
		if (k->check != NULL && (problem = k->check(value)) != NULL) {
			*why = xasprintf("%s.%s: '%s' %s", k->section, k->name, value, problem);
			return -EINVAL;
		}
		if (k->flags & CONFIG_SECRET)
			util_secret_free(*(char **)field);
		else
			free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case CONFIG_INT:
	case CONFIG_INT64:
		if (!config_parse_int(value, k->min, k->max, &v)) {
			if (k->max == (k->type == CONFIG_INT ? INT_MAX : INT64_MAX))
				*why = xasprintf("%s.%s: '%s' is not an integer >= %" PRId64,
				    k->section, k->name, value, k->min);
			else
				*why = xasprintf("%s.%s: '%s' is not an integer in %" PRId64
				    "..%" PRId64, k->section, k->name, value, k->min, k->max);
			return -EINVAL;
		}
		if (k->type == CONFIG_INT)
			*(int *)field = (int)v;
		else
			*(int64_t *)field = v;
		return 0;
	case CONFIG_BOOL:
	case CONFIG_ENUM: {
		const char *const *values = k->values ? k->values : config_bool_words;

		for (i = 0; values[i] != NULL; i++)
			if (strcasecmp(value, values[i]) == 0)
				break;
		if (values[i] == NULL) {
			char *words = config_words(values);

			*why = xasprintf("%s.%s: '%s' is not one of %s", k->section, k->name,
			    value, words);
			free(words);
			return -EINVAL;
		}
		if (k->type == CONFIG_BOOL) {
			*(bool *)field = i == 1;
		} else {
			free(*(char **)field);
			*(char **)field = xstrdup(values[i]);
		}
		return 0;
	}
	}
	*why = xasprintf("%s.%s: unknown type %d", k->section, k->name, (int)k->type);
	return -EINVAL;
}

/* k's value as it is written in the file; the caller frees it. */
char *
config_key_format(const struct config *cf, const struct config_key *k)
{
	const void *field = config_field(cf, k);

	switch (k->type) {
	case CONFIG_STRING:
	case CONFIG_ENUM:
		return xstrdup(*(char *const *)field ? *(char *const *)field : "");
	case CONFIG_INT:
		return xasprintf("%d", *(const int *)field);
	case CONFIG_INT64:
		return xasprintf("%" PRId64, *(const int64_t *)field);
	case CONFIG_BOOL:
		return xstrdup((k->values ? k->values : config_bool_words)[*(const bool *)field]);
	}
	return xstrdup("");
}

bool
config_is_secret(const char *name)
{
	if (strncmp(name, CONFIG_KAFKA ".", strlen(CONFIG_KAFKA) + 1) == 0)
		return config_kafka_is_secret(name + strlen(CONFIG_KAFKA) + 1);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(config_keys); i++) {
		const struct config_key *k = &config_keys[i];
		size_t sl = strlen(k->section);

		if (strncmp(name, k->section, sl) == 0 && name[sl] == '.' &&
		    strcmp(name + sl + 1, k->name) == 0)
			return (k->flags & CONFIG_SECRET) != 0;
	}
	return false;
}

#define CONFIG_SECRET_FILE_MAX 65536

/*
 * Reads a secret from a file: the whole file without its trailing line
 * breaks (a PEM key keeps the ones inside it).  The file must be a regular
 * file that other users cannot read, as ssh insists for its keys: a
 * secret anyone on the host can read is no secret.  Returns 0 and *out
 * (caller frees), or -errno and *why (caller frees).
 */
static int
config_read_secret(const char *name, const char *path, char **out, char **why)
{
	struct stat st;
	char *buf = NULL;
	ssize_t r;
	size_t len = 0;
	int fd, err;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		err = -errno;
		*why = xasprintf("%s: %s: %s", name, path, strerror(errno));
		return err;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = xasprintf("%s: %s: not a regular file", name, path);
		err = -EINVAL;
		goto fail;
	}
	if (st.st_mode & S_IROTH) {
		*why = xasprintf("%s: %s can be read by every user of this host (mode %04o): "
		    "chmod o-r it (0600, or 0640 with the group orderd)", name, path,
		    (unsigned)(st.st_mode & 07777));
		err = -EPERM;
		goto fail;
	}
	buf = xmalloc(CONFIG_SECRET_FILE_MAX + 1);
	while ((r = read(fd, buf + len, CONFIG_SECRET_FILE_MAX + 1 - len)) > 0)
		len += (size_t)r;
	if (r < 0) {
		err = -errno;
		*why = xasprintf("%s: %s: %s", name, path, strerror(errno));
		goto fail;
	}
	if (len > CONFIG_SECRET_FILE_MAX) {
		*why = xasprintf("%s: %s is larger than %d bytes", name, path,
		    CONFIG_SECRET_FILE_MAX);
		err = -EFBIG;
		goto fail;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	if (len == 0 || memchr(buf, '\0', len) != NULL) {
		*why = xasprintf("%s: %s %s", name, path, len == 0 ? "is empty" :
		    "holds a NUL byte");
		err = -EINVAL;
		goto fail;
	}
	close(fd);
	*out = buf;
	return 0;
fail:
	if (buf != NULL) {
		memset(buf, 0, CONFIG_SECRET_FILE_MAX + 1);
		free(buf);
	}
	close(fd);
	return err;
}

/*
 * After the file and the overrides: reads every secret file, and refuses a
 * secret given both ways.  Returns 0 or -errno with *cause set.
 */
static int
config_resolve_secrets(struct config *cf, char **cause)
{
	char *why = NULL;
	int err;

	util_secret_free(cf->redis_secret);
	cf->redis_secret = NULL;
	if (cf->redis_password_file[0] != '\0') {
		if (cf->redis_password[0] != '\0') {
			*cause = xstrdup("redis.password and redis.password_file: set one, not both");
			return -EINVAL;
		}
		if ((err = config_read_secret("redis.password_file", cf->redis_password_file,
		    &cf->redis_secret, &why)) < 0) {
			*cause = why;
			return err;
		}
	} else {
		cf->redis_secret = xstrdup(cf->redis_password);
	}
	for (int i = 0; i < cf->nkafka; i++) {
		struct config_kv *kv = &cf->kafka[i];
		size_t n = strlen(kv->key);
		char *base, *name;

		if (n <= 5 || strcmp(kv->key + n - 5, "_file") != 0)
			continue;
		base = xstrndup(kv->key, n - 5);
		if (config_kafka_find(cf, base) >= 0) {
			*cause = xasprintf("kafka.%s and kafka.%s: set one, not both", base,
			    kv->key);
			free(base);
			return -EINVAL;
		}
		free(base);
		util_secret_free(kv->secret);
		kv->secret = NULL;
		name = xasprintf("kafka.%s", kv->key);
		err = config_read_secret(name, kv->value, &kv->secret, &why);
		free(name);
		if (err < 0) {
			*cause = why;
			return err;
		}
	}
	return 0;
}

void
config_register_secrets(const struct config *cf)
{
	log_secret_add(cf->redis_secret);
	log_secret_add(cf->redis_password);
	for (int i = 0; i < cf->nkafka; i++) {
		if (cf->kafka[i].secret != NULL)
			log_secret_add(cf->kafka[i].secret);
		if (config_kafka_is_secret(cf->kafka[i].key))
			log_secret_add(cf->kafka[i].value);
	}
}

void
config_free(struct config *cf)
{
	if (cf == NULL)
		return;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(config_keys); i++) {
		const struct config_key *k = &config_keys[i];

		if (k->flags & CONFIG_SECRET)
			util_secret_free(*(char **)config_field(cf, k));
		else if (k->type == CONFIG_STRING || k->type == CONFIG_ENUM)
			free(*(char **)config_field(cf, k));
	}
	for (int i = 0; i < cf->nkafka; i++) {
		/* A secret as value too: sasl.password = ... */
		if (config_kafka_is_secret(cf->kafka[i].key))
			util_secret_free(cf->kafka[i].value);
		else
			free(cf->kafka[i].value);
		free(cf->kafka[i].key);
		util_secret_free(cf->kafka[i].secret);
	}
	free(cf->kafka);
	util_secret_free(cf->redis_secret);
	free(cf->path);
	free(cf);
}

struct config *
config_new(void)
{
	struct config *cf = xcalloc(1, sizeof(*cf));
	char *why = NULL;

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(config_keys); i++)
		if (config_key_set(cf, &config_keys[i], config_keys[i].def, &why) != 0)
			log_fatal("config", "built-in default of %s", why);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(config_kafka_defaults); i++)
		config_kafka_set(cf, config_kafka_defaults[i].key, config_kafka_defaults[i].value);
	cf->redis_secret = xstrdup("");
	return cf;
}

/* What the inih callbacks share while one file is read. */
struct config_parse {
	struct config *cf;
	const char *path;
	FILE *fp;
	int lineno;		/* of the line inih is working on */
	int err_line;		/* of the first error found here, 0 when none */
	char *cause;		/* that error, "PATH:LINE: ..." */
	int read_errno;		/* a read error, which ends the file early */
};

static void config_parse_fail(struct config_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Keeps only the first error: it is the one the user should fix first. */
static void
config_parse_fail(struct config_parse *p, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (p->err_line != 0)
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		log_fatal("config", "out of memory");
	va_end(ap);
	p->err_line = p->lineno;
	p->cause = xasprintf("%s:%d: %s", p->path, p->lineno, msg);
	free(msg);
}

/*
 * inih's line reader.  Besides counting lines, so that errors name the
 * right one, it removes leading blanks: inih would otherwise take an
 * indented "key = value" for the continuation of the previous key's value
 * and store "port = 6379" as redis.host.  It also checks section headers
 * here, because inih reports a section only through its keys: a misspelt
 * header would be named at its first key's line, and an empty one never.
 */
static char *
config_reader(char *str, int num, void *arg)
{
	struct config_parse *p = arg;
	size_t len, skip;
	int c;

	if (p->err_line != 0)
		return NULL;	/* the first error is known: stop reading */
	if (fgets(str, num, p->fp) == NULL) {
		if (ferror(p->fp))
			p->read_errno = errno ? errno : EIO;
		return NULL;
	}
	p->lineno++;
	len = strlen(str);
	/* inih would cut a longer line in two and parse the rest as a line of
	 * its own; a line that fills the buffer exactly ends at its '\n'. */
	if (len == (size_t)num - 1 && str[len - 1] != '\n' &&
	    (c = getc(p->fp)) != '\n' && c != EOF) {
		config_parse_fail(p, "line is longer than %d characters", num - 1);
		return NULL;
	}
	skip = strspn(str, " \t");
	memmove(str, str + skip, len - skip + 1);
	if (str[0] == '[') {
		struct config_name sec = { str + 1, strcspn(str + 1, "]") };

		/* A header without ']' is inih's to report, as a syntax error. */
		if (sec.p[sec.len] == ']' && !config_section_known(sec))
			config_parse_fail(p, "unknown section [%.*s]", (int)sec.len, sec.p);
	}
	return str;
}

static int
config_handler(void *arg, const char *section, const char *name, const char *value)
{
	struct config_parse *p = arg;
	struct config_name sec = { section, strlen(section) };
	struct config_name key = { name, strlen(name) };
	const struct config_key *k;
	char *why = NULL;

	if (p->err_line != 0)
		return 1;	/* only the first error is reported */
	if (*name == '\0') {
		config_parse_fail(p, "no key before '='");
		return 0;
	}
	if (*section == '\0') {
		config_parse_fail(p, "key '%s' is outside any [section]", name);
		return 0;
	}
	if (config_name_is(sec, CONFIG_KAFKA)) {
		if (config_kafka_check(name, value, &why) < 0) {
			config_parse_fail(p, "%s", why);
			free(why);
			return 0;
		}
		config_kafka_set(p->cf, name, value);
		return 1;
	}
	if (!config_section_known(sec)) {
		/* The reader has reported the header already. */
		config_parse_fail(p, "unknown section [%s]", section);
		return 0;
	}
	if ((k = config_key_find(sec, key)) == NULL) {
		config_parse_fail(p, "unknown key '%s.%s'", section, name);
		return 0;
	}
	if (config_key_set(p->cf, k, value, &why) != 0) {
		config_parse_fail(p, "%s", why);
		free(why);
		return 0;
	}
	return 1;
}

/* Reads the file at path into cf.  Returns 0, -ENOENT when it is missing
 * (with *cause set, which the caller ignores for the default file), or
 * another negative errno with *cause set. */
static int
config_read_file(struct config *cf, const char *path, bool explicit, char **cause)
{
	struct config_parse p = { .cf = cf, .path = path };
	int line, err;

	if ((p.fp = fopen(path, "r")) == NULL) {
		err = -errno;
		*cause = xasprintf("%s%s: %s", explicit ? "-c " : "", path, strerror(-err));
		return err;
	}
	line = ini_parse_stream(config_reader, &p, config_handler, &p);
	fclose(p.fp);
	/* inih returns the first line it found wrong, whether by its own syntax
	 * rules or because our handler said so; an earlier one is syntax. */
	if (line > 0 && (p.err_line == 0 || line < p.err_line)) {
		free(p.cause);
		*cause = xasprintf("%s:%d: syntax error (not [SECTION], KEY = VALUE or "
		    "a ; comment)", path, line);
		return -EINVAL;
	}
	if (p.err_line != 0) {
		*cause = p.cause;
		return -EINVAL;
	}
	if (line < 0) {
		*cause = xasprintf("%s: inih failed (%d)", path, line);
		return -ENOMEM;
	}
	if (p.read_errno != 0) {
		*cause = xasprintf("%s%s: %s", explicit ? "-c " : "", path,
		    strerror(p.read_errno));
		return -p.read_errno;
	}
	return 0;
}

/*
 * Whether "key = value" reads back as written, so that config_dump's
 * output loads again: inih strips blanks at both ends, ends the value at a
 * blank followed by ';', and reads no line longer than INI_MAX_LINE - 1
 * characters.
 */
static const char *
config_unwritable(const char *key, const char *value)
{
	size_t n = strlen(value);

	if (strpbrk(value, "\r\n") != NULL)
		return "contains a line break";
	if (n > 0 && (isspace((unsigned char)value[0]) || isspace((unsigned char)value[n - 1])))
		return "starts or ends with a blank";
	if (value[0] == ';')
		return "starts with ';', which would start a comment";
	for (size_t i = 1; i < n; i++)
		if (value[i] == ';' && isspace((unsigned char)value[i - 1]))
			return "contains ' ;', which would start a comment";
	if (strlen(key) + 1 + n > INI_MAX_LINE - 1)
		return "is too long for one line of the file";
	return NULL;
}

/* Applies one "SECTION.KEY=VALUE"; returns 0 or -EINVAL with *cause set. */
static int
config_apply_override(struct config *cf, const char *raw, char **cause)
{
	const char *eq = strchr(raw, '='), *dot, *problem;
	struct config_name sec, key;
	const struct config_key *k;
	char *why = NULL, *name = NULL, *value = NULL, *kafka_key = NULL, *arg;
	size_t n;
	int err = -EINVAL;

	/* The argument as causes quote it: one line, whatever it holds, and
	 * never the value of a secret. */
	arg = xstrdup(raw);
	for (char *c = arg; *c != '\0'; c++)
		if (iscntrl((unsigned char)*c))
			*c = '?';
	if (eq != NULL) {
		char *lhs = xstrndup(arg + strspn(arg, " \t"), (size_t)(eq - raw) -
		    strspn(raw, " \t"));
		size_t ln = strlen(lhs);

		while (ln > 0 && isspace((unsigned char)lhs[ln - 1]))
			lhs[--ln] = '\0';
		if (config_is_secret(lhs)) {
			free(arg);
			arg = xasprintf("%s=[redacted]", lhs);
		}
		free(lhs);
	}

	dot = eq != NULL ? memchr(raw, '.', (size_t)(eq - raw)) : NULL;
	if (dot == NULL) {
		*cause = xasprintf("-s %s: not of the form SECTION.KEY=VALUE", arg);
		goto fail;
	}
	/* Blanks around the names and the value go, as inih drops them. */
	sec.p = raw + strspn(raw, " \t");
	sec.len = (size_t)(dot - sec.p);
	key.p = dot + 1;
	key.len = (size_t)(eq - key.p);
	while (key.len > 0 && isspace((unsigned char)key.p[key.len - 1]))
		key.len--;
	if (sec.len == 0 || key.len == 0 || isspace((unsigned char)key.p[0]) ||
	    memchr(sec.p, ' ', sec.len) != NULL || memchr(sec.p, '\t', sec.len) != NULL) {
		*cause = xasprintf("-s %s: not of the form SECTION.KEY=VALUE", arg);
		goto fail;
	}
	name = xasprintf("%.*s.%.*s", (int)sec.len, arg + (sec.p - raw), (int)key.len,
	    arg + (key.p - raw));
	value = xstrdup(eq + 1 + strspn(eq + 1, " \t"));
	n = strlen(value);
	while (n > 0 && isspace((unsigned char)value[n - 1]))
		value[--n] = '\0';
	if ((problem = config_unwritable(name, value)) != NULL) {
		*cause = xasprintf("-s %s: the value of %s %s", arg, name, problem);
		goto fail;
	}
	if (config_name_is(sec, CONFIG_KAFKA)) {
		kafka_key = xstrndup(key.p, key.len);
		/* Such a key could not be written back into [kafka]. */
		if (strcspn(kafka_key, "=:;#[] \t\r\n") != key.len) {
			*cause = xasprintf("-s %s: '%s' is not a librdkafka property name",
			    arg, name + strlen(CONFIG_KAFKA) + 1);
			goto fail;
		}
		if (config_kafka_check(kafka_key, value, &why) < 0) {
			*cause = xasprintf("-s %s: %s", arg, why);
			goto fail;
		}
		config_kafka_set(cf, kafka_key, value);
	} else if (!config_section_known(sec)) {
		*cause = xasprintf("-s %s: unknown section [%.*s]", arg, (int)sec.len, sec.p);
		goto fail;
	} else if ((k = config_key_find(sec, key)) == NULL) {
		*cause = xasprintf("-s %s: unknown key '%s'", arg, name);
		goto fail;
	} else if (config_key_set(cf, k, value, &why) != 0) {
		*cause = xasprintf("-s %s: %s", arg, why);
		goto fail;
	}
	err = 0;
fail:
	free(kafka_key);
	free(why);
	free(value);
	free(name);
	free(arg);
	return err;
}

int
config_load(struct config **out, const char *path, char *const *overrides,
    int noverrides, char **cause)
{
	struct config *cf = config_new();
	const char *file = path != NULL ? path : config_default_path;
	int err;

	*out = NULL;
	*cause = NULL;
	err = config_read_file(cf, file, path != NULL, cause);
	if (err == -ENOENT && path == NULL) {
		/* No default file: the built-in defaults apply. */
		free(*cause);
		*cause = NULL;
	} else if (err != 0) {
		goto fail;
	} else {
		cf->path = xstrdup(file);
	}
	for (int i = 0; i < noverrides; i++)
		if ((err = config_apply_override(cf, overrides[i], cause)) != 0)
			goto fail;
	if ((err = config_resolve_secrets(cf, cause)) < 0)
		goto fail;
	/* The rules across keys: a cluster needs its seed nodes; an order's
	 * inbox rows go with it, so orders may not go before the inbox's
	 * dedupe window has passed. */
	if (cf->redis_cluster && cf->redis_nodes[0] == '\0') {
		*cause = xstrdup("redis.nodes: may not be empty when redis.cluster = yes");
		err = -EINVAL;
		goto fail;
	}
	if (cf->retention_orders_max_age_hours > 0 &&
	    (cf->retention_inbox_max_age_hours == 0 ||
	    cf->retention_orders_max_age_hours < cf->retention_inbox_max_age_hours)) {
		*cause = xasprintf("retention.orders_max_age_hours: %d is shorter than "
		    "retention.inbox_max_age_hours (%d%s): an order's inbox rows go with it, "
		    "so its events would stop being recognised as repeats early; make it 0 "
		    "(keep orders) or at least the inbox's",
		    cf->retention_orders_max_age_hours, cf->retention_inbox_max_age_hours,
		    cf->retention_inbox_max_age_hours == 0 ? ", kept for good" : " hours");
		err = -EINVAL;
		goto fail;
	}
	*out = cf;
	return 0;
fail:
	config_free(cf);
	return err;
}

