/* config_report.c: what a configuration says of itself: whether two are the same, what a reload changed, and the dump of --check-config, never showing a secret. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "util.h"

bool
config_equal(const struct config *a, const struct config *b)
{
	bool same = true;

	for (size_t i = 0; i < config_nkeys && same; i++) {
		char *va = config_key_format(a, &config_keys[i]);
		char *vb = config_key_format(b, &config_keys[i]);

		same = strcmp(va, vb) == 0;
		free(va);
		free(vb);
	}
	if (!same || a->nkafka != b->nkafka ||
	    strcmp(a->redis_secret ? a->redis_secret : "", b->redis_secret ? b->redis_secret : "") != 0)
		return false;
	for (int i = 0; i < a->nkafka; i++)
		if (strcmp(a->kafka[i].key, b->kafka[i].key) != 0 ||
		    strcmp(a->kafka[i].value, b->kafka[i].value) != 0 ||
		    strcmp(a->kafka[i].secret ? a->kafka[i].secret : "",
		    b->kafka[i].secret ? b->kafka[i].secret : "") != 0)
			return false;
	return true;
}

static void config_report(void (*log_fn)(const char *, void *), void *arg,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
config_report(void (*log_fn)(const char *, void *), void *arg, const char *fmt, ...)
{
	va_list ap;
	char *line;

	if (log_fn == NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		log_fatal("config", "out of memory");
	va_end(ap);
	log_fn(line, arg);
	free(line);
}

/* How a value reads in a report: an empty one would be invisible. */
static const char *
config_shown(const char *v)
{
	return v == NULL ? "(unset)" : *v == '\0' ? "''" : v;
}

/* How a secret reads in a report or a dump: never its value. */
static const char *
config_secret_shown(const char *v)
{
	return v == NULL || *v == '\0' ? "''" : "[redacted]";
}

int
config_reload(struct config *cur, const struct config *next,
    void (*log_fn)(const char *line, void *arg), void *arg)
{
	int applied = 0;

	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		char *was = config_key_format(cur, k), *now = config_key_format(next, k);
		bool secret = (k->flags & CONFIG_SECRET) != 0;
		const char *shown_was = secret ? config_secret_shown(was) : config_shown(was);
		const char *shown_now = secret ? config_secret_shown(now) : config_shown(now);
		char *why = NULL;

		if (strcmp(was, now) == 0) {
			/* unchanged */
		} else if (!(k->flags & CONFIG_RELOAD)) {
			config_report(log_fn, arg, "%s.%s changed (%s -> %s); restart to apply",
			    k->section, k->name, shown_was, shown_now);
		} else if (config_key_set(cur, k, now, &why) == 0) {
			if (secret)
				config_report(log_fn, arg, "%s.%s changed", k->section, k->name);
			else
				config_report(log_fn, arg, "%s.%s: %s -> %s", k->section, k->name,
				    shown_was, shown_now);
			applied++;
		} else {
			/* next was built by config_load, so this cannot happen. */
			config_report(log_fn, arg, "%s.%s: not applied", k->section, k->name);
			free(why);
		}
		if (secret) {
			util_secret_free(was);
			util_secret_free(now);
		} else {
			free(was);
			free(now);
		}
	}
	/* The password in effect: the file may hold a new one under the same name. */
	if (strcmp(cur->redis_secret, next->redis_secret) != 0) {
		if (strcmp(cur->redis_password_file, next->redis_password_file) == 0 &&
		    cur->redis_password_file[0] != '\0')
			config_report(log_fn, arg, "redis.password_file: %s holds a new password",
			    cur->redis_password_file);
		util_secret_free(cur->redis_secret);
		cur->redis_secret = xstrdup(next->redis_secret);
		applied++;
	}
	/* librdkafka takes its properties only when its handle is created. */
	for (int i = 0; i < next->nkafka; i++) {
		const struct config_kv *kv = &next->kafka[i];
		int j = config_kafka_find(cur, kv->key);
		const char *was = j >= 0 ? cur->kafka[j].value : NULL;
		bool secret = config_kafka_is_secret(kv->key);

		if (was == NULL || strcmp(was, kv->value) != 0) {
			if (secret)
				config_report(log_fn, arg, "kafka.%s changed; restart to apply",
				    kv->key);
			else
				config_report(log_fn, arg, "kafka.%s changed (%s -> %s); restart to "
				    "apply", kv->key, config_shown(was), config_shown(kv->value));
		} else if (kv->secret != NULL && (cur->kafka[j].secret == NULL ||
		    strcmp(kv->secret, cur->kafka[j].secret) != 0)) {
			config_report(log_fn, arg, "kafka.%s: %s holds a new secret; restart to "
			    "apply", kv->key, kv->value);
		}
	}
	for (int i = 0; i < cur->nkafka; i++)
		if (config_kafka_find(next, cur->kafka[i].key) < 0) {
			if (config_kafka_is_secret(cur->kafka[i].key))
				config_report(log_fn, arg, "kafka.%s changed; restart to apply",
				    cur->kafka[i].key);
			else
				config_report(log_fn, arg, "kafka.%s changed (%s -> (unset)); restart "
				    "to apply", cur->kafka[i].key, config_shown(cur->kafka[i].value));
		}
	return applied;
}

/* A growing string for config_dump. */
struct config_buf {
	char *s;
	size_t len, cap;
};

static void config_buf_add(struct config_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
config_buf_add(struct config_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		log_fatal("config", "vsnprintf failed");
	if ((size_t)n >= b->cap - b->len) {
		b->cap = (b->len + (size_t)n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
		va_start(ap, fmt);
		vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* " = " reads best, but a line inih accepted as "key=value" must not
 * grow past its line length when written back. */
static const char *
config_sep(const char *key, const char *value)
{
	return strlen(key) + 3 + strlen(value) > INI_MAX_LINE - 1 ? "=" : " = ";
}

char *
config_dump(const struct config *cf)
{
	struct config_buf b = { .s = xmalloc(1024), .cap = 1024 };
	const char *section = NULL;

	b.s[0] = '\0';
	config_buf_add(&b, "; orderd configuration%s%s\n\n[%s]\n",
	    cf->path ? " from " : " (built-in defaults)", cf->path ? cf->path : "",
	    CONFIG_KAFKA);
	for (int i = 0; i < cf->nkafka; i++) {
		const char *v = config_kafka_is_secret(cf->kafka[i].key) ?
		    config_secret_shown(cf->kafka[i].value) : cf->kafka[i].value;

		config_buf_add(&b, "%s%s%s\n", cf->kafka[i].key,
		    config_sep(cf->kafka[i].key, v), v);
	}
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		char *v = config_key_format(cf, k);

		if ((k->flags & CONFIG_SECRET) && *v != '\0') {
			util_secret_free(v);
			v = xstrdup("[redacted]");
		}

		if (section == NULL || strcmp(section, k->section) != 0) {
			section = k->section;
			config_buf_add(&b, "\n[%s]\n", section);
		}
		config_buf_add(&b, "%s%s%s\n", k->name, config_sep(k->name, v), v);
		free(v);
	}
	return b.s;
}
