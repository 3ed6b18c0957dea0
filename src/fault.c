/* fault.c: crash points that tests arm through the environment, so every recovery path is exercised for real. */
#include "autoconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"

static const char *const fault_names[FAULT_COUNT] = {
	[FAULT_AFTER_INTENT_COMMIT] = "after-intent-commit",
	[FAULT_AFTER_REDIS] = "after-redis",
	[FAULT_AFTER_PRODUCE] = "after-produce",
	[FAULT_AFTER_DELIVERY] = "after-delivery",
	[FAULT_MID_BATCH] = "mid-batch",
	[FAULT_DURING_RECOVERY] = "during-recovery",
};

static int fault_armed = -1;
static long fault_countdown;

const char *
fault_name(enum fault_point p)
{
	return (unsigned)p < FAULT_COUNT ? fault_names[p] : "?";
}

int
fault_init(void)
{
	const char *env = getenv("ORDERD_CRASH_AT");
	const char *colon;
	size_t len;

	fault_armed = -1;
	if (env == NULL || *env == '\0')
		return 0;
	colon = strchr(env, ':');
	len = colon ? (size_t)(colon - env) : strlen(env);
	for (int i = 0; i < FAULT_COUNT; i++) {
		if (strlen(fault_names[i]) == len && strncmp(env, fault_names[i], len) == 0)
			fault_armed = i;
	}
	fault_countdown = colon ? strtol(colon + 1, NULL, 10) : 1;
	if (fault_armed < 0 || fault_countdown < 1) {
		fprintf(stderr, "orderd: ORDERD_CRASH_AT=%s: not a crash point "
		    "(after-intent-commit, after-redis, after-produce, after-delivery, "
		    "mid-batch, during-recovery; optionally :N)\n", env);
		fault_armed = -1;
		return -EINVAL;
	}
	log_warn("fault", "armed: SIGKILL at %s, pass %ld", fault_names[fault_armed],
	    fault_countdown);
	return 0;
}

void
fault_at(enum fault_point p)
{
	if ((int)p != fault_armed || --fault_countdown > 0)
		return;
	log_warn("fault", "crashing at %s", fault_names[p]);
	kill(getpid(), SIGKILL);
	pause();
}
