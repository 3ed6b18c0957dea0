/* check_config_secrets.c: secrets in the configuration: password files, librdkafka given them, redacted in dumps, reload reports and causes, rotation, refused files. */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_fixture.h"
#include "kafka.h"
#include "testutil.h"
#include "util.h"

/* A secret file of mode mode; returns its path (caller frees). */
static char *
write_secret(const char *name, const char *text, mode_t mode)
{
	char *path = write_file(name, text);

	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

/* Whether any of the secrets occurs in s. */
static bool
shows_secret(const char *s)
{
	static const char *const secrets[] = {
		"Redis-Pass-1", "Redis-File-Pass-2", "Kafka-Pass-3", "Kafka-File-Pass-4",
		"Key-Pass-5", "Redis-Rotated-6",
	};

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(secrets); i++)
		if (strstr(s, secrets[i]) != NULL)
			return true;
	return false;
}

START_TEST(test_secrets)
{
	char *rfile = write_secret("redis.pw", "Redis-File-Pass-2\n", 0600);
	char *kfile = write_secret("kafka.pw", "Kafka-File-Pass-4\r\n", 0640);
	char *open_file = write_secret("open.pw", "Redis-File-Pass-2\n", 0644);
	char *empty = write_secret("empty.pw", "\n", 0600);
	char *rov = xasprintf("redis.password_file=%s", rfile);
	char *kov = xasprintf("kafka.sasl.password_file=%s", kfile);
	char *ov[] = { rov, kov, "redis.user=orderd", "kafka.ssl.key.password=Key-Pass-5" };
	char *inl[] = { "redis.password=Redis-Pass-1", "kafka.sasl.password=Kafka-Pass-3" };
	struct config *cf = load_ok(NULL, ov, 4), *in = load_ok(NULL, inl, 2), *bad = NULL;
	char *dump, *cause = NULL, *o;
	struct lines l = { .n = 0 };
	rd_kafka_conf_t *kc;
	char val[128];
	size_t vlen = sizeof(val);

	/* What the files hold is what is used, without the line break. */
	ck_assert_str_eq(cf->redis_secret, "Redis-File-Pass-2");
	ck_assert_str_eq(cf->redis_user, "orderd");
	ck_assert_str_eq(cf->kafka[1].key, "sasl.password_file");
	ck_assert_str_eq(cf->kafka[1].secret, "Kafka-File-Pass-4");
	ck_assert_str_eq(in->redis_secret, "Redis-Pass-1");
	/* librdkafka gets the secret under its own name. */
	kc = kafka_conf_new(cf, NULL, NULL, &cause);
	ck_assert_ptr_nonnull(kc);
	ck_assert_int_eq(rd_kafka_conf_get(kc, "sasl.password", val, &vlen), RD_KAFKA_CONF_OK);
	ck_assert_str_eq(val, "Kafka-File-Pass-4");
	rd_kafka_conf_destroy(kc);

	/* --check-config's dump shows none, but says one is set. */
	dump = config_dump(cf);
	ck_assert_msg(!shows_secret(dump), "%s", dump);
	ck_assert_ptr_nonnull(strstr(dump, "ssl.key.password = [redacted]"));
	ck_assert_ptr_nonnull(strstr(dump, "sasl.password_file = "));
	free(dump);
	dump = config_dump(in);
	ck_assert_msg(!shows_secret(dump), "%s", dump);
	ck_assert_ptr_nonnull(strstr(dump, "\npassword = [redacted]\n"));
	ck_assert_ptr_nonnull(strstr(dump, "sasl.password = [redacted]"));
	free(dump);

	/* A reload reports changes of secrets without their values, and
	 * applies the Redis ones. */
	ck_assert_int_ge(config_reload(in, cf, collect_line, &l), 2);
	for (int i = 0; i < l.n; i++)
		ck_assert_msg(!shows_secret(l.line[i]), "%s", l.line[i]);
	ck_assert(has_line(&l, "redis.password changed"));
	ck_assert(has_line(&l, "kafka.sasl.password changed; restart to apply"));
	ck_assert(has_line(&l, "kafka.ssl.key.password changed; restart to apply"));
	ck_assert_str_eq(in->redis_secret, "Redis-File-Pass-2");
	lines_free(&l);
	/* The same file with a new password in it (rotation). */
	config_free(in);
	in = load_ok(NULL, ov, 4);
	{
		FILE *f = fopen(rfile, "w");

		ck_assert_ptr_nonnull(f);
		fputs("Redis-Rotated-6\n", f);
		ck_assert_int_eq(fclose(f), 0);
	}
	config_free(bad);
	bad = load_ok(NULL, ov, 4);
	ck_assert_int_eq(config_reload(in, bad, collect_line, &l), 1);
	ck_assert_msg(l.n == 1 && strstr(l.line[0], "holds a new password") != NULL &&
	    !shows_secret(l.line[0]), "%s", l.n ? l.line[0] : "(no line)");
	ck_assert_str_eq(in->redis_secret, "Redis-Rotated-6");
	ck_assert(!config_equal(cf, bad));
	lines_free(&l);
	config_free(bad);
	bad = NULL;

	/* Files: readable by others, empty, missing; a secret given twice. */
	o = xasprintf("redis.password_file=%s", open_file);
	ck_assert_int_eq(config_load(&bad, NULL, (char *[]){ o }, 1, &cause), -EPERM);
	ck_assert_ptr_nonnull(strstr(cause, "can be read by every user"));
	ck_assert(!shows_secret(cause));
	free(cause);
	free(o);
	o = xasprintf("kafka.sasl.password_file=%s", empty);
	ck_assert_int_eq(config_load(&bad, NULL, (char *[]){ o }, 1, &cause), -EINVAL);
	ck_assert_ptr_nonnull(strstr(cause, "is empty"));
	free(cause);
	free(o);
	ck_assert_int_eq(config_load(&bad, NULL, (char *[]){ "redis.password_file=/nonexistent/pw" },
	    1, &cause), -ENOENT);
	ck_assert_str_eq(cause, "redis.password_file: /nonexistent/pw: No such file or directory");
	free(cause);
	ck_assert_int_eq(config_load(&bad, NULL, (char *[]){ rov, "redis.password=Redis-Pass-1" },
	    2, &cause), -EINVAL);
	ck_assert_str_eq(cause, "redis.password and redis.password_file: set one, not both");
	free(cause);
	ck_assert_int_eq(config_load(&bad, NULL, (char *[]){ kov, "kafka.sasl.password=Kafka-Pass-3" },
	    2, &cause), -EINVAL);
	ck_assert(!shows_secret(cause));
	free(cause);
	/* An override that fails never quotes a secret's value. */
	expect_override_error("kafka.sasl.password=Kafka-Pass-3 ;x",
	    "-s kafka.sasl.password=[redacted]: the value of kafka.sasl.password contains "
	    "' ;', which would start a comment");
	expect_override_error("redis.password=Redis-Pass-1\nx",
	    "-s redis.password=[redacted]: the value of redis.password contains a line break");

	/* Which names are secrets. */
	ck_assert(config_is_secret("redis.password"));
	ck_assert(!config_is_secret("redis.password_file"));
	ck_assert(!config_is_secret("redis.user"));
	ck_assert(config_is_secret("kafka.sasl.password"));
	ck_assert(config_is_secret("kafka.ssl.keystore.password"));
	ck_assert(config_is_secret("kafka.ssl.key.pem"));
	ck_assert(config_is_secret("kafka.sasl.oauthbearer.client.secret"));
	ck_assert(config_is_secret("kafka.sasl.oauthbearer.config"));
	ck_assert(!config_is_secret("kafka.sasl.username"));
	ck_assert(!config_is_secret("kafka.ssl.key.location"));
	ck_assert(!config_is_secret("kafka.sasl.password_file"));

	config_free(cf);
	config_free(in);
	unlink(rfile);
	unlink(kfile);
	unlink(open_file);
	unlink(empty);
	free(rfile);
	free(kfile);
	free(open_file);
	free(empty);
	free(rov);
	free(kov);
}
END_TEST

static Suite *
config_secrets_suite(void)
{
	Suite *s = suite_create("config-secrets");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_secrets);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(config_secrets_suite());
}
