/* kafka_access.c: what orderd's programs do when a broker refuses them: the start-up check of credentials, TLS and topic rights, the one line that names a refusal, and the fault that stops the program. */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

/* ---- faults that retrying cannot mend ---- */

static void (*kafka_fault_fn)(const char *why, void *arg);
static void *kafka_fault_arg;
static const struct config *kafka_fault_cf;	/* for kafka_explain's hints */
static bool kafka_faulted_flag;

void
kafka_set_fault_handler(const struct config *cf, void (*fn)(const char *why, void *arg),
    void *arg)
{
	kafka_fault_cf = cf;
	kafka_fault_fn = fn;
	kafka_fault_arg = arg;
}

void
kafka_fault(const char *fmt, ...)
{
	va_list ap;
	char *why;

	va_start(ap, fmt);
	if (vasprintf(&why, fmt, ap) < 0)
		why = NULL;
	va_end(ap);
	if (kafka_fault_fn == NULL)
		log_fatal("kafka", "%s", why != NULL ? why : "out of memory");
	/* One report: librdkafka repeats its errors while the owner stops. */
	if (!kafka_faulted_flag) {
		kafka_faulted_flag = true;
		kafka_fault_fn(why != NULL ? why : "out of memory", kafka_fault_arg);
	}
	free(why);
}

bool
kafka_faulted(void)
{
	return kafka_faulted_flag;
}

bool
kafka_err_is_access(rd_kafka_resp_err_t e)
{
	return e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
	    e == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED ||
	    e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED ||
	    e == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED ||
	    e == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
	    e == RD_KAFKA_RESP_ERR__AUTHENTICATION || e == RD_KAFKA_RESP_ERR__SSL;
}

/* The [kafka] value of key (librdkafka's names, and their aliases), or NULL. */
static const char *
kafka_conf_value(const struct config *cf, const char *key, const char *alias)
{
	const char *v = NULL;

	for (int i = 0; cf != NULL && i < cf->nkafka; i++)
		if (strcasecmp(cf->kafka[i].key, key) == 0 ||
		    (alias != NULL && strcasecmp(cf->kafka[i].key, alias) == 0))
			v = cf->kafka[i].value;
	return v;
}

char *
kafka_explain(const struct config *cf, int err, const char *reason)
{
	const char *mech = kafka_conf_value(cf, "sasl.mechanism", "sasl.mechanisms");

	if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
	    err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED) {
		/* librdkafka before 2.6.1 sends a SCRAM client-final message
		 * that Kafka 4 brokers take for a wrong password. */
		if (mech != NULL && strncasecmp(mech, "SCRAM", 5) == 0 &&
		    rd_kafka_version() < 0x02060100)
			return xasprintf("authentication failed: the broker refused the "
			    "credentials (%s); if the password is right: librdkafka %s has a "
			    "SCRAM bug that Kafka 4 brokers refuse (fixed in 2.6.1, "
			    "confluentinc/librdkafka#4895): use sasl.mechanism = PLAIN over "
			    "SASL_SSL, or mutual TLS, or librdkafka >= 2.6.1 (Debian 13)", reason,
			    rd_kafka_version_str());
		return xasprintf("authentication failed: the broker refused the credentials "
		    "(%s): check kafka.sasl.mechanism, sasl.username and the password", reason);
	}
	if (err == RD_KAFKA_RESP_ERR__SSL) {
		if (strstr(reason, "certificate verify failed") != NULL ||
		    strstr(reason, "could not be verified") != NULL)
			return xasprintf("TLS certificate: the broker's certificate is not "
			    "trusted (%s): check kafka.ssl.ca.location", reason);
		if (strstr(reason, " alert ") != NULL)
			return xasprintf("TLS certificate: the broker refused our client "
			    "certificate (%s): check kafka.ssl.certificate.location, "
			    "ssl.key.location and that the broker trusts their CA", reason);
		return xasprintf("TLS: %s: check the kafka.ssl.* keys", reason);
	}
	if (err == RD_KAFKA_RESP_ERR__FATAL)
		return xasprintf("fatal error: %s", reason);
	return xasprintf("%s: %s", rd_kafka_err2name(err), reason);
}

const struct config *
kafka_fault_config(void)
{
	return kafka_fault_cf;
}

/* What the start-up probe heard from librdkafka. */
struct kafka_probe {
	int err;			/* the first error that retrying cannot mend */
	char why[512];
	char transport[512];		/* the last transport error, for a timeout */
};

static void
kafka_probe_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kafka_probe *p = opaque;

	/* A broker that refuses our client certificate sends a TLS alert,
	 * which librdkafka reports as a transport error ("Receive failed:
	 * ...: sslv3 alert certificate unknown"): as final as a refused
	 * password. */
	if (err == RD_KAFKA_RESP_ERR__TRANSPORT && strstr(reason, "SSL routines") != NULL &&
	    strstr(reason, " alert ") != NULL)
		err = RD_KAFKA_RESP_ERR__SSL;
	if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL ||
	    err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
	    err == RD_KAFKA_RESP_ERR__FATAL) {
		if (p->err == 0) {
			p->err = err;
			snprintf(p->why, sizeof(p->why), "%s", reason);
		}
	} else {
		snprintf(p->transport, sizeof(p->transport), "%s", reason);
	}
}

/* librdkafka's own lines would say the same as the probe's one line. */
static void
kafka_probe_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	log_debug("kafka", "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int
kafka_check_access(const struct config *cf, const char *const *topics, int ntopics,
    int *partitions, int timeout_ms, char **cause)
{
	static const char *const forced[] = { "client.id", "orderd-check", NULL };
	struct kafka_probe probe = { 0 };
	rd_kafka_conf_t *conf = kafka_conf_new(cf, NULL, forced, cause);
	int64_t deadline = util_mono_us() + (int64_t)timeout_ms * 1000;
	rd_kafka_t *rk;
	char errstr[512];
	int err = 0, i = 0;

	if (conf == NULL)
		return -EINVAL;
	rd_kafka_conf_set_error_cb(conf, kafka_probe_error_cb);
	rd_kafka_conf_set_log_cb(conf, kafka_probe_log_cb);
	rd_kafka_conf_set_opaque(conf, &probe);
	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) == NULL) {
		rd_kafka_conf_destroy(conf);
		*cause = xasprintf("kafka: %s", errstr);
		return -EINVAL;
	}
	for (i = 0; i < ntopics; i++)
		partitions[i] = -ENOENT;
	i = 0;
	/* No topic: the brokers' metadata alone says we may talk to them. */
	while (i < ntopics || (ntopics == 0 && i == 0)) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_topic_t *rkt = ntopics > 0 ? rd_kafka_topic_new(rk, topics[i], NULL) : NULL;
		rd_kafka_resp_err_t e;

		/* Short requests, so that an authentication or TLS failure
		 * (served by the poll) ends the wait at once. */
		e = rd_kafka_metadata(rk, 0, rkt, &md, 500);
		if (rkt != NULL)
			rd_kafka_topic_destroy(rkt);
		rd_kafka_poll(rk, 0);
		if (probe.err != 0) {
			char *why = kafka_explain(cf, probe.err, probe.why);

			*cause = xasprintf("kafka: %s", why);
			free(why);
			err = -EACCES;
			break;
		}
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR && ntopics == 0) {
			i = 1;
		} else if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
			rd_kafka_resp_err_t te = md->topics[0].err;

			if (te == RD_KAFKA_RESP_ERR_NO_ERROR) {
				partitions[i++] = md->topics[0].partition_cnt;
			} else if (te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
				partitions[i++] = -ENOENT;
			} else if (te == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
				*cause = xasprintf("kafka: not authorized to describe topic '%s': this "
				    "principal needs READ (an input) or WRITE (an output) on it "
				    "(see the README's Security section)", topics[i]);
				err = -EACCES;
				rd_kafka_metadata_destroy(md);
				break;
			}
			/* Anything else (no leader yet): ask again. */
		}
		if (md != NULL)
			rd_kafka_metadata_destroy(md);
		else
			usleep(100 * 1000);	/* a transport error may come back at once */
		if ((i < ntopics || (ntopics == 0 && i == 0)) && util_mono_us() > deadline) {
			*cause = xasprintf("kafka: no answer from the broker (%s) within %d s%s%s",
			    kafka_conf_value(cf, "bootstrap.servers", "metadata.broker.list") ?
			    kafka_conf_value(cf, "bootstrap.servers", "metadata.broker.list") : "?",
			    timeout_ms / 1000, probe.transport[0] ? ": " : "", probe.transport);
			err = -ETIMEDOUT;
			break;
		}
	}
	rd_kafka_destroy(rk);
	return err;
}
